"""Replaying recorded runs (offline, or live on another model) and comparing runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from afctl.errors import UsageError
from afctl.manifests.service import Paths, as_list
from afctl.runtime.service import RunService, sharing_mcp

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.promptlog.service import RestoredRun
    from afctl.providers.types import Message
    from afctl.replay.diff import RunDiff
    from afctl.replay.offline import ReplayReport
    from afctl.runtime.agent import RunResult
    from afctl.runtime.environment import RunEnvironment

REVISIONS = ("recorded", "current")


class ReplayService:
    def __init__(self, runs: RunService) -> None:
        self.runs = runs
        self.logs = runs.logs
        self.workspace = runs.workspace

    def _catalog(
        self, restored: RestoredRun, kind: str, name: str, revision: str, paths: Paths | None
    ) -> Catalog:
        """The resources to replay on: as recorded, or as they are now."""
        if revision not in REVISIONS:
            raise UsageError(f"--revision {revision}: use recorded or current")
        if revision == "recorded":
            return restored.catalog()
        catalog = self.runs.state.catalog(as_list(paths) if paths else None)
        if catalog.find(kind, name) is None:
            raise UsageError(f"{kind.lower()}/{name} is not defined in the current revision")
        return catalog

    def _agent_setup(
        self, run_id: str, revision: str, paths: Paths | None
    ) -> tuple[RunEnvironment, RestoredRun, list[Message] | None]:
        """For replaying an agent run: its environment (recorded or current revision), the
        run, and the conversation it started from (for runs with a session)."""
        from afctl.providers.types import Message

        if revision not in REVISIONS:
            raise UsageError(f"--revision {revision}: use recorded or current")
        restored = self.logs.restore(run_id)
        record = restored.run
        if record.kind != "agent" or not record.agent:
            raise UsageError(f"run {record.id} is a {record.kind} run; replay runs agents")
        catalog = self._catalog(restored, "Agent", record.agent, revision, paths)
        environment = self.runs.environment(catalog, restored.variables)
        first = next((e for e in restored.events if e.type == "model_call"), None)
        history = None
        if record.session_id and first is not None:  # the session as it was then
            earlier = first.payload["request"]["messages"]
            start = 1 if earlier and earlier[0].get("role") == "system" else 0
            history = [Message.from_dict(m) for m in earlier[start:-1]]
        return environment, restored, history

    async def replay(
        self, run_id: str, *, revision: str = "recorded", paths: Paths | None = None,
        live_tools: bool = False,
    ) -> ReplayReport:  # fmt: skip
        """Run a recorded run again offline, serving every model response (and, unless
        `live_tools`, every tool result) from the prompt log; report whether the engine
        reproduced it or where it first diverged. Nothing is written to the log.

        `revision`: `recorded` replays the revision the run used; `current` the one in
        `paths`, or applied in this environment.

        Raises:
            UsageError: no such run, or it cannot be replayed.
        """
        from afctl.replay.offline import Recording, replay_factory, replay_run, tool_runner
        from afctl.runtime.agent import AgentRun, MemoryRecorder, RunHooks, RunRequest
        from afctl.tools.mcp_tool import McpPool

        if self.logs.log.run(run_id).kind == "workflow":
            return await self._replay_workflow(run_id, revision, paths)
        environment, restored, history = self._agent_setup(run_id, revision, paths)
        record, events, payload = restored.run, restored.events, restored.payload
        recording = Recording(events, environment.secrets.redact, tools=not live_tools)
        decisions = {
            (e.payload.get("name"), json.dumps(e.payload.get("arguments"), sort_keys=True)):
            bool(e.payload.get("approved"))
            for e in events if e.type == "approval"
        }  # fmt: skip

        async def approver(name: str, arguments: dict[str, Any]) -> bool:
            return decisions.get((name, json.dumps(arguments, sort_keys=True)), True)

        request = RunRequest(restored.variables, history=history, env=record.env)
        hooks = RunHooks(approver=approver, provider_factory=replay_factory(recording),
                         tool_runner=None if live_tools else tool_runner(recording))  # fmt: skip
        # offline, nothing is started: the models are the recording (never the context's SDK
        # clients), and MCP tools are listed from memory or from the recording
        environment.providers = None
        environment.mcp = McpPool(self.workspace.dir, offline=not live_tools,
                                  recorded=recording.offered_tools())  # fmt: skip
        engine = AgentRun(record.agent or "", environment, MemoryRecorder(), request, hooks)
        report = await sharing_mcp(environment, replay_run(
            engine, payload.get("input") or "", recording, payload.get("output")
        ))  # fmt: skip
        report.run_id = record.id
        return report

    async def _replay_workflow(
        self, run_id: str, revision: str, paths: Paths | None
    ) -> ReplayReport:
        """A workflow run replayed offline: the engine again, each step served from its
        recorded child runs."""
        from afctl.promptlog.store import PromptLog
        from afctl.replay.workflow import RecordedSteps, replay_workflow
        from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

        restored = self.logs.restore(run_id)
        record = restored.run
        if revision in REVISIONS and record.status in ("running", "interrupted"):
            raise UsageError(f"run {record.id} is {record.status}; replay a finished run")
        name = record.target.removeprefix("workflow/")
        catalog = self._catalog(restored, "Workflow", name, revision, paths)
        variables = restored.variables
        environment = self.runs.environment(catalog, variables)
        finished = [e for e in restored.events if e.type == "step"]
        steps = RecordedSteps.load(restored.log, finished, environment.secrets.redact)
        recorded = {e.payload["id"]: (str(e.status), e.payload.get("output")) for e in finished}

        async def no_wait(_: float) -> None:
            return None

        options = WorkflowOptions(variables, record.env, source=steps, sleep=no_wait)
        with PromptLog.in_memory() as memory:
            engine = WorkflowRun(name, environment, memory, options)
            report = await replay_workflow(engine, restored.inputs, recorded,
                                           restored.payload.get("output"))  # fmt: skip
        report.run_id = record.id
        return report

    def diff_runs(self, a: str, b: str) -> RunDiff:
        """Two runs compared step by step (any two runs, not only a run and its replay)."""
        from afctl.replay.diff import Side, diff_runs

        sides = []
        for run_id in (a, b):
            restored = self.logs.restore(run_id)
            payload = restored.payload
            sides.append(Side(restored.run, payload.get("output"), restored.events,
                              payload.get("input"), payload.get("vars") or {}))  # fmt: skip
        return diff_runs(sides[0], sides[1])

    async def replay_live(
        self,
        run_id: str,
        *,
        model: str | None = None,
        params: dict[str, Any] | None = None,
        revision: str = "recorded",
        paths: Paths | None = None,
    ) -> tuple[RunResult, RunDiff]:
        """Run a recorded run's input again for real (optionally on another model or with
        other params), recorded as a new run with `replay_of` set and its spend tagged as a
        replay's; returns it with its step-aligned diff against the original.

        Raises:
            UsageError: no such run, or it cannot be replayed.
        """
        from afctl.runtime.agent import AgentRun, LogRecorder, RunRequest

        environment, restored, history = self._agent_setup(run_id, revision, paths)
        record = restored.run
        request = RunRequest(restored.variables, model=model, params=dict(params or {}),
                             history=history, env=record.env, replay_of=record.id)  # fmt: skip
        agent = AgentRun(record.agent or "", environment, LogRecorder(self.logs.log), request)
        try:
            result = await agent.run(restored.payload.get("input") or "")
        finally:
            self.logs.flush()
        return result, self.diff_runs(record.id, result.run_id)
