"""The manual in docs/ is executed, as sqlite-utils' test_docs keeps its documentation true.

Each page runs in a fresh repository made by `afctl init`, from top to bottom:

- every ```console block: each `$ ` line is run in the repository with the installed `afctl`,
  and must exit 0, or with the code its trailing `# exit N` comment gives; a page is one
  terminal session, so a `cd` holds for the blocks after it;
- every ```python block is run in the repository;
- a block right after `<!-- docs-test: file PATH -->` is written to PATH first (so the
  manifests a page shows are the ones its commands use);
- `<!-- docs-test: setup COMMAND -->` runs a command the page does not show (like applying
  the repository first); it must exit 0;
- `<!-- docs-test: skip REASON -->` leaves the next block out, saying why (it needs an API
  key, a network, a second terminal).

The output a page shows is illustrative where it holds run ids, times and costs; the exit
codes are checked. docs/cli.md is generated from `--help` and must be current.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
BIN = Path(sys.executable).parent
MARKER = re.compile(r"^<!-- docs-test: (file|setup|skip) (.+?) -->$")
FENCE = re.compile(r"^```(\w*)\s*$")
EXIT = re.compile(r"#\s*exit (\d+)\b")


@dataclass
class Step:
    kind: str  # console, python, file, setup
    text: str
    line: int
    target: str = ""


def steps_of(page: Path) -> list[Step]:
    """What a page runs, in order."""
    lines = page.read_text().splitlines()
    steps: list[Step] = []
    pending: tuple[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.match(line.strip())
        fence = FENCE.match(line)
        if marker:
            kind, value = marker.groups()
            if kind == "setup":
                steps.append(Step("setup", value, index + 1))
            else:
                pending = (kind, value)
        elif fence:
            language = fence.group(1)
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            body = "\n".join(lines[index + 1 : end]) + "\n"
            if pending is not None and pending[0] == "file":
                steps.append(Step("file", body, index + 1, pending[1]))
            elif pending is not None and pending[0] == "skip":
                pass
            elif language in ("console", "python"):
                steps.append(Step(language, body, index + 1))
            pending = None
            index = end
        index += 1
    return steps


def commands_of(block: str) -> list[str]:
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


PAGES = [REPO / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name != "cli.md")]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_the_pages_examples_run_as_shown(page: Path, tmp_path: Path) -> None:
    steps = steps_of(page)
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "PYTHONPATH": "",
        "AFCTL_CHECKOUT": str(REPO),
    }
    subprocess.run([str(BIN / "afctl"), "init", "site"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)  # fmt: skip
    site = tmp_path / "site"
    cwd_file = tmp_path / "cwd"
    env["AFCTL_DOCS_CWD"] = str(cwd_file)
    for step in steps:
        where = f"{page.name}:{step.line}"
        if step.kind == "file":
            target = site / step.target
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text)
            continue
        if step.kind == "python":
            argv = [sys.executable, "-c", step.text]
        else:
            argv = ["bash", "-c", as_script([step.text] if step.kind == "setup"
                                            else commands_of(step.text))]  # fmt: skip
        result = subprocess.run(argv, cwd=site, env=env, capture_output=True, text=True,
                                timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
        if cwd_file.exists():  # a page is one terminal session: a `cd` holds for what follows
            site = Path(cwd_file.read_text().strip())
        assert result.returncode == 0, (
            f"{where}: {result.stderr[-1500:]}\n--- stdout\n{result.stdout[-3000:]}"
        )


def as_script(commands: list[str]) -> str:
    """The commands of a block as one bash script (a `cd` holds for the rest of the block)
    that stops at the first command whose exit code is not the one the page gives."""
    lines = []
    for command in commands:
        expected = EXIT.search(command)
        code = int(expected.group(1)) if expected else 0
        quoted = command.replace("'", "'\\''")
        lines.append(
            f"{command}\nrc=$?; if [ $rc -ne {code} ]; then echo '`{quoted}` exited '$rc', "
            f"the page says {code}' >&2; exit 1; fi"
        )
    lines.append('pwd > "$AFCTL_DOCS_CWD"')
    return "\n".join(lines)


def test_every_page_is_linked_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in readme]
    assert not missing, f"README.md does not link {missing}"


def test_the_readme_is_a_front_door() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


def test_a_skip_says_why() -> None:
    for page in DOCS.glob("*.md"):
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if "docs-test: skip" in line:
                reason = line.split("docs-test: skip", 1)[1].removesuffix("-->").strip()
                assert len(reason) > 10, f"{page.name}:{number}: say why the block is not run"


def test_the_cli_reference_is_current() -> None:
    from afctl.cli.reference import cli_reference

    current = (DOCS / "cli.md").read_text()
    assert current == cli_reference(), "docs/cli.md is stale: run `make docs`"


def test_the_commands_in_docs_exist() -> None:
    """Every `afctl ...` a page shows (run or not) names a real command and real options."""
    import click

    from afctl.cli.main import cli
    from afctl.cli.reference import walk

    commands = {" ".join(path[1:]): context.command for path, context in walk(cli, ["afctl"])}
    problems = []
    for page in [*DOCS.glob("*.md"), REPO / "README.md"]:
        for line in page.read_text().splitlines():
            shown = line.strip().removeprefix("$ ")
            if not shown.startswith("afctl "):
                continue
            words = shown.split("#")[0].split()[1:]
            path: list[str] = []
            for word in words:
                if " ".join([*path, word]) in commands:
                    path.append(word)
            command: click.Command = commands[" ".join(path)]
            names = {"--help"}
            for param in command.params:
                names.update(getattr(param, "opts", []), getattr(param, "secondary_opts", []))
            for word in words:
                option = word.split("=")[0]
                if option.startswith("--") and option not in names:
                    problems.append(
                        f"{page.name}: {shown!r}: afctl {' '.join(path)} has no {option}"
                    )
    assert not problems, "\n".join(problems)
