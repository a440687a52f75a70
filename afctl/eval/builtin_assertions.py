"""afctl's own assertion types, registered as a default plugin (see `afctl.plugins`) like
any plugin's: each check is one function, registered under its type by `@builtin`.

A built-in check takes (assertion, outcome, grant) and returns (held, reason); the grant is
what the suite may run (only `python` uses it). A plugin's check takes (assertion, outcome).
The model-based types (`similar`, `llm_judge`) are asynchronous: `check_with_model`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from afctl.eval.outcome import Outcome, render_value, verdict_of
from afctl.plugins import hookimpl
from afctl.safety.capabilities import Grant

Verdict = tuple[bool, str | None]
BuiltinCheck = Callable[[dict[str, Any], Outcome, Grant], Verdict]

BUILTIN: dict[str, BuiltinCheck] = {}
"""Type -> afctl's own check of it."""


def builtin(*types: str) -> Callable[[BuiltinCheck], BuiltinCheck]:
    def register(function: BuiltinCheck) -> BuiltinCheck:
        for kind in types:
            BUILTIN[kind] = function
        return function

    return register


@hookimpl
def register_assertions() -> dict[str, Any]:
    return dict(BUILTIN)


@builtin("equals")
def _equals(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    value = render_value(str(a["value"]), o)
    return o.output.strip() == value.strip(), f"the output is {o.output[:200]!r}"


@builtin("contains")
def _contains(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    value = render_value(str(a["value"]), o)
    return value in o.output, f"{value!r} is not in the output"


@builtin("icontains")
def _icontains(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    value = render_value(str(a["value"]), o)
    return value.lower() in o.output.lower(), f"{value!r} is not in the output"


@builtin("starts_with")
def _starts_with(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    value = render_value(str(a["value"]), o)
    return o.output.startswith(value), f"the output starts {o.output[:60]!r}"


def _found(a: dict[str, Any], o: Outcome) -> tuple[list[str], list[str]]:
    """(the values of a contains_any/contains_all found in the output, all its values)."""
    values = [str(v) for v in a["values"]]
    fold = bool(a.get("ignore_case"))
    text = o.output.lower() if fold else o.output
    return [v for v in values if (v.lower() if fold else v) in text], values


@builtin("contains_any")
def _contains_any(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    found, _ = _found(a, o)
    return bool(found), "none of them is in the output"


@builtin("contains_all")
def _contains_all(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    found, values = _found(a, o)
    missing = [v for v in values if v not in found]
    return not missing, f"missing: {', '.join(map(repr, missing))}"


@builtin("regex")
def _regex(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    from afctl.safety.regex import search

    return search(str(a["pattern"]), o.output), "the pattern does not match"


@builtin("is_json")
def _is_json(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    try:
        json.loads(o.output)
    except ValueError:
        return False, "the output is not JSON"
    return True, "the output is JSON"


@builtin("json_schema")
def _json_schema(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    from afctl.tools.base import Validator, json_problems

    problems = json_problems(o.output, Validator(a["schema"]))
    return not problems, "; ".join(problems)


@builtin("json_path")
def _json_path(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    from afctl.tools.http_tool import pointer

    value = pointer(json.loads(o.output), str(a["path"]))
    if "value" not in a:
        return True, f"{a['path']} is {value!r}"
    return value == a["value"], f"{a['path']} is {value!r}"


@builtin("tool_called", "tool_args")
def _tool_called(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    tool = str(a.get("tool") or a["name"])  # `name` alone: the tool, as it used to be
    calls = [args for name, args in o.tool_calls if name == tool]
    wanted = a.get("args") or {}
    matching = [c for c in calls if all(c.get(k) == v for k, v in wanted.items())]
    if not calls:
        return False, f"{tool} was not called"
    return bool(matching), f"{tool} was called with {calls}"


@builtin("tool_sequence")
def _tool_sequence(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    names = [name for name, _ in o.tool_calls]
    sequence = [str(s) for s in a["sequence"]]
    if a.get("exact"):
        return names == sequence, f"the calls were {names}"
    position = 0
    for name in names:  # in order, others may come between
        if position < len(sequence) and name == sequence[position]:
            position += 1
    return position == len(sequence), f"the calls were {names}"


@builtin("handoff_to")
def _handoff_to(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    return a["agent"] in o.handoffs, f"handoffs: {o.handoffs or 'none'}"


@builtin("guardrail_blocked")
def _guardrail_blocked(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    wanted = a.get("guardrail")
    held = bool(o.blocked_by) and (wanted is None or wanted in o.blocked_by)
    return held, f"blocked by: {o.blocked_by or 'nothing'}"


@builtin("latency")
def _latency(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    return o.latency_ms <= float(a["max_ms"]), f"it took {o.latency_ms:.0f} ms"


@builtin("cost")
def _cost(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    if o.cost_usd is None:
        return False, "the cost is unknown"
    return o.cost_usd <= float(a["max_usd"]), f"it cost ${o.cost_usd:.6f}"


@builtin("tokens")
def _tokens(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    if o.tokens is None:
        return False, "the provider did not report the tokens used"
    return o.tokens <= int(a["max"]), f"it used {o.tokens} tokens"


@builtin("expression")
def _expression(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    from afctl.safety.expr import ExpressionError, truthy

    context = {
        "output": o.output,
        "vars": o.vars,
        "status": o.status,
        "tools": [{"name": n, "args": args} for n, args in o.tool_calls],
        "handoffs": list(o.handoffs),
        "latency_ms": o.latency_ms,
        "tokens": o.tokens,
        "cost_usd": o.cost_usd,
    }
    try:
        return bool(truthy(str(a["expr"]), context)), f"{a['expr']} is false"
    except ExpressionError as exc:
        raise ValueError(exc.message) from None


@builtin("python")
def _python(a: dict[str, Any], o: Outcome, grant: Grant) -> Verdict:
    from afctl.tools.python_tool import import_entrypoint

    entrypoint = str(a["entrypoint"])
    function = import_entrypoint(entrypoint, grant.python(entrypoint))
    try:
        verdict = function(o.output, {"vars": o.vars, "config": a.get("config") or {},
                                      "tools": o.tool_calls, "status": o.status})  # fmt: skip
    except Exception as exc:  # the user's check failing fails the assertion, saying why
        raise ValueError(f"{a['entrypoint']} raised {type(exc).__name__}: {exc}") from None
    return verdict_of(verdict, f"{a['entrypoint']} said no")
