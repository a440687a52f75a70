"""`/metrics`, through prometheus-client: what the prompt log says at each scrape (runs by
kind, target and status; failures by error type; tool calls; run latency; tokens; cost), and
this server's own counters (requests by route and status, trigger firings, runs going).

Each server has its own registry (a test can start two), collected on the server's loop, where
the prompt log's connection lives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from afctl.promptlog.store import PromptLog

BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LogCollector:
    """The prompt log's figures, read at each scrape."""

    def __init__(self, log: Callable[[], PromptLog]) -> None:
        self.log = log

    def describe(self) -> list[Any]:
        return []  # nothing is read when the collector is registered

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            HistogramMetricFamily,
        )

        log = self.log()
        log.flush()
        runs = CounterMetricFamily("afctl_runs", "Runs in the prompt log by kind, target and "
                                   "status.", labels=["kind", "target", "status"])  # fmt: skip
        for kind, target, status, count in log.sql.execute(
            "SELECT kind, target, status, count(*) FROM runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ):
            runs.add_metric([kind, target, status], count)
        yield runs
        errors = CounterMetricFamily("afctl_errors", "Failed runs by kind, target and error "
                                     "type.", labels=["kind", "target", "error_type"])  # fmt: skip
        for kind, target, error_type, count in log.sql.execute(
            "SELECT kind, target, coalesce(error_type, 'unknown'), count(*) FROM runs "
            "WHERE status IN ('failed', 'blocked') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ):
            errors.add_metric([kind, target, error_type], count)
        yield errors
        tools = CounterMetricFamily("afctl_tool_calls", "Tool calls by tool and status.",
                                    labels=["tool", "status"])  # fmt: skip
        for tool, status, count in log.sql.execute(
            "SELECT tool, coalesce(status, 'ok'), count(*) FROM events WHERE type = 'tool_call' "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            tools.add_metric([tool, status], count)
        yield tools
        latency = HistogramMetricFamily("afctl_run_latency_seconds", "Latency of finished runs.",
                                        labels=["kind", "target"])  # fmt: skip
        sums = ", ".join(f"sum(CASE WHEN latency_ms <= {b * 1000:g} THEN 1 ELSE 0 END)"
                         for b in BUCKETS_S)  # fmt: skip
        for row in log.sql.execute(
            f"SELECT kind, target, {sums}, count(*), coalesce(sum(latency_ms), 0) / 1000.0 "
            "FROM runs WHERE latency_ms IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            counts, total, seconds = row[2:-2], row[-2], row[-1]
            buckets = [(f"{b:g}", c) for b, c in zip(BUCKETS_S, counts, strict=True)]
            latency.add_metric([row[0], row[1]], [*buckets, ("+Inf", total)], seconds)
        yield latency
        tokens = CounterMetricFamily("afctl_tokens", "Model tokens by target and direction.",
                                     labels=["target", "direction"])  # fmt: skip
        cost = CounterMetricFamily("afctl_cost_usd", "Known model spend in USD by target.",
                                   labels=["target"])  # fmt: skip
        for target, tokens_in, tokens_out, spent in log.sql.execute(
            "SELECT target, coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            "coalesce(sum(cost_usd), 0) FROM runs WHERE kind = 'agent' GROUP BY 1 ORDER BY 1"
        ):
            tokens.add_metric([target, "input"], tokens_in)
            tokens.add_metric([target, "output"], tokens_out)
            cost.add_metric([target], spent)
        yield tokens
        yield cost


class QueueCollector:
    """With a broker (AFCTL_BROKER_URL): the jobs waiting in its queue, and the runs workers
    carry out now (running, with a fresh heartbeat)."""

    def __init__(self, log: Callable[[], PromptLog], environ: Mapping[str, str] | None) -> None:
        from afctl.workers.settings import BrokerSettings

        self.log = log
        self.settings = BrokerSettings.from_env(environ)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        if self.settings is None:
            return
        from prometheus_client.core import GaugeMetricFamily

        from afctl.workers.broker import queue_depth
        from afctl.workers.liveness import fresh

        depth = GaugeMetricFamily("afctl_queue_depth", "Jobs waiting in the broker's queue.",
                                  labels=["queue"])  # fmt: skip
        try:
            depth.add_metric([self.settings.queue], queue_depth(self.settings))
        except Exception:  # Redis unreachable: the figure is left out, the scrape goes on
            pass
        else:
            yield depth
        log = self.log()
        log.flush()
        going = GaugeMetricFamily("afctl_worker_runs", "Runs afctl workers carry out now.",
                                  labels=["worker"])  # fmt: skip
        counts: dict[str, int] = {}
        for worker, beat in log.sql.execute(
            "SELECT worker, heartbeat_at FROM runs WHERE status = 'running' AND worker IS NOT NULL"
        ).fetchall():
            if fresh(beat):
                counts[worker] = counts.get(worker, 0) + 1
        for worker, count in sorted(counts.items()):
            going.add_metric([worker], count)
        yield going


class ServerMetrics:
    """The registry one server exposes."""

    def __init__(
        self, log: Callable[[], PromptLog], running: Callable[[], int],
        environ: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """`environ`: the workspace's settings (the broker's, for the queue's gauges; None:
        the environment's)."""
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(LogCollector(log))
        self.registry.register(QueueCollector(log, environ))
        self.requests = Counter("afctl_http_requests", "Requests by route and status.",
                                ["route", "method", "status"], registry=self.registry)  # fmt: skip
        self.firings = Counter("afctl_trigger_firings", "Workflows started by this server's "
                               "triggers.", ["workflow", "trigger"],
                               registry=self.registry)  # fmt: skip
        gauge = Gauge("afctl_runs_in_progress", "Runs this server has going.",
                      registry=self.registry)  # fmt: skip
        gauge.set_function(lambda: float(running()))

    def request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method, str(status)).inc()

    def fired(self, workflow: str, trigger: str) -> None:
        self.firings.labels(workflow, trigger).inc()

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
