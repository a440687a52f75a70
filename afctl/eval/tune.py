"""Closed-loop tuning: run a suite over a space of models, parameters and instructions, rank
the candidates (pass rate, then cost, then latency) and turn the winner into a patch of the
agent's manifest.

Strategies: `grid` tries every candidate on every case; `random` a sample of candidates;
`halving` (successive halving) tries every candidate on a few cases, keeps the better half,
doubles the cases, and so on until one candidate is left or every case has been used: poor
candidates stop costing early. With a budget, no candidate starts once the spend reaches it.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.eval.runner import EvalResult, percentile
from afctl.eval.suite import Case, Suite, Variant

STRATEGIES = ("grid", "random", "halving")
AGENT_FIELDS = ("model", "instructions")
"""Tuned fields that are the agent's own; every other name is a model parameter."""


@dataclass(frozen=True)
class Candidate:
    id: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    instructions: str | None = None

    def variant(self) -> Variant:
        return Variant(self.id, self.model, dict(self.params))

    def patch(self) -> dict[str, Any]:
        """What the agent's `spec` gets when this candidate wins."""
        spec: dict[str, Any] = {}
        if self.model is not None:
            spec["model"] = self.model
        if self.params:
            spec["params"] = dict(self.params)
        if self.instructions is not None:
            spec["instructions"] = self.instructions
        return spec


@dataclass
class Scored:
    candidate: Candidate
    result: EvalResult
    cases: int

    @property
    def pass_rate(self) -> float:
        return self.result.pass_rate

    @property
    def cost_usd(self) -> float | None:
        costs = [c.cost_usd for c in self.result.cases]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    @property
    def latency_ms(self) -> float:
        return percentile([c.latency_ms for c in self.result.cases], 0.5) or 0.0

    def rank_key(self) -> tuple[float, float, float]:
        cost = self.cost_usd
        return (-self.pass_rate, math.inf if cost is None else cost, self.latency_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.id,
            "eval_id": self.result.eval_id,
            "cases": self.cases,
            "pass_rate": round(self.pass_rate, 4),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "latency_p50_ms": round(self.latency_ms, 1),
        }


@dataclass
class TuneReport:
    suite: str
    agent: str
    strategy: str
    ranking: list[Scored]
    """The candidates of the last round, best first."""
    rounds: list[list[Scored]]
    skipped: list[Candidate]
    """Candidates never tried: the budget ran out first."""
    spent_usd: float | None
    agent_file: str | None = None
    written: bool = False

    @property
    def winner(self) -> Scored | None:
        return self.ranking[0] if self.ranking else None

    def to_dict(self) -> dict[str, Any]:
        winner = self.winner
        return {
            "schema": "afctl.tune/v1",
            "suite": self.suite,
            "agent": self.agent,
            "strategy": self.strategy,
            "winner": None if winner is None else winner.candidate.id,
            "patch": None if winner is None else {"spec": winner.candidate.patch()},
            "agent_file": self.agent_file,
            "written": self.written,
            "spent_usd": None if self.spent_usd is None else round(self.spent_usd, 6),
            "ranking": [s.to_dict() for s in self.ranking],
            "rounds": [[s.to_dict() for s in r] for r in self.rounds],
            "skipped": [c.id for c in self.skipped],
        }


def parse_params(given: list[str], base: Path) -> dict[str, list[Any]]:
    """`name=v1,v2` options as the space's axes (values read as YAML scalars: 0.3 is a number);
    `name=@file.yaml` reads the values from a YAML list (instructions are long).

    Raises:
        UsageError: an option is not name=values, a file cannot be read, or a name repeats.
    """
    from afctl.manifests.yaml_loader import load_bytes

    axes: dict[str, list[Any]] = {}
    for option in given:
        name, sep, values = option.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise UsageError(f"--param {option}: write name=value1,value2 or name=@file.yaml")
        if name in axes:
            raise UsageError(f"--param {name} is given twice; list its values in one option")
        if values.startswith("@"):
            path = base / values[1:]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"--param {option}: cannot read {path}: {exc.strerror}") from None
            loaded = load_bytes(data, str(path))
            documents = [d.data for d in loaded.documents]
            if (any(d.is_error for d in loaded.diagnostics) or len(documents) != 1
                    or not isinstance(documents[0], list) or not documents[0]):  # fmt: skip
                raise UsageError(f"--param {option}: {path} must hold a YAML list of values")
            axes[name] = list(documents[0])
        else:
            axes[name] = [_scalar(v.strip()) for v in values.split(",")]
    if not axes:
        raise UsageError(
            "give at least one --param", hint="afctl tune s.yaml --param temperature=0,0.7"
        )
    return axes


def _scalar(text: str) -> Any:
    from afctl.manifests.yaml_loader import load_bytes

    loaded = load_bytes(text.encode(), "<param>")
    if loaded.documents and isinstance(loaded.documents[0].data, (int, float, bool, str)):
        return loaded.documents[0].data
    return text


