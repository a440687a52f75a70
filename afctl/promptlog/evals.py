"""Evals in the prompt log: each eval's summary and the result of every case, variant and
repeat, which `--only-failed` and `--baseline` read back."""

from __future__ import annotations

import json
from typing import Any

from afctl.errors import UsageError
from afctl.ids import utc_now
from afctl.promptlog.writer import LogWriter
from afctl.storage.sql import Sql


class EvalRecords:
    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def save(self, summary: dict[str, Any], cases: list[dict[str, Any]]) -> None:
        """An eval's record and the result of each case, variant and repeat."""

        def write(connection: Sql) -> None:
            connection.execute(
                "INSERT INTO eval_records (id, suite, agent, started_at, pass_rate, passed, "
                "summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [summary["eval_id"], summary["suite"], summary["agent"], utc_now(),
                 summary["pass_rate"], int(summary["passed"]), json.dumps(summary)],
            )  # fmt: skip
            connection.executemany(
                "INSERT INTO eval_cases (eval_id, case_id, variant, repeat, run_id, passed, "
                "score, assertions) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(summary["eval_id"], c["case_id"], c["variant"], c["repeat"], c["run_id"],
                  int(c["passed"]), c["score"], json.dumps(c["assertions"])) for c in cases],
            )  # fmt: skip

        self.writer.submit(write, now=True)

    def resolve(self, reference: str, suite: str) -> str:
        """The id of an eval of `suite`: `last`, or an id or unique prefix.

        Raises:
            UsageError: there is none.
        """
        self.writer.flush()
        conn = self.writer.sql
        if reference == "last":
            row = conn.execute(
                "SELECT id FROM eval_records WHERE suite = ? ORDER BY started_at DESC, id DESC "
                "LIMIT 1",
                [suite],
            ).fetchone()
            if row is None:
                raise UsageError(f"suite {suite} has not been evaluated yet")
            return str(row[0])
        rows = conn.execute(
            "SELECT id FROM eval_records WHERE id LIKE ? LIMIT 2", [reference + "%"]
        ).fetchall()
        if len(rows) != 1:
            raise UsageError(
                f"{'no eval' if not rows else 'more than one eval'} matches {reference!r}"
            )
        return str(rows[0][0])

    def case_results(self, eval_id: str) -> dict[tuple[str, str], list[bool]]:
        """(case, variant) -> pass or fail of each repeat, in an earlier eval."""
        self.writer.flush()
        results: dict[tuple[str, str], list[bool]] = {}
        for case_id, variant, passed in self.writer.sql.execute(
            "SELECT case_id, variant, passed FROM eval_cases WHERE eval_id = ? "
            "ORDER BY case_id, variant, repeat",
            [eval_id],
        ):
            results.setdefault((case_id, variant), []).append(bool(passed))
        return results
