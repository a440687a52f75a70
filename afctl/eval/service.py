"""Evaluating agents for a context: eval suites, stress tests and parameter tuning. Every
case is a run in the prompt log under its eval's id; results are stored with the eval."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.errors import ManifestError, UsageError
from afctl.manifests.service import Paths, as_list
from afctl.runtime.service import RunService

if TYPE_CHECKING:
    from afctl.eval.runner import CaseResult, EvalResult
    from afctl.eval.stress import StressReport
    from afctl.eval.suite import Suite
    from afctl.eval.target import EvalTarget
    from afctl.eval.tune import Candidate, TuneReport
    from afctl.manifests.catalog import Catalog
    from afctl.promptlog.cache import ResponseCache
    from afctl.promptlog.store import PromptLog


class EvalService:
    def __init__(self, runs: RunService) -> None:
        self.runs = runs
        self.state = runs.state
        self.logs = runs.logs
        self.workspace = runs.workspace
        self.console = runs.console

    def suites(self, paths: Paths) -> tuple[list[Suite], Catalog]:
        """The EvalSuites in `paths`, and the resources they run against (the same files over
        the applied state).

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: there is no suite, or a suite's agent is nowhere to be found.
        """
        from afctl.eval.suite import load_suite
        from afctl.manifests.catalog import Catalog
        from afctl.manifests.validate import validate_paths

        applied = self.state.catalog()
        result, manifests = validate_paths(as_list(paths), None, external=applied.documents)
        if not result.valid:
            raise ManifestError(result.diagnostics, sources=result.sources)
        grants = self.runs.grants()
        suites = []
        for m in manifests:
            if m.kind == "EvalSuite":  # a suite shipped in a blueprint runs under its grant
                grant = grants.for_path(Path(m.file))
                grant.references(m.data)
                root = grant.folder if grant.confined else self.workspace.root
                suite = load_suite(m.data, m.file, root)
                suite.grant = grant
                suites.append(suite)
        if not suites:
            raise UsageError("no EvalSuite in the given files", hint="afctl eval evals/")
        catalog = Catalog({**applied.documents, **{(m.kind, m.name): m.data for m in manifests}})
        files = {m.name: m.file for m in manifests if m.kind == "Agent"}
        for suite in suites:
            suite.agent_file = files.get(suite.agent) if suite.kind == "Agent" else None
            if catalog.find(suite.kind, suite.agent) is None:
                raise UsageError(
                    f"eval suite {suite.name}: {suite.target} is neither in the files nor "
                    f"applied in environment {self.workspace.env}"
                )
        return suites, catalog

    @contextlib.asynccontextmanager
    async def target(self, catalog: Catalog) -> AsyncIterator[EvalTarget]:
        """The runs' shared plumbing (the context's SDK clients and MCP connections); commits
        what the cases recorded at the end."""
        from afctl.eval.target import EvalTarget

        clients = self.runs.clients  # the context's: one start per MCP server for every case
        try:
            yield EvalTarget(self.workspace.root, self.workspace.env, self.workspace.dir,
                             catalog, self.logs.log, clients.providers, self.runs.grants(),
                             clients.mcp)  # fmt: skip
        finally:
            self.logs.flush()

    def _choose_cases(
        self, suites: list[Suite], case_filter: str | None, limit: int | None,
        only_failed: str | None,
    ) -> None:  # fmt: skip
        """Narrow each suite's cases: failed in an earlier eval, matching a regex, the first N."""
        from afctl.safety.regex import RegexError, compile_pattern

        try:
            pattern = compile_pattern(case_filter) if case_filter else None
        except RegexError as exc:
            raise UsageError(f"--filter {case_filter}: {exc}") from None
        log = self.logs.log
        for suite in suites:
            if only_failed is not None:
                earlier = log.evals.case_results(log.evals.resolve(only_failed, suite.name))
                failed = {case for (case, _), runs in earlier.items() if not all(runs)}
                suite.cases = [c for c in suite.cases if c.id in failed]
            if pattern is not None:
                suite.cases = [c for c in suite.cases if pattern.search(c.id)]
            if limit is not None:
                suite.cases = suite.cases[:limit]
            if not suite.cases:
                raise UsageError(f"eval suite {suite.name}: no case is left to run")

    async def evaluate(
        self,
        paths: Paths,
        *,
        case_filter: str | None = None,
        limit: int | None = None,
        only_failed: str | None = None,
        baseline: str | None = None,
        cache: bool = True,
        explain_cache: bool = False,
        progress: Callable[[int, int], None] | None = None,
        executor: str | None = None,
    ) -> list[EvalResult]:
        """Run every EvalSuite in `paths` against its agent (from the same files, else the
        applied state); each case is a run in the prompt log with the eval's id, and the
        results are stored with the eval.

        The console is told the progress (cases done, cases in all). `case_filter` (a regex
        on case ids), `limit` (the first N cases) and `only_failed`
        (`last` or an eval id: the cases that failed there) choose cases; `baseline` (`last` or
        an eval id) pairs the results by case and variant with an earlier eval's and lists
        regressions and fixes. Model answers come from the response cache in the prompt log
        when every input of the call is the same (`cache=False` calls the models anyway);
        `explain_cache` lists each miss with the inputs that differ from the nearest entry.
        `progress(done, total)` is told of each case instead of the console (a server follows
        each eval on its own). `executor` "celery" queues every case for `afctl worker`s
        (AFCTL_BROKER_URL) and reads their runs back from the log (see `eval.queued`); the
        response cache is then the workers' (its hits are not counted here). None: as
        AFCTL_EXECUTOR or the workspace's `executor` setting says, else local.

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: a suite names no agent that is available, or uses what this version
                cannot run.
        """
        from afctl.eval.runner import cache_report, run_suite
        from afctl.promptlog.cache import ResponseCache

        broker = self._broker(executor)  # before anything is opened or written
        suites, catalog = self.suites(paths)
        self._choose_cases(suites, case_filter, limit, only_failed)
        log = self.logs.log
        baselines = (
            {s.name: log.evals.resolve(baseline, s.name) for s in suites} if baseline else {}
        )
        total = sum(len(s.cases) * len(s.variants) * s.repeat for s in suites)
        finished = 0
        console = self.console

        def on_case(_: CaseResult) -> None:
            nonlocal finished
            finished += 1
            if progress is not None:
                progress(finished, total)
            else:
                console.progress(finished, total, "Evaluating")

        dispatcher = None
        if broker is not None:
            from afctl.workers.dispatch import Dispatcher

            dispatcher = Dispatcher(broker, log)
        results = []
        async with self.target(catalog) as target:
            for suite in suites:
                responses = ResponseCache(log, explain=explain_cache) if cache else None
                if dispatcher is not None:
                    make_run, responses = self._queued(dispatcher, target, suite, cache), None
                else:

                    def make_run(
                        case: Any, eval_id: str, variant: Any, repeat: int, suite: Any = suite,
                        responses: ResponseCache | None = responses,
                    ) -> Any:  # fmt: skip
                        return target.case_run(suite, case, variant, repeat, eval_id=eval_id,
                                               cache=responses)  # fmt: skip

                try:
                    evaluated = await run_suite(
                        self._for_executor(suite, dispatcher), make_run, target.outcome,
                        suite.grant, on_case, target.models(suite),
                    )  # fmt: skip
                finally:
                    if dispatcher is not None and suite is suites[-1]:
                        await dispatcher.aclose()
                if responses is not None:
                    evaluated.cache = cache_report(responses, evaluated, explain_cache)
                results.append(evaluated)
        for evaluated in results:
            if evaluated.suite in baselines:
                earlier = log.evals.case_results(baselines[evaluated.suite])
                evaluated.compare(baselines[evaluated.suite], earlier)
            data = evaluated.to_dict()
            log.evals.save(data, data["cases"])
        return results

    def _broker(self, chosen: str | None) -> Any:
        """None to run cases here; the broker to queue them on for workers (checked).

        Raises:
            UsageError: an unknown executor, or celery without a broker.
            BrokerUnavailable: the broker cannot be reached.
        """
        from afctl.workers.settings import executor

        environ = self.workspace.settings
        if executor(chosen, environ) == "local":
            return None
        from afctl.workers.broker import usable_broker

        return usable_broker("--executor celery", environ)

    @staticmethod
    def _for_executor(suite: Suite, dispatcher: Any) -> Suite:
        """On workers, every case is queued at once (the workers' concurrency bounds them)."""
        if dispatcher is None:
            return suite
        from dataclasses import replace

        total = len(suite.cases) * len(suite.variants) * suite.repeat
        return replace(suite, concurrency=max(total, 1))

    def _queued(self, dispatcher: Any, target: EvalTarget, suite: Suite, cache: bool) -> Any:
        """make_run for a suite whose cases run on workers."""
        from afctl.eval.queued import QueuedCase, case_job, suite_revision
        from afctl.ids import new_ulid

        log = self.logs.log
        revision = suite_revision(log, suite, target.environment({}))

        def make_run(case: Any, eval_id: str, variant: Any, repeat: int) -> QueuedCase:
            job = case_job(suite, case, variant, repeat, eval_id=eval_id, revision=revision,
                           env=self.workspace.env, run_id=new_ulid(), cache=cache)  # fmt: skip
            return QueuedCase(dispatcher, job, log)

        return make_run

    async def stress(
        self,
        paths: Paths,
        ramp: list[int],
        duration_s: float,
    ) -> list[StressReport]:
        """Load-test every suite's agent: at each concurrency of `ramp`, for `duration_s`,
        runs of its cases one after another (streamed, never from the cache), recorded in the
        prompt log under the stress test's id. The console is told each step as it ends.

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: no suite, or its agent is nowhere to be found.
        """
        from afctl.eval.stress import stress

        suites, catalog = self.suites(paths)
        reports = []
        async with self.target(catalog) as target:
            for suite in suites:

                def make_run(
                    case: Any, variant: Any, stress_id: str, on_text: Any, suite: Any = suite
                ) -> Any:
                    return target.case_run(suite, case, variant, 0, eval_id=stress_id,
                                           on_text=on_text)  # fmt: skip

                reports.append(await stress(suite, make_run, ramp, duration_s,
                                            self.console.step))  # fmt: skip
        return reports

    async def tune(
        self,
        paths: Paths,
        params: list[str],
        *,
        strategy: str = "grid",
        samples: int | None = None,
        seed: int = 0,
        budget_usd: float | None = None,
        write: bool = False,
    ) -> list[TuneReport]:
        """Run each suite over the space of `params` (`name=v1,v2` or `name=@values.yaml`;
        `model`, `instructions` or any model parameter) by `strategy`, rank the candidates by
        pass rate, then cost, then latency, and with `write` apply the winner to the agent's
        manifest file. Every candidate's evaluation is an eval in the prompt log (the suite's
        own matrix is replaced by the candidates). The console is told each candidate as a step
        (text) as it starts.

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: a flag is wrong, or `write` has no agent file to change.
        """
        from afctl.eval.tune import candidates_of, parse_params, tune, write_patch
        from afctl.promptlog.cache import ResponseCache

        space = candidates_of(parse_params(params, Path.cwd()))
        suites, catalog = self.suites(paths)
        for suite in suites:
            if suite.kind != "Agent":
                raise UsageError(
                    f"eval suite {suite.name} targets {suite.target}; afctl tune tunes agents"
                )
            if write and suite.agent_file is None:
                raise UsageError(
                    f"--write: agent/{suite.agent} is not defined in the given files",
                    hint="pass the file that defines the agent along with the suite",
                )
        reports = []
        async with self.target(catalog) as target:
            responses = ResponseCache(self.logs.log)
            for suite in suites:

                async def evaluate(suite: Suite, candidate: Candidate, cases: list[Any]) -> Any:
                    self.console.step(f"trying {candidate.id} on {len(cases)} cases")
                    return await self._trial(target, catalog, responses, suite, candidate, cases)

                reports.append(await tune(suite, space, evaluate, strategy=strategy,
                                          samples=samples, seed=seed,
                                          budget_usd=budget_usd))  # fmt: skip
        for report in reports if write else []:
            if report.winner is not None and report.agent_file is not None:
                patch = report.winner.candidate.patch()
                write_patch(Path(report.agent_file), report.agent, patch)
                report.written = True
        return reports

    async def _trial(
        self, target: EvalTarget, catalog: Catalog, responses: ResponseCache, suite: Suite,
        candidate: Candidate, cases: list[Any],
    ) -> EvalResult:  # fmt: skip
        """One tuning candidate evaluated on `cases`, stored as an eval of its own."""
        from afctl.eval.runner import run_suite
        from afctl.manifests.catalog import Catalog

        resources = catalog
        if candidate.instructions is not None:
            agent = catalog.get("Agent", suite.agent)
            changed = {**agent, "spec": {**(agent.get("spec") or {}),
                                         "instructions": candidate.instructions}}  # fmt: skip
            resources = Catalog({**catalog.documents, ("Agent", suite.agent): changed})
        trial = dataclasses.replace(suite, cases=cases, variants=[candidate.variant()])

        def make_run(case: Any, eval_id: str, variant: Any, repeat: int) -> Any:
            return target.case_run(trial, case, variant, repeat, eval_id=eval_id,
                                   cache=responses, catalog=resources)  # fmt: skip

        result = await run_suite(trial, make_run, target.outcome, trial.grant,
                                 services=target.models(trial))  # fmt: skip
        data = result.to_dict()
        log: PromptLog = self.logs.log
        log.evals.save(data, data["cases"])
        return result
