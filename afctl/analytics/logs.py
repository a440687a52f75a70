"""DuckDB over `.afctl/logs.db`: documented views, `stats`, free SQL, and exports.

The views (what `afctl query` sees):

    runs         one row per run: id, kind, target, agent, env, status, model, started_at,
                 ended_at, latency_ms, turns, tool_calls, input_tokens, output_tokens,
                 cost_usd, error_type, parent_id, replay_of, eval_id, is_replay, labels (JSON)
    events       one row per step: run_id, seq, type, at, turn, model, tool, status,
                 latency_ms, input_tokens, output_tokens, cost_usd
    model_calls  the events of type model_call (status is the finish reason)
    tool_calls   the events of type tool_call (status is ok or error)
    evals        one row per eval: eval_id, suite, agent, started_at, pass_rate, passed, cases
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.durations import since_timestamp
from afctl.errors import UsageError

if TYPE_CHECKING:
    from afctl.storage.settings import DatabaseUrl

VIEWS = {
    "runs": "SELECT * FROM logs.runs",
    "events": "SELECT * FROM logs.events",
    "model_calls": 'SELECT run_id, seq, "at", turn, model, status AS finish_reason, latency_ms, '
    "input_tokens, output_tokens, cost_usd FROM logs.events WHERE type = 'model_call'",
    "tool_calls": 'SELECT run_id, seq, "at", turn, tool, status, latency_ms '
    "FROM logs.events WHERE type = 'tool_call'",
    "evals": "SELECT e.id AS eval_id, e.suite, e.agent, e.started_at, e.pass_rate, e.passed, "
    "(SELECT count(*) FROM logs.eval_cases c WHERE c.eval_id = e.id) AS cases "
    "FROM logs.eval_records e",
}
CONTENT = {
    "runs": "SELECT r.*, p.input, p.output FROM logs.runs r "
    "LEFT JOIN logs.run_payloads p ON p.run_id = r.id",
    "events": "SELECT e.*, p.payload FROM logs.events e "
    "LEFT JOIN logs.event_payloads p ON p.run_id = e.run_id AND p.seq = e.seq",
}
"""With `--content`: what the runs were given and answered, and every event's payload (the
prompts, responses, tool arguments and results), as the prompt log holds them: redacted."""
CONTENT["model_calls"] = (
    'SELECT e.run_id, e.seq, e."at", e.turn, e.model, e.status AS finish_reason, e.latency_ms, '
    "e.input_tokens, e.output_tokens, e.cost_usd, p.payload FROM logs.events e "
    "LEFT JOIN logs.event_payloads p ON p.run_id = e.run_id AND p.seq = e.seq "
    "WHERE e.type = 'model_call'"
)
CONTENT["tool_calls"] = (
    'SELECT e.run_id, e.seq, e."at", e.turn, e.tool, e.status, e.latency_ms, p.payload '
    "FROM logs.events e LEFT JOIN logs.event_payloads p ON p.run_id = e.run_id AND p.seq = e.seq "
    "WHERE e.type = 'tool_call'"
)
DIMENSIONS = {
    "agent": "coalesce(agent, target)",  # workflow and tool-step runs count under their target
    "model": "model",
    "day": "substr(started_at, 1, 10)",
    "status": "status",
    "env": "env",
    "target": "target",
}
_SCANNERS = ("postgres_", "sqlite_")
"""Functions of the database extensions: they would reach past the views (PostgreSQL's other
schemas and tables through the attached connection; other SQLite files)."""
_PASS_THROUGH = frozenset({"query", "query_table"})
"""Functions that run SQL given as text (which the parse tree cannot see into)."""
_LABEL = re.compile(r"label:([A-Za-z0-9_./-]{1,63})")


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class LogAnalytics:
    """A DuckDB connection with the prompt log attached read-only and the views defined: the
    SQLite file `log_file`, or the PostgreSQL database at `url` (through DuckDB's postgres
    scanner, reading the log's schema)."""

    def __init__(self, log_file: Path, url: DatabaseUrl | None = None) -> None:
        from afctl.duckdb_sqlite import connect

        if url is not None:
            import duckdb

            from afctl.storage.settings import LOG_SCHEMA
            from afctl.storage.sql import unavailable

            self.connection = connect("postgres")
            quoted = url.url.replace("'", "''")
            try:
                self.connection.execute(f"ATTACH '{quoted}' AS logs (TYPE postgres, READ_ONLY, "
                                        f"SCHEMA '{LOG_SCHEMA}')")  # fmt: skip
            except duckdb.Error as exc:
                self.connection.close()
                raise unavailable(url, exc) from None
        elif not log_file.exists():
            raise UsageError("there is no prompt log yet", hint="afctl run records runs")
        else:
            self.connection = connect()
            self.connection.execute(
                f"ATTACH '{log_file.as_posix()}' AS logs (TYPE sqlite, READ_ONLY)"
            )
        for name, sql in VIEWS.items():
            self.connection.execute(f"CREATE TEMP VIEW {name} AS {sql}")

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> LogAnalytics:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _table(self, sql: str, parameters: list[Any] | None = None) -> Table:
        import duckdb

        try:
            cursor = self.connection.execute(sql, parameters or [])
            rows = cursor.fetchall()
        except duckdb.Error as exc:
            raise UsageError(f"the query failed: {str(exc).splitlines()[0]}") from None
        return Table([d[0] for d in cursor.description or []], rows)

    def stats(
        self, by: list[str], since: str | None = None, include_replays: bool = False
    ) -> Table:
        """Runs, success rate, latency percentiles, tokens and cost, grouped by `by`.

        Raises:
            UsageError: an unknown dimension.
        """
        groups: list[tuple[str, str]] = []
        for name in by:
            label = _LABEL.fullmatch(name)
            if label is not None:
                groups.append((name, f"json_extract_string(labels, '$.\"{label[1]}\"')"))
            elif name in DIMENSIONS:
                groups.append((name, DIMENSIONS[name]))
            else:
                raise UsageError(
                    f"--by {name}: not a dimension",
                    hint="use " + ", ".join([*DIMENSIONS, "label:KEY"]),
                )
        where, parameters = [], []
        if since is not None:
            where.append("started_at >= ?")
            parameters.append(since_timestamp(since))
        if not include_replays:
            where.append("coalesce(is_replay, 0) = 0")
        keys = [f'{expression} AS "{name}"' for name, expression in groups]
        sql = (
            f"SELECT {', '.join([*keys, ''])}"
            "count(*) AS runs, "
            "round(avg(CASE WHEN status = 'succeeded' THEN 1.0 ELSE 0.0 END), 4) AS success_rate, "
            "round(quantile_cont(latency_ms, 0.5), 1) AS p50_ms, "
            "round(quantile_cont(latency_ms, 0.95), 1) AS p95_ms, "
            "round(quantile_cont(latency_ms, 0.99), 1) AS p99_ms, "
            "sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens, "
            "round(sum(cost_usd), 6) AS cost_usd, "
            "count(*) FILTER (WHERE cost_usd IS NULL AND status <> 'running') AS cost_unknown "
            f"FROM runs {'WHERE ' + ' AND '.join(where) if where else ''} "
            + (f"GROUP BY ALL ORDER BY {', '.join(str(i + 1) for i in range(len(keys)))}"
               if keys else "")
        )  # fmt: skip
        return self._table(sql, parameters)

    def query(self, sql: str) -> Table:
        """One SELECT over the views, nothing else: no second statement, no writing, and no
        file, URL or database beyond the prompt log (DuckDB's external access is switched off
        and its configuration locked before the query runs).

        Raises:
            UsageError: the SQL is not one SELECT, or it fails.
        """
        import duckdb

        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise UsageError(f"the query is not valid SQL: {str(exc).splitlines()[0]}") from None
        if len(statements) != 1:
            raise UsageError(f"give one statement, not {len(statements)}",
                             hint="afctl query runs a single SELECT")  # fmt: skip
        if statements[0].type != duckdb.StatementType.SELECT:  # type: ignore[attr-defined]
            kind = statements[0].type.name
            raise UsageError(f"afctl query only reads: {kind} statements are refused",
                             hint="write a SELECT (or WITH ... SELECT) over the views")  # fmt: skip
        called = self._functions(sql)
        refused = sorted(f for f in called if f in _PASS_THROUGH or f.startswith(_SCANNERS))
        if refused:
            raise UsageError(f"afctl query reads the views only: {', '.join(refused)} is refused",
                             hint="write a SELECT over runs, events, model_calls, tool_calls "
                                  "or evals")  # fmt: skip
        self.connection.execute("SET enable_external_access = false")
        self.connection.execute("SET lock_configuration = true")
        return self._table(sql)

    def _functions(self, sql: str) -> set[str]:
        """Every function the statement calls, from DuckDB's own parse tree."""
        import json

        tree = json.loads(self.connection.execute("SELECT json_serialize_sql(?)", [sql])
                          .fetchone()[0])  # fmt: skip
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                name = node.get("function_name")
                if isinstance(name, str):
                    found.add(name.lower())
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(tree)
        return found

    def export(
        self, what: str, target: Path, fmt: str, since: str | None = None, content: bool = False
    ) -> int:
        """Write `what` (runs, events, model_calls, tool_calls) to a parquet, csv or jsonl
        file, with `content` the inputs, outputs and payloads too; returns the rows."""
        if what not in VIEWS:
            raise UsageError(f"cannot export {what}", hint="export " + ", ".join(VIEWS))
        formats = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER)",
                   "jsonl": "(FORMAT json)"}  # fmt: skip
        if fmt not in formats:
            raise UsageError(f"--format {fmt}: use parquet, csv or jsonl")
        where, parameters = "", []
        if since is not None:
            column = "started_at" if what == "runs" else '"at"'
            where, parameters = f" WHERE {column} >= ?", [since_timestamp(since)]
        source = f"({CONTENT[what]})" if content and what in CONTENT else what
        count = self._table(f"SELECT count(*) FROM {source}{where}", parameters).rows[0][0]
        target.parent.mkdir(parents=True, exist_ok=True)
        path = target.as_posix().replace("'", "''")
        self.connection.execute(
            f"COPY (SELECT * FROM {source}{where}) TO '{path}' {formats[fmt]}", parameters
        )
        return int(count)
