"""`/v1/evals`: eval suites run in the background on the server, followed, and their reports
(JSON, JUnit, HTML) downloaded. The suites come in the request as manifest files (as a
remote `afctl eval` sends them); their agents are the applied ones unless sent too."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from afctl.ids import new_ulid
from afctl.server.api import API, Call, json_response, obj
from afctl.server.problems import Problem
from afctl.server.routes.resources import FILES, GIVEN, uploaded

JOBS_KEPT = 200


@dataclass
class EvalJob:
    id: str
    done: int = 0
    total: int = 0
    status: str = "running"
    results: list[Any] = field(default_factory=list)
    error: str | None = None
    exit_code: int | None = None
    task: asyncio.Task[Any] | None = None

    def summary(self) -> dict[str, Any]:
        data = [r.to_dict() for r in self.results]
        passed = None if self.status != "succeeded" else all(r.passed for r in self.results)
        return {"id": self.id, "status": self.status, "done": self.done, "total": self.total,
                "passed": passed,
                "exit_code": self.exit_code, "error": self.error,
                "suites": [{k: v for k, v in d.items() if k != "cases"} for d in data]}  # fmt: skip


def _jobs(call: Call) -> dict[str, EvalJob]:
    jobs: dict[str, EvalJob] = call.server.extras.setdefault("evals", {})
    return jobs


@API.route("POST", "/v1/evals", role="runner", action="evals.start", tag="evals",
           summary="Run eval suites (sent as manifest files) in the background; follow them "
                   "at /v1/evals/{id}",
           body=obj({"files": FILES, "given": GIVEN,
                     "filter": {"type": "string", "maxLength": 500},
                     "limit": {"type": "integer", "minimum": 1},
                     "cache": {"type": "boolean"}}, ("files",)),
           response={"type": "object"}, status=202)  # fmt: skip
async def start_eval(call: Call) -> Any:
    from afctl.errors import EXIT_CHECKS_FAILED, EXIT_OK, AfctlError

    evals = call.server.context.services.evals
    paths = uploaded(call.body)
    evals.suites(paths)  # invalid suites are refused now, not in the background
    job = EvalJob(new_ulid())
    call.target = f"eval/{job.id}"
    assert call.principal is not None
    owner = call.principal.key

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    async def work() -> None:
        try:
            job.results = await evals.evaluate(paths, case_filter=call.body.get("filter"),
                                               limit=call.body.get("limit"),
                                               cache=call.body.get("cache", True),
                                               progress=progress)  # fmt: skip
            job.status = "succeeded"
            errored = any(r.errored for r in job.results)
            job.exit_code = 1 if errored else (
                EXIT_OK if all(r.passed for r in job.results) else EXIT_CHECKS_FAILED)  # fmt: skip
        except AfctlError as exc:
            job.status, job.error, job.exit_code = "failed", exc.message, exc.exit_code
        except asyncio.CancelledError:
            job.status, job.error = "interrupted", "the server stopped"
            raise
        finally:
            call.server.limits.run_ended(owner)

    call.server.limits.run_started(owner)
    job.task = asyncio.create_task(work())
    jobs = _jobs(call)
    jobs[job.id] = job
    for stale in [k for k, j in jobs.items() if j.status != "running"][:-JOBS_KEPT]:
        del jobs[stale]
    return json_response({**job.summary(), "links": {"self": f"/v1/evals/{job.id}"}}, 202,
                         {"location": f"/v1/evals/{job.id}"})  # fmt: skip


def _job(call: Call) -> EvalJob:
    job = _jobs(call).get(call.params["eval_id"])
    if job is None:
        raise Problem(404, f"no eval {call.params['eval_id']!r} on this server",
                      hint="evals are kept while the server runs; the prompt log keeps "
                           "their results (afctl query: the evals view)")  # fmt: skip
    return job


@API.route(
    "GET",
    "/v1/evals/{eval_id}",
    role="viewer",
    tag="evals",
    summary="An eval's progress, then its results by suite",
    response={"type": "object"},
)
async def get_eval(call: Call) -> Any:
    return _job(call).summary()


@API.route("GET", "/v1/evals/{eval_id}/report", role="viewer", tag="evals",
           summary="An eval's report: json (every case), junit or html",
           query={"format": {"type": "string", "enum": ["json", "junit", "html"]}},
           media="application/json, application/xml, text/html")  # fmt: skip
async def eval_report(call: Call) -> Any:
    from starlette.responses import Response

    job = _job(call)
    if job.status != "succeeded":
        raise Problem(409, f"eval {job.id} is {job.status}; its report comes once it succeeds")
    kind = call.query.get("format", "json")
    if kind == "junit":
        from afctl.eval.junit import junit_xml

        return Response(junit_xml(job.results), media_type="application/xml")
    data = [r.to_dict() for r in job.results]
    if kind == "html":
        from afctl.eval.html_report import render_html

        return Response(render_html(data), media_type="text/html; charset=utf-8")
    return json_response(data)
