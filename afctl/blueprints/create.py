"""`afctl blueprint create NAME`: a new blueprint folder that lints clean and whose eval suite
passes offline, to edit from there."""

from __future__ import annotations

from pathlib import Path

from afctl.blueprints.archive import SAFE_NAME
from afctl.errors import UsageError

_FILES = {
    "blueprint.yaml": """\
apiVersion: afctl/v1
kind: Blueprint
metadata:
  name: {name}
  description: What {name} does, in one line (registries show it)
spec:
  version: 0.1.0
  author: Your name <you@example.com>
  license: Apache-2.0
  pricing: {{model: free}}
  capabilities: {{}}          # python, commands, env, plugins, hosts: declare what it needs
  parameters:
    type: object
    properties:
      greeting:
        type: string
        description: How the agent greets people
        default: Hello
      model:
        type: string
        description: The agent's model (provider/model or a Model name); the default runs offline
        default: local/echo
""",
    "manifests/agent.yaml": """\
apiVersion: afctl/v1
kind: Agent
metadata:
  name: {name}-agent
  description: The agent of blueprint {{{{ blueprint.name }}}}
spec:
  model: "{{{{ params.model }}}}"
  instructions: |
    {{{{ params.greeting }}}}! You help with questions about {name}.
""",
    "evals/smoke.yaml": """\
apiVersion: afctl/v1
kind: EvalSuite
metadata:
  name: {name}-smoke
  description: The agent answers (offline, with the default model)
spec:
  target: {{agent: {name}-agent}}
  cases:
    - id: answers
      input: hello
      assert: [{{type: contains, value: hello}}]
  thresholds: {{pass_rate: 1.0}}
""",
    "README.md": """\
# {name}

What it does, what it needs (its capabilities), and its parameters.

    afctl blueprint lint .
    afctl blueprint render . --set greeting=Hi
    afctl blueprint pack .
""",
}


def create(name: str, parent: Path) -> Path:
    """Write the blueprint `name` into `parent/name`.

    Raises:
        UsageError: the name is not a plain lowercase name, or the folder exists.
    """
    if not SAFE_NAME.fullmatch(name):
        raise UsageError(f"blueprint name {name!r}: use lowercase letters, digits and -")
    folder = parent / name
    if folder.exists():
        raise UsageError(f"{folder} exists already", hint="choose another name or folder")
    for relative, text in _FILES.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.format(name=name), "utf-8")
    return folder
