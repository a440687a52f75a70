"""Numbered, append-only migrations of the knowledge index, `knowledge.db`. Never edit a
shipped migration: add one. The first is written so that an index made before migrations
existed takes it as it is (every statement is `IF NOT EXISTS`)."""

from __future__ import annotations

from typing import Any

from sqlite_utils.migrations import Migrations

knowledge_migrations = Migrations("afctl-knowledge")


@knowledge_migrations(name="0001_initial")
def _initial(db: Any) -> None:
    script = """
        CREATE TABLE IF NOT EXISTS packs (name TEXT PRIMARY KEY, settings TEXT, built_at TEXT);
        CREATE TABLE IF NOT EXISTS files (
            pack TEXT, path TEXT, digest TEXT, chunks INTEGER, PRIMARY KEY (pack, path)
        );
        CREATE TABLE IF NOT EXISTS chunks (
            id INTEGER PRIMARY KEY, pack TEXT, path TEXT, start_line INTEGER, end_line INTEGER,
            heading TEXT, text TEXT
        );
        CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks (pack, path);
        CREATE TABLE IF NOT EXISTS vectors (chunk_id INTEGER PRIMARY KEY, pack TEXT, vector TEXT);
        CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
            text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61'
        );
        """
    for statement in script.split(";"):  # one by one: executescript would commit the migration
        if statement.strip():
            db.execute(statement)
