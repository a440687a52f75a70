"""`/metrics` of `afctl serve`, in the Prometheus text format (version 0.0.4), read from the
prompt log at each scrape: runs by kind, target and status; tool calls by tool and status;
errors by type; run latency histograms; tokens; cost; and this server's trigger firings."""

from __future__ import annotations

from typing import Any

from afctl.promptlog.store import PromptLog

BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _labels(**values: Any) -> str:
    def escape(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in values.items()) + "}"


def prometheus_text(log: PromptLog, fired: dict[tuple[str, str], int]) -> str:
    log.flush()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("afctl_runs_total", "counter", "Runs in the prompt log by kind, target and status.")
    for kind, target, status, count in log.conn.execute(
        "SELECT kind, target, status, count(*) FROM runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ):
        lines.append(f"afctl_runs_total{_labels(kind=kind, target=target, status=status)} {count}")
    family("afctl_errors_total", "counter", "Failed runs by kind, target and error type.")
    for kind, target, error_type, count in log.conn.execute(
        "SELECT kind, target, coalesce(error_type, 'unknown'), count(*) FROM runs "
        "WHERE status IN ('failed', 'blocked') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ):
        lines.append(
            f"afctl_errors_total{_labels(kind=kind, target=target, error_type=error_type)} {count}"
        )
    family("afctl_tool_calls_total", "counter", "Tool calls by tool and status.")
    for tool, status, count in log.conn.execute(
        "SELECT tool, coalesce(status, 'ok'), count(*) FROM events WHERE type = 'tool_call' "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        lines.append(f"afctl_tool_calls_total{_labels(tool=tool, status=status)} {count}")
    family("afctl_run_latency_seconds", "histogram", "Latency of finished runs.")
    sums = ", ".join(f"sum(latency_ms <= {b * 1000:g})" for b in BUCKETS_S)
    for row in log.conn.execute(
        f"SELECT kind, target, {sums}, count(*), coalesce(sum(latency_ms), 0) / 1000.0 FROM runs "
        "WHERE latency_ms IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        kind, target = row[0], row[1]
        counts, total, seconds = row[2:-2], row[-2], row[-1]
        for bound, count in zip(BUCKETS_S, counts, strict=True):
            labels = _labels(kind=kind, target=target, le=f"{bound:g}")
            lines.append(f"afctl_run_latency_seconds_bucket{labels} {count}")
        labels = _labels(kind=kind, target=target, le="+Inf")
        lines.append(f"afctl_run_latency_seconds_bucket{labels} {total}")
        lines.append(
            f"afctl_run_latency_seconds_sum{_labels(kind=kind, target=target)} {seconds:g}"
        )
        lines.append(f"afctl_run_latency_seconds_count{_labels(kind=kind, target=target)} {total}")
    family("afctl_tokens_total", "counter", "Model tokens by target and direction.")
    family_cost: list[str] = []
    for target, tokens_in, tokens_out, cost in log.conn.execute(
        "SELECT target, coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
        "coalesce(sum(cost_usd), 0) FROM runs WHERE kind = 'agent' GROUP BY 1 ORDER BY 1"
    ):
        lines.append(f"afctl_tokens_total{_labels(target=target, direction='input')} {tokens_in}")
        lines.append(f"afctl_tokens_total{_labels(target=target, direction='output')} {tokens_out}")
        family_cost.append(f"afctl_cost_usd_total{_labels(target=target)} {cost:g}")
    family("afctl_cost_usd_total", "counter", "Known model spend in USD by target.")
    lines.extend(family_cost)
    family("afctl_trigger_firings_total", "counter", "Workflows started by this server's triggers.")
    for (workflow, kind), count in sorted(fired.items()):
        lines.append(
            f"afctl_trigger_firings_total{_labels(workflow=workflow, trigger=kind)} {count}"
        )
    return "\n".join(lines) + "\n"
