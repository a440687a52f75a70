"""Running agents and workflows for a context: starting runs, going on with paused or
interrupted ones. Every run is recorded through the context's shared prompt log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from afctl.console import Console
from afctl.errors import UsageError
from afctl.manifests.service import PathArg, Paths, as_list
from afctl.promptlog.service import LogService
from afctl.runtime.clients import SharedClients
from afctl.state.service import StateService
from afctl.sync import loop_running
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.promptlog.service import RestoredRun
    from afctl.providers.types import Message
    from afctl.runtime.agent import RunResult
    from afctl.runtime.environment import RunEnvironment
    from afctl.runtime.run_types import ItemRunner, RunHooks
    from afctl.runtime.workflow import WorkflowResult
    from afctl.safety.capabilities import Grants

T = TypeVar("T")


async def sharing_mcp(environment: RunEnvironment, work: Awaitable[T]) -> T:
    """`work`, with one pool of MCP servers for all its runs: the environment's (shared by
    the context, which stops them), or one made for it and stopped when it ends."""
    from afctl.tools.mcp_tool import McpPool

    if environment.mcp is not None:
        return await work
    environment.mcp = McpPool(environment.workspace_dir)
    try:
        return await work
    finally:
        await environment.mcp.aclose()


class RunService:
    def __init__(
        self,
        workspace: Workspace,
        state: StateService,
        logs: LogService,
        grants: Callable[[], Grants],
        console: Console | None = None,
    ) -> None:
        self.workspace = workspace
        self.console = console or Console()
        self.clients = SharedClients(workspace)
        """SDK clients and MCP connections the runs of this context share."""
        self.state = state
        self.logs = logs
        self.grants = grants
        """What installed blueprints may do, read afresh on each call (trust may change)."""

    def environment(self, catalog: Catalog, variables: dict[str, Any]) -> RunEnvironment:
        """What runs on `catalog` with these `--var` values need from around them."""
        from afctl.runtime.environment import RunEnvironment
        from afctl.safety.secrets import Secrets

        secrets = Secrets(variables={k: str(v) for k, v in variables.items()})
        environment = RunEnvironment(
            self.workspace.root, secrets, catalog, workspace=self.workspace.dir,
            grants=self.grants(),
        )  # fmt: skip
        if loop_running():  # runs share the context's clients (made on the loop they serve)
            environment.providers = self.clients.providers
            environment.mcp = self.clients.mcp
        return environment

    def hooks(self) -> RunHooks:
        """What a run started by a person plugs in: the console's streaming and approval."""
        from afctl.console import StreamToConsole
        from afctl.runtime.run_types import RunHooks

        console = self.console
        return RunHooks(on_text=StreamToConsole(console) if console.streams else None,
                        approver=console.approve if console.asks else None)  # fmt: skip

    def available(
        self, target: str, catalog: Catalog, paths: Paths | None = None
    ) -> tuple[str, str]:
        """(kind, name) of `target` (`agent/NAME` or `workflow/NAME`) once `catalog` has it.

        Raises:
            UsageError: it is not KIND/NAME, not an agent or workflow, or not there.
        """
        from afctl.manifests.kinds import parse_ref

        kind, name = parse_ref(target)
        if kind not in ("Agent", "Workflow"):
            raise UsageError(f"{target} is a {kind}; agents and workflows run")
        if catalog.find(kind, name) is None:
            what = f"agent/{name} is not defined" if kind == "Agent" else (
                f"{target} is not a workflow defined")  # fmt: skip
            raise self._missing(what, paths)
        return kind, name

    def _missing(self, what: str, paths: Paths | None) -> UsageError:
        where = "in the given files" if paths else f"in environment {self.workspace.env}"
        hint = "apply it first (afctl apply -f .), or pass its manifest with -f"
        return UsageError(f"{what} {where}", hint=hint)

    async def run(
        self,
        target: str | None,
        user_input: str,
        *,
        paths: Paths | None = None,
        variables: dict[str, Any] | None = None,
        session: str | None = None,
        model: str | None = None,
        run_id: str | None = None,
        hooks: RunHooks | None = None,
        history: list[Message] | None = None,
    ) -> RunResult:
        """Run an agent (`agent/NAME`) on one input; the run is recorded in the prompt log.

        The answer streams to the console when it `streams`. Tool calls that need approval
        are put to the console when it `asks`; otherwise the run pauses with status
        `awaiting_approval` (see `approve`).

        The agent and what it uses come from `paths` when given, else from the applied state of
        this environment; with `paths` holding exactly one agent, `target` may be None. A failing
        run returns a result with status `failed`; only mistakes in the request itself (an
        unknown agent, a bad flag) raise. `run_id` names the run (a server names a background
        run before it starts); `hooks` replace the console's (a server streams each run to
        its own caller); `history` is the conversation before `user_input`, given instead of a
        session's (an OpenAI-style client sends it with every request).

        Raises:
            UsageError: the target is not an agent that is available.
        """
        from afctl.manifests.kinds import parse_ref
        from afctl.runtime.agent import AgentRun, LogRecorder, RunRequest

        catalog = self.state.catalog(as_list(paths) if paths else None)
        if target is None:
            agents = list(catalog.of_kind("Agent")) if paths else []
            if len(agents) != 1:
                hint = 'afctl run agent/NAME "input" (or -f with one agent)'
                raise UsageError("name the agent to run", hint=hint)
            target = f"agent/{agents[0]}"
        kind, name = parse_ref(target)
        if kind != "Agent":
            raise UsageError(f"afctl run runs agents; {target} is a {kind}")
        self.available(target, catalog, paths)
        variables = dict(variables or {})
        environment = self.environment(catalog, variables)
        request = RunRequest(variables, session, model, history=history, env=self.workspace.env,
                             run_id=run_id)  # fmt: skip
        agent_run = AgentRun(name, environment, LogRecorder(self.logs.log), request,
                             hooks or self.hooks())  # fmt: skip
        try:
            return await agent_run.run(user_input)
        finally:
            self.logs.flush()

    async def run_workflow(
        self,
        target: str,
        inputs: dict[str, Any],
        *,
        paths: Paths | None = None,
        variables: dict[str, Any] | None = None,
        typed: bool = False,
        input_file: PathArg | None = None,
        run_id: str | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> WorkflowResult:
        """Run a workflow (`workflow/NAME`) on `inputs`; the run and every step's child run are
        recorded in the prompt log. Inputs given as text (`typed=False`, from `--input k=v`)
        are read as YAML scalars where the workflow's schema wants a non-string; `input_file`
        holds more, as one JSON or YAML object (`inputs` go over them).

        Raises:
            UsageError: the target is not an available workflow, or the inputs do not match
                its `inputs` schema.
        """
        from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

        catalog = self.state.catalog(as_list(paths) if paths else None)
        name, inputs = self.workflow_inputs(target, catalog, inputs, typed=typed,
                                            input_file=input_file, paths=paths)  # fmt: skip
        variables = dict(variables or {})
        environment = self.environment(catalog, variables)
        options = WorkflowOptions(variables, self.workspace.env, on_event=on_event)
        engine = WorkflowRun(name, environment, self.logs.log, options, run_id=run_id)
        try:
            return await sharing_mcp(environment, engine.run(inputs))
        finally:
            self.logs.flush()

    def workflow_inputs(
        self, target: str, catalog: Catalog, inputs: dict[str, Any], *, typed: bool = True,
        input_file: PathArg | None = None, paths: Paths | None = None,
    ) -> tuple[str, dict[str, Any]]:  # fmt: skip
        """(name, inputs) of workflow `target` in `catalog`: `input_file`'s object under
        `inputs`, and text values read as YAML scalars where its schema wants another type
        (`typed=False`). Whether they match its schema is checked as it starts.

        Raises:
            UsageError: the target is not an available workflow, or the file is unreadable.
        """
        from afctl.runtime.workflow_values import coerce_inputs, read_input_file

        kind, name = self.available(target, catalog, paths)
        if kind != "Workflow":
            raise self._missing(f"{target} is not a workflow defined", paths)
        spec = catalog.get("Workflow", name).get("spec") or {}
        if input_file is not None:
            inputs = {**read_input_file(input_file), **inputs}
        if not typed:
            inputs = coerce_inputs(inputs, spec.get("inputs"))
        return name, inputs

    async def resume(
        self, run_id: str, *, hooks: RunHooks | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        fan_out: ItemRunner | None = None, worker: str | None = None,
        step_of: str | None = None,
    ) -> RunResult | WorkflowResult:  # fmt: skip
        """Go on with a run that a crash interrupted, as the same run, on the revision it
        started with: a workflow's finished steps are not run again (nor the agent runs its
        running steps had finished; those interrupted go on); an agent run goes on from its
        last recorded model answer, and tool calls with recorded results are not made again
        (see `runtime.resumption`). `hooks` are an agent run's; `on_event`, `fan_out` and
        `worker` a workflow's (see `WorkflowOptions`). A step of a workflow resumes only with
        it, or as `step_of` it (a worker resuming a `for_each` item).

        Raises:
            UsageError: no such run, it is not interrupted, or it is a step of another run.
        """
        restored = self.logs.restore(run_id)
        record = restored.run
        if record.status != "interrupted":
            raise UsageError(
                f"run {record.id} is {record.status}; only an interrupted run resumes",
                hint="start it again with afctl run" if record.status == "failed" else None,
            )
        if record.parent_id is not None and record.parent_id != step_of:
            raise UsageError(f"run {record.id} is a step of run {record.parent_id}",
                             hint=f"resume that one: afctl resume {record.parent_id}")  # fmt: skip
        if record.kind == "agent" and record.agent:
            return await self._go_on(restored, hooks)
        if record.kind != "workflow":
            raise UsageError(f"run {record.id} is a {record.kind} run; agent and workflow runs "
                             "resume")  # fmt: skip
        return await self._resume_workflow(restored, on_event, fan_out, worker)

    async def _resume_workflow(
        self, restored: RestoredRun, on_event: Callable[[str, dict[str, Any]], None] | None,
        fan_out: ItemRunner | None, worker: str | None,
    ) -> WorkflowResult:  # fmt: skip
        from afctl.runtime.workflow import StepState, WorkflowOptions, WorkflowRun

        record = restored.run
        fields = StepState.__dataclass_fields__
        done = {
            state.id: state
            for state in (StepState(**{k: v for k, v in e.payload.items() if k in fields})
                          for e in restored.events if e.type == "step")
        }  # fmt: skip
        variables = restored.variables
        environment = self.environment(restored.catalog(), variables)
        name = record.target.removeprefix("workflow/")
        options = WorkflowOptions(variables, record.env or self.workspace.env, record.parent_id,
                                  on_event=on_event, eval_id=record.eval_id, fan_out=fan_out,
                                  worker=worker)  # fmt: skip
        engine = WorkflowRun(name, environment, self.logs.log, options, run_id=record.id)
        engine.skip_seq(max((e.seq for e in restored.events), default=0))
        try:
            return await sharing_mcp(environment, engine.resume(restored.inputs, done))
        finally:
            self.logs.flush()

    async def _go_on(
        self, restored: RestoredRun, hooks: RunHooks | None, approved: bool | None = None
    ) -> RunResult:
        """An agent run from the log goes on as the same run (see `AgentRun.resume`)."""
        from afctl.runtime.agent import AgentRun, LogRecorder, RunRequest

        record = restored.run
        variables = restored.variables
        environment = self.environment(restored.catalog(), variables)
        request = RunRequest(variables, record.session_id, env=record.env or self.workspace.env,
                             parent_id=record.parent_id)  # fmt: skip
        agent_run = AgentRun(str(record.agent), environment, LogRecorder(self.logs.log), request,
                             hooks or self.hooks())  # fmt: skip
        try:
            return await agent_run.resume(restored, approved)
        finally:
            self.logs.flush()

    async def approve(
        self,
        run_id: str,
        *,
        deny: bool = False,
        hooks: RunHooks | None = None,
    ) -> RunResult:
        """Approve (or deny) the tool calls a paused run waits for, and let it go on, as the
        same run, with the agent revision it started with.

        Raises:
            UsageError: no such run, or it is not awaiting approval.
        """
        restored = self.logs.restore(run_id)
        record = restored.run
        if record.status != "awaiting_approval" or not record.agent:
            raise UsageError(
                f"run {record.id} is {record.status}, not awaiting approval",
                hint="afctl runs --status awaiting_approval lists the runs that wait",
            )
        return await self._go_on(restored, hooks, approved=not deny)
