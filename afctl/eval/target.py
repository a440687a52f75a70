"""What an eval, a stress test and a tuning run all drive: a suite's agent, run case by case
as ordinary runs in the prompt log, sharing one provider pool (connections, concurrency
limits) for the life of an event loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.eval.assertions import Outcome
from afctl.eval.suite import Case, Suite, Variant
from afctl.promptlog.cache import ResponseCache
from afctl.promptlog.store import PromptLog
from afctl.providers.pool import ProviderPool
from afctl.providers.types import OnText
from afctl.runtime.agent import AgentRun, LogRecorder, RunHooks, RunRequest, RunResult, Step
from afctl.runtime.environment import Catalog, RunEnvironment
from afctl.runtime.workflow import WorkflowRun
from afctl.safety.capabilities import Grants
from afctl.tools.mcp_tool import McpPool


@dataclass
class EvalTarget:
    root: Path
    env: str
    workspace: Path
    catalog: Catalog
    log: PromptLog
    pool: ProviderPool
    grants: Grants | None = None
    mcp: McpPool | None = None

    def case_run(
        self,
        suite: Suite,
        case: Case,
        variant: Variant,
        repeat: int,
        *,
        eval_id: str,
        cache: ResponseCache | None = None,
        on_text: OnText | None = None,
        catalog: Catalog | None = None,
    ) -> AgentRun | WorkflowCase:
        """A run of the suite's target for one case in one variant (`catalog` overrides the
        resources, as tuning does to try other instructions)."""
        variables = case.vars_for(variant)
        environment = self.environment(variables, catalog)
        if suite.kind == "Workflow":
            from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

            options_of_flow = WorkflowOptions(
                variables, self.env, eval_id=eval_id, cache=cache, repeat=repeat
            )
            return WorkflowCase(WorkflowRun(suite.agent, environment, self.log, options_of_flow))
        request = RunRequest(variables, model=variant.model, params=dict(variant.params),
                             env=self.env, eval_id=eval_id, repeat=repeat)  # fmt: skip
        recorder = LogRecorder(self.log, commit_at_end=False)  # results are saved together
        hooks = RunHooks(on_text=on_text, cache=cache)
        return AgentRun(suite.agent, environment, recorder, request, hooks)

    def environment(
        self, variables: dict[str, Any], catalog: Catalog | None = None
    ) -> RunEnvironment:
        """What a case's run (with these variables) runs in."""
        from afctl.safety.secrets import Secrets

        secrets = Secrets(variables={k: str(v) for k, v in variables.items()})
        return RunEnvironment(self.root, secrets, catalog or self.catalog, self.workspace,
                              self.grants, providers=self.pool, mcp=self.mcp)  # fmt: skip

    @staticmethod
    def outcome(run: AgentRun | WorkflowCase, case: Case, result: Any) -> Outcome:
        """What assertions see of a finished run."""
        return Outcome.of_run(result, run.trail, case.vars)

    def models(self, suite: Suite) -> Any:
        """The models the suite's assertions ask (judges, embeddings)."""
        from afctl.eval.models import EvalModels

        return EvalModels(
            self.catalog, self.pool, self.root, self.workspace, suite.judge, self.grants
        )


class WorkflowCase:
    """A workflow run in the shape the eval runner drives: `run(inputs)` gives a RunResult
    whose output is the workflow's outputs as JSON; `trail` holds its tool steps as tool
    calls, so tool assertions see them."""

    def __init__(self, workflow: WorkflowRun) -> None:
        self.workflow = workflow
        self.run_id = workflow.run_id
        self.trail: list[Step] = workflow.trail

    async def run(self, inputs: Any) -> RunResult:
        import json

        from afctl.errors import UsageError
        from afctl.providers.types import Usage

        try:
            result = await self.workflow.run(dict(inputs))
        except UsageError as exc:  # inputs that do not match the schema fail the case
            return RunResult(self.run_id, "failed", None, exc.message, "input")
        output = None if result.outputs is None else json.dumps(result.outputs, ensure_ascii=False)
        return RunResult(
            self.run_id, result.status, output, result.error,
            None if result.ok else "workflow", Usage(result.tokens, 0), result.cost_usd,
            result.latency_ms, 0, sum(len(s.runs) for s in result.steps.values()),
        )  # fmt: skip
