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
