"""`afctl.Client` and `afctl.AsyncClient`: the façade's methods over HTTP, against `afctl serve`.

    with afctl.Client("http://127.0.0.1:8080", api_key="afk_...") as client:
        result = client.run("agent/support", "Where is my order?")   # a RunResult
        for kind, data in client.events(result.run_id): ...          # its events (SSE)
        plan = client.plan(".")                                      # local files, sent up
        client.apply(".", prune=True)

They return what `afctl.Context` returns (RunResult, Plan, ApplyOutcome, AppliedResource,
EvalResult...), rebuilt from the server's JSON, so code (and the CLI's remote mode,
`--server URL` / `AFCTL_SERVER` with `AFCTL_API_KEY`) treats a remote workspace as a local
one. Manifest paths are read here and sent as files, named relative to this repository's root
(the folder holding `.afctl/`, else the current one), so a remote apply has the same source set
as a local one. Errors come back as the same `afctl.errors` exceptions with the same exit codes.
A run is followed as it goes: streamed text reaches the console when it `streams`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.console import Console
from afctl.errors import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    AfctlError,
    ManifestError,
    StateConflict,
    UsageError,
    UserError,
)
from afctl.sync import ContextLoop

if TYPE_CHECKING:
    import httpx2

    from afctl.eval.runner import EvalResult
    from afctl.manifests.discovery import Uploaded
    from afctl.promptlog.service import Transcript
    from afctl.promptlog.store import RunRecord
    from afctl.runtime.run_types import RunResult
    from afctl.runtime.workflow import WorkflowResult
    from afctl.state.plan import Plan
    from afctl.state.service import ApplyOutcome, Description
    from afctl.state.store import AppliedResource, Revision

SERVER_ENV = "AFCTL_SERVER"
KEY_ENV = "AFCTL_API_KEY"
EVAL_POLL_S = 0.2


class RemoteError(AfctlError):
    """An error the server answered with (its exit code is the one it names)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code  # type: ignore[misc]


def error_of(status: int, body: Any, url: str) -> AfctlError:
    """The afctl error a problem answer stands for."""
    if not isinstance(body, dict):
        return RemoteError(f"the server at {url} answered {status}")
    detail = str(body.get("detail") or f"the server answered {status}")
    hint = body.get("hint")
    kind = str(body.get("type", "")).rsplit(":", 1)[-1]
    if kind == "manifest" and isinstance(body.get("diagnostics"), list):
        from afctl.diagnostics import Diagnostic

        return ManifestError([Diagnostic.from_dict(d) for d in body["diagnostics"]], detail)
    if status == 409 or body.get("exit_code") == EXIT_CONFLICT:
        return StateConflict(detail, hint=hint)
    if kind in ("usage", "not-found"):
        return UsageError(detail, hint=hint)
    if kind == "invalid" or body.get("exit_code") == EXIT_INVALID:
        return UserError(detail, hint=hint)
    if status in (401, 403):
        hint = hint or f"set {KEY_ENV} to a key with the role this needs"
    return RemoteError(detail, hint=hint, exit_code=int(body.get("exit_code") or 1))


