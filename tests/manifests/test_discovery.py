from __future__ import annotations

import pytest

from afctl.errors import UsageError
from afctl.manifests.discovery import discover
from afctl.testing import write_repo

M = "apiVersion: afctl/v1\n"


def names(sources):
    return [s.display for s in sources]


def test_folders_are_walked_recursively_in_a_stable_order(tmp_path, monkeypatch):
    write_repo(
        tmp_path,
        {
            "b.yaml": M,
            "a.yml": M,
            "sub/c.yaml": M,
            "sub/deeper/d.yaml": M,
            "notes.md": "x",
            "data.json": "{}",
        },
    )
    monkeypatch.chdir(tmp_path)
    assert names(discover(["."])) == ["a.yml", "b.yaml", "sub/c.yaml", "sub/deeper/d.yaml"]
    assert names(discover(["sub"])) == ["sub/c.yaml", "sub/deeper/d.yaml"]


def test_hidden_vendor_and_virtualenv_folders_are_skipped(tmp_path, monkeypatch):
    write_repo(
        tmp_path,
        {
            "ok.yaml": M,
            ".github/workflows/ci.yml": "on: push\n",
            ".afctl/x.yaml": M,
            ".hidden.yaml": M,
            "node_modules/pkg/x.yaml": M,
            "venv/pyvenv.cfg": "home = /usr\n",
            "venv/lib/x.yaml": M,
        },
    )
    monkeypatch.chdir(tmp_path)
    assert names(discover(["."])) == ["ok.yaml"]


def test_blueprint_folders_contribute_only_blueprint_yaml(tmp_path, monkeypatch):
    write_repo(
        tmp_path,
        {
            "blueprints/desk/blueprint.yaml": M,
            "blueprints/desk/manifests/agent.yaml": "{{ not yaml until rendered }}",
            "blueprints/desk/evals/suite.yaml": M,
        },
    )
    monkeypatch.chdir(tmp_path)
    assert names(discover(["."])) == ["blueprints/desk/blueprint.yaml"]


def test_afctlignore(tmp_path, monkeypatch):
    write_repo(
        tmp_path,
        {
            ".afctlignore": "# not manifests\ndatasets/\n*.cases.yaml\nk8s/deploy.yaml\n",
            "agent.yaml": M,
            "datasets/rows.yaml": "- a\n",
            "evals/support.cases.yaml": "- b\n",
            "k8s/deploy.yaml": "kind: Deployment\n",
            "k8s/keep.yaml": M,
        },
    )
    monkeypatch.chdir(tmp_path)
    assert names(discover(["."])) == ["agent.yaml", "k8s/keep.yaml"]


def test_explicit_files_are_read_whatever_their_name_and_only_once(tmp_path, monkeypatch):
    write_repo(tmp_path, {"manifest.json": "{}", "a.yaml": M, ".hidden/b.yaml": M})
    monkeypatch.chdir(tmp_path)
    found = discover(["manifest.json", "a.yaml", ".", "./a.yaml", ".hidden/b.yaml"])
    assert names(found) == ["manifest.json", "a.yaml", ".hidden/b.yaml"]


def test_stdin(tmp_path):
    (source,) = discover(["-"])
    assert source.display == "<stdin>" and source.path is None


@pytest.mark.parametrize(
    ("setup", "argument", "message"),
    [
        ({}, "missing.yaml", "-f missing.yaml: no such file or folder"),
        ({"empty/readme.md": "x"}, "empty", "no .yaml or .yml files"),
    ],
)
def test_usage_errors(tmp_path, monkeypatch, setup, argument, message):
    write_repo(tmp_path, setup)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        discover([argument])
    assert message in caught.value.message
    assert caught.value.exit_code == 64


def test_nothing_given():
    with pytest.raises(UsageError):
        discover([])
