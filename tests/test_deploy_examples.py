"""The deployment examples (deploy/docker-compose.yaml, deploy/kubernetes/) stay valid: they
parse, and every afctl command they run exists with the options it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML

from afctl.cli.main import cli

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def documents() -> list[tuple[str, Any]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for document in YAML(typ="safe").load_all(path.read_text()):
            found.append((path.name, document))
    return found


def commands(node: Any) -> list[list[str]]:
    """Every `command:` list that runs afctl, anywhere in a document."""
    found: list[list[str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "command" and isinstance(value, list) and value and value[0] == "afctl":
                found.append([str(v) for v in value])
            else:
                found.extend(commands(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(commands(value))
    return found


ALL = [(name, argv) for name, document in documents() for argv in commands(document)]


def test_the_examples_parse_and_run_afctl():
    names = {name for name, _ in ALL}
    assert names == {"docker-compose.yaml", "afctl.yaml"}
    ran = {tuple(argv[1:2]) for _, argv in ALL}
    assert {("serve",), ("worker",), ("db",)} <= ran
    kinds = {d.get("kind") for name, d in documents() if name == "afctl.yaml"}
    assert kinds == {"Secret", "Job", "Deployment", "Service"}


@pytest.mark.parametrize(("name", "argv"), ALL, ids=[" ".join(a) for _, a in ALL])
def test_every_command_they_run_exists_with_its_options(name, argv):
    command: click.Command = cli
    args = argv[1:]
    with click.Context(cli) as context:
        while isinstance(command, click.Group):
            found = command.get_command(context, args[0])
            assert found is not None, f"{name}: afctl has no command {args[0]}"
            command, args = found, args[1:]
        command.make_context(argv[1], list(args))  # unknown options or bad values raise
