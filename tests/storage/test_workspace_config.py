"""`.afctl/config.yaml`: a workspace's database, broker and executor settings, with the
environment's variables over them, and its mistakes named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.errors import UsageError
from afctl.testing import invoke, write_repo
from afctl.workspace_config import SETTINGS, read_config, settings

SUITE = (
    "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: m}\nspec: {provider: local, model: echo}\n"
    "---\napiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\n"
    "spec: {model: m, instructions: Hi.}\n---\n"
    "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\n"
    "spec:\n  target: {agent: a}\n  cases:\n    - {id: c, input: hi, assert: [{type: contains, "
    "value: hi}]}\n"
)


def repo_with(tmp_path: Path, config: str) -> Path:
    return write_repo(tmp_path, {".afctl/.gitignore": "*\n", ".afctl/config.yaml": config,
                                 "all.yaml": SUITE})  # fmt: skip


def test_the_database_comes_from_the_workspace_config(tmp_path, postgres_url):
    repo = repo_with(tmp_path, f"# the team's database\ndatabase_url: {postgres_url}\n")
    migrated = invoke(["db", "migrate"], cwd=repo)
    assert migrated.exit_code == 0, migrated.stderr
    applied = invoke(["apply", "-f", ".", "--yes"], cwd=repo)
    assert applied.exit_code == 0, applied.stderr
    status = invoke(["db", "status"], cwd=repo)
    assert "postgresql://" in status.stdout and "***" in status.stdout
    assert not (repo / ".afctl" / "state.db").exists()  # nothing went to the SQLite files


def test_the_environment_wins_over_the_file(tmp_path, monkeypatch):
    repo = repo_with(tmp_path, "executor: celery\nqueue: from-file\n")
    monkeypatch.setenv("AFCTL_QUEUE", "from-env")
    monkeypatch.setenv("AFCTL_BROKER_VISIBILITY_S", "3")  # what the file cannot say passes
    found = settings(repo / ".afctl")
    assert found["AFCTL_EXECUTOR"] == "celery" and found["AFCTL_QUEUE"] == "from-env"
    assert found["AFCTL_BROKER_VISIBILITY_S"] == "3"
    assert found.source("AFCTL_EXECUTOR").endswith("config.yaml:1 executor")
    assert found.source("AFCTL_QUEUE") == "AFCTL_QUEUE"


def test_the_executor_setting_is_used_and_a_missing_broker_is_one_line(tmp_path):
    repo = repo_with(tmp_path, "executor: celery\n")
    result = invoke(["eval", "all.yaml"], cwd=repo)
    assert result.exit_code == 64 and "Traceback" not in result.stderr
    assert "no broker configured: --executor celery needs a broker" in result.stderr
    assert invoke(["eval", "all.yaml", "--executor", "local"], cwd=repo).exit_code == 0


@pytest.mark.parametrize(
    ("config", "said"),
    [
        (
            "database_url: mysql://u:secret@h/db\n",
            "config.yaml:1 database_url=mysql://u:***@h/db: not a PostgreSQL URL",
        ),
        ("queue: a\ndatabse_url: x\n", "config.yaml:2: unknown setting 'databse_url'"),
        ("broker_url: [redis]\n", "config.yaml:1: broker_url takes text"),
        ("- database_url\n", "config.yaml: give a mapping of settings"),
        ("database_url: 'unclosed\n", "config.yaml:2: not YAML"),
        ("broker_url: http://h:1/0\n", "config.yaml:1 broker_url=http://h:1/0: not a Redis URL"),
    ],
)
def test_a_mistake_in_the_file_is_one_line_naming_it(tmp_path, config, said):
    repo = repo_with(tmp_path, config)
    command = ["eval", "all.yaml", "--executor", "celery"] if "broker" in config else ["runs"]
    result = invoke(command, cwd=repo)
    assert result.exit_code == 64, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "secret" not in result.stderr


@given(st.dictionaries(st.sampled_from(sorted(SETTINGS)),
                       st.text(alphabet="abcxyz:/@.-_0123456789", min_size=1, max_size=30)
                       .filter(lambda t: t.strip() and not t.startswith(("-", ":", "@"))),
                       max_size=6))  # fmt: skip
def test_every_setting_written_is_read_back_under_its_variable(tmp_path_factory, chosen):
    folder = tmp_path_factory.mktemp("ws")
    text = "".join(f"{key}: '{value}'\n" for key, value in chosen.items())
    (folder / "config.yaml").write_text(text)
    try:
        found = read_config(folder)
    except UsageError as exc:  # never anything but a usage error
        raise AssertionError(exc.message) from None
    assert dict(found) == {SETTINGS[k]: v.strip() for k, v in chosen.items()}
