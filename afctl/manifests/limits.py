"""Bounds on what the manifest loader accepts, so hostile input fails fast in bounded memory."""

from __future__ import annotations

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 100_000
"""Per document, keys included and aliases counted at their expanded size."""
MAX_NUMBER_DIGITS = 1000
