"""Benchmark: afctl serve under load, beside a bare Starlette endpoint on the same uvicorn.

1. Throughput and latency: `POST /v1/chat/completions` on an agent using `local/echo` (prompt
   log on: every request is a run written to SQLite), N requests at concurrency C from a
   separate process, beside a bare Starlette endpoint served by the same uvicorn settings that
   returns the same JSON (the ceiling). The two alternate, round by round; medians.
   Target: afctl >= 0.5x the bare endpoint's throughput.
2. Auth overhead per request: checking an API key (a SHA-256 and an indexed SQLite lookup)
   and a JWT (HS256), timed in process. Target <= 0.2 ms each.
3. SSE: time from sending a streamed completion to its first content chunk. The local/echo
   model yields its first token as soon as it is called, so this bounds the delay after the
   model's first token from above. Target <= 20 ms.
4. Memory: the server's resident set after every tenth of M requests. Target: flat.

Usage: python bench/serve_bench.py [--requests 5000] [--concurrency 100] [--repeat 3]
                                   [--memory-requests 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BODY = {"model": "agent/echo", "messages": [{"role": "user", "content": "hello there"}]}
BARE_APP = """
import sys, time, json
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

ANSWER = json.dumps({"id": "chatcmpl-01", "object": "chat.completion", "created": 0,
    "model": "agent/echo", "choices": [{"index": 0, "message": {"role": "assistant",
    "content": "hello there"}, "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}).encode()

async def completions(request):
    await request.body()
    return Response(ANSWER, media_type="application/json")

app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                        access_log=False, server_header=False, limit_concurrency=1000)
uvicorn.Server(config).run()
"""


async def load(url: str, key: str, requests: int, concurrency: int) -> dict[str, Any]:
    """Send `requests` completions at `concurrency`; seconds in all and each latency."""
    import httpx2

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"authorization": f"Bearer {key}"}
    latencies: list[float] = []
    failures = 0
    async with httpx2.AsyncClient(base_url=url, limits=limits, headers=headers,
                                  timeout=60) as client:  # fmt: skip
        queue = iter(range(requests))

        async def worker() -> None:
            nonlocal failures
            for _ in queue:
                started = time.perf_counter()
                answer = await client.post("/v1/chat/completions", json=BODY)
                latencies.append(time.perf_counter() - started)
                failures += answer.status_code != 200

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "latencies": latencies, "failures": failures}


async def first_chunks(url: str, key: str, count: int) -> list[float]:
    """Seconds from sending a streamed completion to its first content chunk."""
    import httpx2

    times = []
    async with httpx2.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"},
                                  timeout=60) as client:  # fmt: skip
        for _ in range(count):
            started = time.perf_counter()
            async with client.stream("POST", "/v1/chat/completions",
                                     json={**BODY, "stream": True}) as answer:  # fmt: skip
                seen = False
                async for line in answer.aiter_lines():  # read to the end: [DONE]
                    if not seen and '"content": "hello' in line:
                        times.append(time.perf_counter() - started)
                        seen = True
    return times


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def auth_overhead(repo: Path) -> tuple[float, float]:
    """Median microseconds to authenticate one request by API key and by JWT."""
    import jwt

    from afctl.context import Context
    from afctl.server.auth import Authenticator, JwtSettings

    secret = "s" * 48
    with Context(workspace=repo) as context:
        _, key = context.api_key_create("runner", name="bench-auth")
        settings = JwtSettings(secret=secret, issuer="https://idp", audience="afctl")
        authenticator = Authenticator(context.services.auth, settings)
        token = jwt.encode({"sub": "b", "iss": "https://idp", "aud": "afctl",
                            "exp": int(time.time()) + 3600, "afctl_roles": "runner"}, secret,
                           algorithm="HS256")  # fmt: skip
        medians = []
        for header in (f"Bearer {key}", f"Bearer {token}"):
            rounds = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(2000):
                    authenticator.principal(header)
                rounds.append((time.perf_counter() - started) / 2000)
            medians.append(statistics.median(rounds) * 1e6)
    return medians[0], medians[1]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str) -> None:
    import httpx2

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url + "/healthz", timeout=1).status_code in (200, 404):
                return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def run_load(url: str, key: str, requests: int, concurrency: int) -> dict[str, Any]:
    """`load` in a separate process (the client must not share the server's CPU budget
    inside one interpreter)."""
    out = subprocess.run([sys.executable, __file__, "--load", url, "--key", key,
                          "--requests", str(requests), "--concurrency", str(concurrency)],
                         check=True, capture_output=True, text=True)  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        result = asyncio.run(load(args.load, args.key, args.requests, args.concurrency))
        print(json.dumps(result))
        return

    from afctl.testing import invoke, write_repo

    work = Path(tempfile.mkdtemp(prefix="afctl-serve-bench-"))
    servers: list[subprocess.Popen[str]] = []
    try:
        repo = write_repo(work, {
            ".afctl/.gitignore": "*\n",
            "all.yaml": "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: echo}\n"
                        "spec: {provider: local, model: echo}\n---\n"
                        "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: echo}\n"
                        "spec: {model: echo, instructions: Say it back.}\n",
        })  # fmt: skip
        assert invoke(["apply", "-f", str(repo), "--yes"], cwd=repo).exit_code == 0
        key = json.loads(invoke(["auth", "keys", "create", "--role", "runner", "-o", "json"],
                                cwd=repo).stdout)["key"]  # fmt: skip
        afctl_port, bare_port = free_port(), free_port()
        afctl = Path(sys.executable).parent / "afctl"
        servers.append(subprocess.Popen(
            [str(afctl), "serve", "--port", str(afctl_port), "--rate-limit", "0",
             "--max-runs-per-key", "10000"], cwd=repo, stderr=subprocess.DEVNULL, text=True,
        ))  # fmt: skip
        servers.append(subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)],
                                        stderr=subprocess.DEVNULL, text=True))  # fmt: skip
        afctl_url, bare_url = f"http://127.0.0.1:{afctl_port}", f"http://127.0.0.1:{bare_port}"
        wait_until_up(afctl_url)
        wait_until_up(bare_url)
        run_load(afctl_url, key, 500, 20)  # warm up both
        run_load(bare_url, key, 500, 20)

        rates: dict[str, list[float]] = {"afctl": [], "bare": []}
        p50: dict[str, list[float]] = {"afctl": [], "bare": []}
        p99: dict[str, list[float]] = {"afctl": [], "bare": []}
        for index in range(args.repeat):
            order = [("afctl", afctl_url), ("bare", bare_url)]
            for name, url in order if index % 2 == 0 else reversed(order):
                result = run_load(url, key, args.requests, args.concurrency)
                assert result["failures"] == 0, (name, result["failures"])
                latencies = sorted(result["latencies"])
                rates[name].append(args.requests / result["seconds"])
                p50[name].append(latencies[len(latencies) // 2] * 1000)
                p99[name].append(latencies[int(len(latencies) * 0.99)] * 1000)
        ratio = statistics.median(a / b for a, b in zip(rates["afctl"], rates["bare"],
                                                        strict=True))  # fmt: skip
        print(
            f"POST /v1/chat/completions, {args.requests} requests at concurrency "
            f"{args.concurrency} from another process, {args.repeat} rounds (medians):"
        )
        for name, label in (
            ("bare", "bare Starlette endpoint"),
            ("afctl", "afctl (agent run + log)"),
        ):
            print(f"  {label:26}: {statistics.median(rates[name]):7.0f} req/s   "
                  f"p50 {statistics.median(p50[name]):6.1f} ms   "
                  f"p99 {statistics.median(p99[name]):6.1f} ms")  # fmt: skip
        print(f"  afctl / bare throughput   : {ratio:.2f}x  (target >= 0.50x)")

        key_us, jwt_us = auth_overhead(repo)
        print(
            f"auth per request: API key {key_us:.0f} us, JWT (HS256) {jwt_us:.0f} us "
            "(target <= 200 us each)"
        )

        firsts = asyncio.run(first_chunks(afctl_url, key, 200))
        print(
            f"SSE first content chunk: median {statistics.median(firsts) * 1000:.1f} ms, "
            f"p99 {sorted(firsts)[int(len(firsts) * 0.99)] * 1000:.1f} ms after sending "
            "(local/echo's first token comes at once; target <= 20 ms)"
        )

        step = max(args.memory_requests // 10, 1)
        pid = servers[0].pid
        readings = [rss_kb(pid)]
        for _ in range(10):
            run_load(afctl_url, key, step, args.concurrency)
            readings.append(rss_kb(pid))
        print(
            f"server memory over {args.memory_requests} more requests (RSS MB, each "
            f"{step}): " + " ".join(f"{r / 1024:.0f}" for r in readings)
        )
        late = readings[5:]
        print(
            f"  growth over the second half: {(late[-1] - late[0]) / 1024:+.1f} MB (target: flat)"
        )
    finally:
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)
        os.environ.pop("AFCTL_SERVER", None)


if __name__ == "__main__":
    main()