def uploaded(paths: Sequence[str | os.PathLike[str]], root: Path) -> Uploaded:
    """The manifests under `paths` (read here), named relative to `root` for the server."""
    from afctl.manifests.discovery import Uploaded, discover
    from afctl.manifests.limits import MAX_FILE_BYTES

    def relative(path: str) -> str:
        absolute = Path(path).absolute()
        name = os.path.relpath(absolute, root)
        return absolute.as_posix() if name.startswith("..") else Path(name).as_posix()

    files = []
    for source in discover([os.fspath(p) for p in paths]):
        if source.path is None:
            raise UsageError("--server cannot read manifests from stdin", hint="pass -f PATH")
        try:
            with open(source.path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {source.display}: {exc.strerror}") from None
        files.append((relative(source.path), data))
    given = tuple(sorted({relative(os.fspath(p)) for p in paths}))
    return Uploaded(tuple(files), given)


class AsyncClient:
    """The façade's methods over HTTP, for async code (see the module's documentation).

    Args:
        url: the server (`AFCTL_SERVER` when omitted).
        api_key: an API key or JWT (`AFCTL_API_KEY` when omitted).
        console: where streamed text and progress go (see `afctl.console`).
        timeout: seconds to wait for an answer (a run is followed for as long as it takes).
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        console: Console | None = None,
        timeout: float = 60.0,
        workspace: str | os.PathLike[str] | None = None,
        env: str | None = None,
    ) -> None:
        url = url or os.environ.get(SERVER_ENV)
        if not url:
            raise UsageError("name the server", hint=f"--server URL or {SERVER_ENV}=URL")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--server {url}: give an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        self.console = console or Console()
        self.timeout = timeout
        from afctl.workspace import Workspace

        self._root = Workspace(workspace, None).root
        self._http: httpx2.AsyncClient | None = None
        self._env: str | None = None
        self._expected_env = env
        """The environment the caller named: the server must serve it."""

    @property
    def root(self) -> Path:
        """This repository's root: uploaded manifests are named relative to it."""
        return self._root

    @property
    def workspace(self) -> str:
        """Where the workspace is: the server's URL (plans show it)."""
        return self.url

    @property
    def env(self) -> str:
        """The server's environment (known after the first answer that names it)."""
        return self._env or "(server)"

    read_plan = staticmethod(lambda path: _state_service().read_plan(path))
    save_plan = staticmethod(lambda plan, path: _state_service().save_plan(plan, path))

    def _client(self) -> httpx2.AsyncClient:
        import httpx2

        if self._http is None:
            headers = {"user-agent": "afctl-client"}
            if self.api_key:
                headers["authorization"] = f"Bearer {self.api_key}"
            self._http = httpx2.AsyncClient(base_url=self.url, headers=headers,
                                            timeout=httpx2.Timeout(self.timeout))  # fmt: skip
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **options: Any) -> Any:
        """The JSON of a successful answer.

        Raises:
            AfctlError: the server refused (as the error it names), or cannot be reached.
        """
        import httpx2

        if self._expected_env is not None and self._env is None:
            self._env = "(checking)"
            served = (await self._call("GET", "/readyz")).get("env")
            self._env = str(served)
            if served != self._expected_env:
                hint = "use the server of that environment, or drop --env"
                raise UsageError(f"the server at {self.url} serves environment {served}, "
                                 f"not {self._expected_env}", hint=hint)  # fmt: skip
        try:
            answer = await self._client().request(method, path, **options)
        except httpx2.TransportError as exc:
            raise RemoteError(f"cannot reach the server at {self.url} ({type(exc).__name__})",
                              hint=f"check --server / {SERVER_ENV}, and that afctl serve "
                                   "runs there") from None  # fmt: skip
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code >= 400:
            raise error_of(answer.status_code, body, self.url)
        return body if body is not None else answer.text

    # -- runs ------------------------------------------------------------------------------

    async def events(
        self, run_id: str, after: int = 0
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """A run's events as they happen, (kind, data), until its `result`; a dropped
        connection is resumed from the last event seen (Last-Event-ID)."""
        import httpx2

        seen = after
        for _ in range(100):
            headers = {"last-event-id": str(seen)} if seen else {}
            try:
                path = f"/v1/runs/{run_id}/events"
                async with self._client().stream("GET", path, headers=headers,
                                                 timeout=None) as answer:  # fmt: skip
                    if answer.status_code >= 400:
                        await answer.aread()
                        raise error_of(answer.status_code, _json(answer.text), self.url)
                    event: dict[str, str] = {}
                    async for line in answer.aiter_lines():
                        if line:
                            if not line.startswith(":"):
                                name, _, value = line.partition(":")
                                event[name] = value.removeprefix(" ")
                            continue
                        if "event" in event:
                            seen = int(event.get("id") or seen)
                            yield event["event"], json.loads(event.get("data") or "{}")
                            if event["event"] == "result":
                                return
                        event = {}
                return
            except (httpx2.RemoteProtocolError, httpx2.ReadError):
                await asyncio.sleep(0.2)  # go on from the last event seen
        raise RemoteError(f"lost the events of run {run_id}", hint=f"afctl runs show {run_id}")

    async def _follow(self, started: dict[str, Any]) -> dict[str, Any]:
        """The final result of a run started in the background, its text streamed to the
        console on the way."""
        if started.get("status") != "running":
            return started
        final: dict[str, Any] = {}
        async for kind, data in self.events(str(started["run_id"]), int(started.get("after", 0))):
            if kind == "text" and self.console.streams:
                self.console.text(str(data.get("delta", "")))
            elif kind == "result":
                final = data
        return final

    async def run(
        self,
        target: str | None,
        user_input: str,
        *,
        paths: Sequence[str] | None = None,
        variables: dict[str, Any] | None = None,
        session: str | None = None,
        model: str | None = None,
    ) -> RunResult:
        """`Context.run` on the server (an applied agent)."""
        from afctl.runtime.run_types import RunResult

        _applied_only(paths)
        if target is None:
            raise UsageError("name the agent to run", hint='afctl run agent/NAME "input"')
        body: dict[str, Any] = {"target": target, "input": user_input, "background": True}
        body.update(_given(variables=variables, session=session, model=model))
        started = await self._call("POST", "/v1/runs", json=body)
        return RunResult.from_dict(await self._follow(started))

    async def run_workflow(
        self,
        target: str,
        inputs: dict[str, Any],
        *,
        paths: Sequence[str] | None = None,
        variables: dict[str, Any] | None = None,
        typed: bool = False,
        input_file: str | os.PathLike[str] | None = None,
    ) -> WorkflowResult:
        """`Context.run_workflow` on the server (an applied workflow)."""
        from afctl.runtime.workflow import WorkflowResult
        from afctl.runtime.workflow_values import read_input_file

        _applied_only(paths)
        if input_file is not None:
            inputs = {**read_input_file(input_file), **inputs}
            typed = typed or not inputs
        body = {"target": target, "input": inputs, "background": True, "typed": typed,
                **_given(variables=variables)}  # fmt: skip
        started = await self._call("POST", "/v1/runs", json=body)
        return WorkflowResult.from_dict(await self._follow(started))

    async def approve(self, run_id: str, *, deny: bool = False) -> RunResult:
        from afctl.runtime.run_types import RunResult

        verb = "deny" if deny else "approve"
        started = await self._call("POST", f"/v1/runs/{run_id}/{verb}", json={"background": True})
        return RunResult.from_dict(await self._follow(started))

    async def resume(self, run_id: str) -> RunResult | WorkflowResult:
        from afctl.runtime.run_types import RunResult
        from afctl.runtime.workflow import WorkflowResult

        started = await self._call("POST", f"/v1/runs/{run_id}/resume", json={"background": True})
        result = await self._follow(started)
        if "steps" in result:
            return WorkflowResult.from_dict(result)
        return RunResult.from_dict(result)

    async def cancel(self, run_id: str) -> None:
        await self._call("POST", f"/v1/runs/{run_id}/cancel")

    async def runs(
        self, *, agent: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        from afctl.promptlog.store import RunRecord

        query = {"limit": limit, **_given(agent=agent, status=status)}
        fields = RunRecord.__dataclass_fields__
        found = await self._call("GET", "/v1/runs", params=query)
        return [RunRecord(**{k: v for k, v in r.items() if k in fields}) for r in found]

    async def transcript(self, run_id: str) -> Transcript:
        from afctl.promptlog.service import Transcript

        return Transcript.from_dict(await self._call("GET", f"/v1/runs/{run_id}"))

    # -- the applied state -----------------------------------------------------------------

    async def get(
        self, kind: str | None = None, name: str | None = None, selector: str | None = None
    ) -> list[AppliedResource]:
        from afctl.manifests.kinds import find_kind
        from afctl.state.store import AppliedResource

        if name is not None:
            if kind is None:
                raise UsageError("name the kind too", hint="afctl get agent NAME")
            one = await self._call("GET", f"/v1/resources/{find_kind(kind).lower()}/{name}")
            return [AppliedResource.from_dict(one)]
        query = _given(kind=None if kind in (None, "all") else kind, selector=selector)
        found = await self._call("GET", "/v1/resources", params=query)
        return [AppliedResource.from_dict(r) for r in found]

    async def describe(self, kind: str, name: str) -> Description:
        from afctl.state.service import Description

        data = await self._call("GET", f"/v1/resources/{kind}/{name}/describe")
        return Description.from_dict(data)

    async def history(self, kind: str, name: str) -> list[Revision]:
        from afctl.state.store import Revision

        found = await self._call("GET", f"/v1/resources/{kind}/{name}/history")
        return [Revision.from_dict(r) for r in found]

    async def plan(self, paths: Sequence[str] | str, *, prune: bool = False) -> Plan:
        from afctl.state.plan import Plan

        data = await self._call("POST", "/v1/plan", json={**self._files(paths), "prune": prune})
        self._env = str(data.get("env") or self._env or "")
        return Plan.from_dict(data)

    async def apply(
        self,
        paths: Sequence[str] | str,
        *,
        prune: bool = False,
        lock_timeout: float = 10.0,
        command: str = "afctl apply",
    ) -> ApplyOutcome:
        """`Context.apply` on the server, as terraform does it: the server plans, the console
        confirms that plan, and exactly that plan is applied (refused if the state moved on
        in between)."""
        from afctl.state.service import ApplyOutcome

        plan = await self.plan(paths, prune=prune)
        if not plan.has_changes or not self.console.confirm(plan, "Apply"):
            return ApplyOutcome(plan, None)
        body = {"plan": plan.to_dict(), "lock_timeout": lock_timeout}
        return ApplyOutcome.from_dict(await self._call("POST", "/v1/apply", json=body))

    async def apply_saved_plan(
        self, plan: Plan, *, lock_timeout: float = 10.0, command: str = "afctl apply PLAN"
    ) -> ApplyOutcome:
        from afctl.state.service import ApplyOutcome

        body = {"plan": plan.to_dict(), "lock_timeout": lock_timeout}
        outcome = ApplyOutcome.from_dict(await self._call("POST", "/v1/apply", json=body))
        self.console.confirm(outcome.plan, "Apply", decided=True)
        return outcome

    def _files(self, paths: Sequence[str] | str) -> dict[str, Any]:
        upload = uploaded([paths] if isinstance(paths, str) else list(paths), self._root)
        return {"files": {name: data.decode("utf-8", "replace") for name, data in upload.files},
                "given": list(upload.given)}  # fmt: skip

    # -- evals -----------------------------------------------------------------------------

    async def evaluate(
        self,
        paths: Sequence[str] | str,
        *,
        case_filter: str | None = None,
        limit: int | None = None,
        only_failed: str | None = None,
        baseline: str | None = None,
        cache: bool = True,
        explain_cache: bool = False,
        executor: str | None = None,
    ) -> list[EvalResult]:
        """`Context.evaluate` on the server: the suites are sent, run there, followed here
        (the console is told the progress), and their results read back. Where the server
        runs them is its own configuration (`executor` must be left `local`)."""
        from afctl.eval.runner import EvalResult

        if executor not in (None, "local"):
            raise UsageError("--executor is the server's to choose, not with --server",
                             hint="set AFCTL_BROKER_URL where afctl serve runs")  # fmt: skip
        if only_failed or baseline or explain_cache:
            raise UsageError("--only-failed, --baseline and --explain-cache work on a local "
                             "workspace, not with --server")  # fmt: skip
        body = {**self._files(paths), "cache": cache, **_given(filter=case_filter, limit=limit)}
        job = await self._call("POST", "/v1/evals", json=body)
        while job["status"] == "running":
            await asyncio.sleep(EVAL_POLL_S)
            job = await self._call("GET", f"/v1/evals/{job['id']}")
            if job["total"]:
                self.console.progress(job["done"], job["total"], "Evaluating")
        if job["status"] != "succeeded":
            raise RemoteError(f"the eval {job['status']}: {job.get('error')}",
                              exit_code=int(job.get("exit_code") or 1))  # fmt: skip
        report = await self._call("GET", f"/v1/evals/{job['id']}/report")
        return [EvalResult.from_dict(r) for r in report]


class Client:
    """`AsyncClient` for synchronous code: the same methods, each returning its result (on
    one event loop kept for the client's life)."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        console: Console | None = None,
        timeout: float = 60.0,
        workspace: str | os.PathLike[str] | None = None,
        env: str | None = None,
    ) -> None:
        self._async = AsyncClient(url, api_key, console=console, timeout=timeout,
                                  workspace=workspace, env=env)  # fmt: skip
        self._loop = ContextLoop()

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and not hasattr(self._async, name):
            raise UsageError(f"{name.replace('_', ' ')} does not work with --server",
                             hint="run it where the workspace is")  # fmt: skip
        attribute = getattr(self._async, name)
        if name in _COROUTINES:

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._loop.run(attribute(*args, **kwargs))

            return call
        return attribute

    def events(self, run_id: str, after: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
        """A run's events as they happen, (kind, data), until its `result`."""
        stream = self._async.events(run_id, after)

        async def next_event() -> tuple[str, dict[str, Any]]:
            return await stream.__anext__()

        while True:
            try:
                yield self._loop.run(next_event())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._loop.close(self._async.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_COROUTINES = frozenset({
    "run", "run_workflow", "approve", "resume", "cancel", "runs", "transcript", "get",
    "describe", "history", "plan", "apply", "apply_saved_plan", "evaluate",
})  # fmt: skip


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != {}}


def _applied_only(paths: Sequence[str] | None) -> None:
    if paths:
        raise UsageError("with --server, runs use what is applied there, not -f files",
                         hint="apply them first: afctl apply -f . --server URL")  # fmt: skip


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _state_service() -> Any:
    from afctl.state.service import StateService

    return StateService
