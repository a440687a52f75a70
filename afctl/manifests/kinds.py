"""The manifest kinds and the format version: a leaf module, cheap to import."""

from __future__ import annotations

API_VERSION = "afctl/v1"
KINDS: dict[str, str] = {
    "Model": "model.json",
    "Agent": "agent.json",
    "Tool": "tool.json",
    "Workflow": "workflow.json",
    "KnowledgePack": "knowledgepack.json",
    "EvalSuite": "evalsuite.json",
    "Blueprint": "blueprint.json",
}
"""Kind -> its schema file in `schemas/`, in the order resources are listed and applied."""


def find_kind(word: str) -> str:
    """The kind a user means by `agent`, `Agents` or `knowledgepack`.

    Raises:
        UsageError: no kind is called that (with a "did you mean" hint).
    """
    lowered = word.lower()
    for kind in KINDS:
        if lowered in (kind.lower(), kind.lower() + "s"):
            return kind
    from afctl.errors import UsageError

    forms = [*KINDS, *(k + "s" for k in KINDS)]  # as the user writes them: Agent, agents
    shown = {f.lower(): f if word[:1].isupper() else f.lower() for f in forms}
    import difflib

    match = difflib.get_close_matches(lowered, list(shown), n=1, cutoff=0.6)
    hint = f'did you mean "{shown[match[0]]}"?' if match else "kinds: " + ", ".join(KINDS)
    raise UsageError(f"unknown kind {word!r}", hint=hint)


def parse_ref(text: str) -> tuple[str, str]:
    """`agent/support` (any case, singular or plural) as ("Agent", "support").

    Raises:
        UsageError: not KIND/NAME, or an unknown kind.
    """
    kind, slash, name = text.partition("/")
    if not slash or not kind or not name:
        from afctl.errors import UsageError

        raise UsageError(f"{text!r} is not KIND/NAME", hint="write it like agent/support")
    return find_kind(kind), name
