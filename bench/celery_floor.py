"""Celery's own cost per task, the floor under afctl's queue: a no-op task with afctl's
delivery settings (late acks, prefetch 1, threads pool, no results) over a given Redis.
Sends N tasks, waits for the worker to take them all, and prints the CPU per task of the
sending process and of the worker (as JSON).

Usage: python bench/celery_floor.py REDIS_URL [N]   (the worker: ... REDIS_URL --worker)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

QUEUE = "celery-floor"


def app(url: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from afctl.workers.app import make_app
    from afctl.workers.settings import BrokerSettings

    celery = make_app(BrokerSettings(url, QUEUE))

    @celery.task(name="noop")  # type: ignore[untyped-decorator]
    def noop(job: dict[str, object]) -> None:
        return None

    return celery


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    url = sys.argv[1]
    if sys.argv[2:] == ["--worker"]:
        app(url).worker_main(["--quiet", "worker", "--pool=threads", "--concurrency=50", "-Q",
                              QUEUE, "--without-gossip", "--without-mingle",
                              "--loglevel=WARNING"])  # fmt: skip
        return
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    import redis

    client = redis.Redis.from_url(url)
    worker = subprocess.Popen([sys.executable, __file__, url, "--worker"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        sender = app(url)
        sender.send_task("noop", args=[{}], queue=QUEUE)  # connect and warm up
        deadline = time.monotonic() + 30
        while client.llen(QUEUE) or not client.exists("_kombu.binding.celery-floor"):
            assert time.monotonic() < deadline, "the Celery worker did not start"
            time.sleep(0.1)
        time.sleep(1)
        job = {"run_id": "0" * 26, "kind": "agent", "target": "support", "given": "x" * 40}
        before, start = cpu_of(worker.pid), resource.getrusage(resource.RUSAGE_SELF)
        with sender.producer_or_acquire() as producer:
            for index in range(count):
                sender.send_task("noop", args=[job], task_id=f"floor-{index}", queue=QUEUE,
                                 producer=producer)  # fmt: skip
        end = resource.getrusage(resource.RUSAGE_SELF)
        while client.llen(QUEUE) or client.hlen("unacked"):
            time.sleep(0.02)
        worker_cpu = cpu_of(worker.pid) - before
        send_cpu = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
        print(json.dumps({"send_ms": send_cpu / count * 1000,
                          "worker_ms": worker_cpu / count * 1000}))  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(30)


if __name__ == "__main__":
    main()
