"""`afctl init`: a new repository from a template in `templates/`.

A template is a folder. Files ending in `.jinja` are rendered (sandboxed jinja2, StrictUndefined)
and lose the suffix; the others are copied as they are. Template syntax uses `[[ ... ]]` and
`[% ... %]` so that the `{{ ... }}` of agent instructions passes through untouched. Variables:
`project` (a slug of the folder's name, or `--name`).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from afctl._resources import data_dir
from afctl.diagnostics import did_you_mean
from afctl.errors import UsageError
from afctl.workspace import WORKSPACE_DIR, ensure_workspace

DEFAULT_TEMPLATE = "starter"
SCHEMA_DIR = ".schemas"
RENDERED_SUFFIX = ".jinja"


@dataclass(frozen=True)
class InitResult:
    root: Path
    template: str
    project: str
    files: list[Path]
    """Every file written, relative to `root`."""


def templates() -> list[str]:
    folder = data_dir("templates")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def slug(name: str) -> str:
    """A DNS-label style project name from any folder name."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return text or "agents"


def _plan(source: Path) -> list[tuple[Path, Path, bool]]:
    """(template file, target path relative to the root, rendered?) for each file."""
    planned = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(source)
        rendered = relative.name.endswith(RENDERED_SUFFIX)
        if rendered:
            relative = relative.with_name(relative.name[: -len(RENDERED_SUFFIX)])
        planned.append((path, relative, rendered))
    return planned


def init_project(
    root: Path, template: str = DEFAULT_TEMPLATE, *, name: str | None = None, force: bool = False
) -> InitResult:
    """Scaffold `root` from `template`.

    Raises:
        UsageError: the template does not exist, or files would be overwritten without `force`.
    """
    available = templates()
    if template not in available:
        raise UsageError(
            f"--template {template}: no such template",
            hint=did_you_mean(template, available) or "templates: " + ", ".join(available),
        )
    project = slug(name or root.resolve().name)
    planned = _plan(data_dir("templates") / template)
    schema_files = [Path(SCHEMA_DIR) / n for n in _schema_names()]
    targets = [relative for _, relative, _ in planned] + schema_files
    existing = [t for t in targets if (root / t).exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise UsageError(
            f"{root} already has files the template would overwrite: {shown}",
            hint="use another folder, or --force to overwrite them",
        )
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        autoescape=False,
    )
    values = {"project": project, "template": template}
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source, relative, rendered in planned:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if rendered:
            text = environment.from_string(source.read_text("utf-8")).render(values)
            target.write_text(text, "utf-8")
        else:
            shutil.copyfile(source, target)
        written.append(relative)
    from afctl.manifests.schema import export_schemas

    for path in export_schemas(root / SCHEMA_DIR):
        written.append(path.relative_to(root))
    ensure_workspace(root / WORKSPACE_DIR)
    return InitResult(root, template, project, sorted(written))


def _schema_names() -> list[str]:
    from afctl.manifests.kinds import KINDS

    return [*KINDS.values(), "afctl.json"]