def candidates_of(axes: dict[str, list[Any]]) -> list[Candidate]:
    """Every combination of the axes, in a stable order."""
    names = list(axes)
    made = []
    for combination in itertools.product(*(axes[n] for n in names)):
        model, instructions, params, parts = None, None, {}, []
        for name, value in zip(names, combination, strict=True):
            if name == "model":
                model = str(value)
                parts.append(f"model={value}")
            elif name == "instructions":
                instructions = str(value)
                parts.append(f"instructions=#{axes[name].index(value) + 1}")
            else:
                params[name] = value
                parts.append(f"{name}={value}")
        made.append(Candidate(",".join(parts), model, params, instructions))
    return made


Evaluate = Callable[[Suite, Candidate, list[Case]], Awaitable[EvalResult]]


async def tune(
    suite: Suite,
    candidates: list[Candidate],
    evaluate: Evaluate,
    *,
    strategy: str = "grid",
    samples: int | None = None,
    seed: int = 0,
    budget_usd: float | None = None,
) -> TuneReport:
    """Try the candidates on the suite's cases (`evaluate(suite, candidate, cases)`) by the
    strategy and rank them."""
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy {strategy}: use one of {', '.join(STRATEGIES)}")
    pool = list(candidates)
    if strategy == "random":
        count = min(len(pool), samples or min(8, len(pool)))
        pool = random.Random(seed).sample(pool, count)
    spent: float | None = 0.0
    skipped: list[Candidate] = []
    rounds: list[list[Scored]] = []

    async def run_round(members: list[Candidate], cases: list[Case]) -> list[Scored]:
        nonlocal spent
        scored = []
        for candidate in members:
            if budget_usd is not None and spent is not None and spent >= budget_usd:
                skipped.append(candidate)
                continue
            result = await evaluate(suite, candidate, cases)
            entry = Scored(candidate, result, len(cases))
            cost = entry.cost_usd
            spent = None if cost is None or spent is None else spent + cost
            scored.append(entry)
        scored.sort(key=Scored.rank_key)
        rounds.append(scored)
        return scored

    if strategy != "halving":
        ranking = await run_round(pool, suite.cases)
    else:
        steps = max(1, math.ceil(math.log2(len(pool)))) if len(pool) > 1 else 1
        size = max(1, math.ceil(len(suite.cases) / 2 ** (steps - 1)))
        members = pool
        while True:
            ranking = await run_round(members, suite.cases[:size])
            if len(ranking) <= 1 or size >= len(suite.cases):
                break
            members = [s.candidate for s in ranking[: max(1, math.ceil(len(ranking) / 2))]]
            size = min(len(suite.cases), size * 2)
    return TuneReport(suite.name, suite.agent, strategy, ranking, rounds, skipped, spent,
                      suite.agent_file)  # fmt: skip


def write_patch(file: Path, agent: str, patch: dict[str, Any]) -> None:
    """Apply a winner's patch to the Agent `agent` in `file`, keeping comments, order and
    the other documents as they are (ruamel round trip); the file is replaced whole.

    Raises:
        UsageError: the file cannot be read or written, or holds no such agent.
    """
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from afctl.files import write_atomically

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        text = file.read_text("utf-8")
        documents = list(yaml.load_all(text))
    except (OSError, YAMLError) as exc:
        raise UsageError(f"cannot update {file}: {exc}") from None
    offset = _sequence_offset(text)
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    target = next(
        (d for d in documents if isinstance(d, dict) and d.get("kind") == "Agent"
         and (d.get("metadata") or {}).get("name") == agent),
        None,
    )  # fmt: skip
    if target is None:
        raise UsageError(f"{file} does not define agent/{agent}")
    spec = target.setdefault("spec", {})
    for key, value in as_block_text(patch).items():
        if key == "params":
            params = spec.get("params")
            if params is None:
                spec["params"] = dict(value)
            else:
                params.update(value)
        else:
            spec[key] = value
    buffer = io.StringIO()
    yaml.dump_all(documents, buffer)
    try:
        write_atomically(file, buffer.getvalue(), file.stat().st_mode & 0o777)
    except OSError as exc:
        raise UsageError(f"cannot write {file}: {exc.strerror}") from None


def as_block_text(value: Any) -> Any:
    """`value` with every multi-line string as a YAML literal block (`|`), as people write
    instructions, instead of one quoted line full of `\\n`."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, dict):
        return {k: as_block_text(v) for k, v in value.items()}
    if isinstance(value, str) and "\n" in value.strip():
        return LiteralScalarString(value)
    return value


def _sequence_offset(text: str) -> int:
    """How far the file indents a list's dashes under their key (0 or 2, as found first)."""
    lines = text.splitlines()
    for before, line in itertools.pairwise(lines):
        stripped = line.lstrip()
        if stripped.startswith("- ") and before.rstrip().endswith(":"):
            return max(0, (len(line) - len(stripped)) - (len(before) - len(before.lstrip())))
    return 0
