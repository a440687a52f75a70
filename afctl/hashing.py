"""Content identity: a document's canonical JSON and its SHA-256, the same for equal content
whatever its key order or YAML formatting. The state (resource revisions) and the runtime
(the revision a run records) both name content this way; it sits below both."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(document: Any) -> str:
    """The document as JSON with sorted keys: equal documents give equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(document: Any) -> str:
    """The identity of a resource's content: key order and YAML formatting do not count."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()
