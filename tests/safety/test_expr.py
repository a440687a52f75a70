from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.safety.expr import ExpressionError, parse_expression


@pytest.mark.parametrize(
    "source",
    [
        "steps.triage.output.priority == 'high'",
        "len(inputs.items) > 3 and not vars.dry_run",
        "x['a b'][0] in ['p', 'q'] or y not in z",
        "matches(lower(output), '^ok') if output else false",
        "args.amount * 1.2 >= 100 // 3 % 7 - -1",
        "{'a': 1, 'b': [1, 2]}['b'][1:]",
        "true and null == None",
        "startswith(output, 'Dear')",
        "max(1, 2) ** 2 + sum([1, 2]) + round(2.5) + int('3') + float(str(1))",
        "any([a, b]) and all(values(x)) and len(keys(x)) == 2",
    ],
)
def test_accepted(source):
    parse_expression(source)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("__import__('os').system('ls')", "only the built-in functions"),
        ("__import__('os')", 'unknown function "__import__"'),
        ("().__class__.__bases__[0].__subclasses__()", "only the built-in functions"),
        ("x.__class__", 'starting with "_"'),
        ("x._private", 'starting with "_"'),
        ("_secret", 'starting with "_"'),
        ("[c for c in 'abc']", "comprehensions"),
        ("(lambda: 1)()", "lambdas"),
        ("f'{x:>999999999}'", "f-strings"),
        ("(y := 3)", "assignment expressions"),
        ("output.lower()", "write lower(x, ...)"),
        ("open('/etc/passwd')", 'unknown function "open"'),
        ("len(x, key=1)", "keyword arguments"),
        ("a is None", "`is` (use ==)"),
        ("x & 1", "bitwise"),
        ("b'bytes'", "bytes literals"),
        ("...", "ellipsis literals"),
        ("", "empty"),
        ("x ==", "invalid expression syntax"),
        ("a = 1", "invalid expression syntax"),
        ("x\x00", "NUL"),
        ("a" * 3000, "longer than"),
        ("+".join(["x"] * 300), "more than"),
        ("import os", "invalid expression syntax"),
    ],
)
def test_refused(source, fragment):
    with pytest.raises(ExpressionError) as caught:
        parse_expression(source)
    message = caught.value.message + " " + (caught.value.hint or "")
    assert fragment in message


def test_statements_cannot_hide_on_other_lines():
    with pytest.raises(ExpressionError):
        parse_expression("1\nimport os")


def test_names_are_checked_when_given():
    parse_expression("steps.a.output and inputs.x", names=["steps", "inputs", "vars"])
    with pytest.raises(ExpressionError) as caught:
        parse_expression("stpes.a.output", names=["steps", "inputs"])
    assert caught.value.hint == 'did you mean "steps"?'
    assert "available here: inputs, steps" in caught.value.message


def test_used_names_are_reported():
    parsed = parse_expression("len(steps.a) > 0 and vars.x == true")
    assert parsed.names == {"steps", "vars"}


def test_syntax_hints():
    for source, hint in [
        ("a && b", "use `and` / `or` instead of && / ||"),
        ("a = 'x'", "use == to compare"),
        ("!a", "use `not` instead of !"),
    ]:
        with pytest.raises(ExpressionError) as caught:
            parse_expression(source)
        assert caught.value.hint == hint


@given(st.text(max_size=300))
def test_only_expression_errors_escape_on_any_text(source):
    try:
        parse_expression(source)
    except ExpressionError:
        pass


@given(
    st.text(
        alphabet=st.sampled_from(list("abx_()[]{}.,:'\"+-*/%<>=!&|^~ 0123456789\n\\")),
        max_size=120,
    )
)
def test_only_expression_errors_escape_on_expression_like_text(source):
    try:
        parse_expression(source)
    except ExpressionError:
        pass


# -- evaluation --------------------------------------------------------------------------------

from afctl.safety.expr import evaluate, truthy  # noqa: E402

CONTEXT = {
    "args": {"amount": 250, "currency": "EUR", "tags": ["vip", "new"], "note": None},
    "steps": {"triage": {"output": {"priority": "high", "score": 0.9}}},
    "output": "Dear customer, your order shipped.",
    "items": [1, 2, 3],
}


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("args.amount > 100", True),
        ("args.amount * 2 + 1", 501),
        ("args.currency in ['EUR', 'USD'] and 'vip' in args.tags", True),
        ("steps.triage.output.priority == 'high'", True),
        ("steps.triage.output.missing", None),  # a missing field is null
        ("steps.nope.output.priority", None),  # and so is a field of null
        ("args['currency']", "EUR"),
        ("items[0] + items[-1]", 4),
        ("items[10]", None),
        ("items[1:]", [2, 3]),
        ("len(output) > 10 and startswith(output, 'Dear')", True),
        ("matches(lower(output), 'order \\\\w+')", True),
        ("contains(output, 'shipped') and not contains(args.tags, 'old')", True),
        ("'high' if steps.triage.output.score > 0.5 else 'low'", "high"),
        ("args.note or 'none'", "none"),
        ("sum(items) / len(items)", 2.0),
        ("max(items) - min(1, 0)", 3),
        ("round(2.567, 2)", 2.57),
        ("int('42') + float('0.5')", 42.5),
        ("str(args.amount) + str(true) + str(null) + str(items)", "250truenull[1, 2, 3]"),
        ("keys(steps.triage.output)", ["priority", "score"]),
        ("any([false, 0, 'x']) and not all([1, 0])", True),
        ("1 < 2 < 3 and not 3 < 2 < 1", True),
        ("{'a': [1, 2]}['a'][1]", 2),
        ("2 ** 10 // 3 % 7", 5),
    ],
)
def test_evaluation(source, value):
    assert evaluate(source, CONTEXT) == value


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("'a' * 10**9", "longer than"),
        ("[0] * 10**9", "longer than"),
        ("9**9**9", "bits"),
        ("2**5000", "bits"),
        ("10**2000 * 10**2000", "bits"),
        ("'%999999999d' % 1", "needs numbers"),
        ("output % 1", "needs numbers"),
        ("1 / 0", "division by zero"),
        ("output.length", 'a string has no field "length"'),
        ("nothing == 1", 'unknown name "nothing"'),
        ("len(5)", "len() needs"),
        ("items['x']", "indexes must be integers"),
        ("1 < 'a'", "cannot evaluate"),
        ("matches(output, '(')", "invalid pattern"),
        ("int('9' * 200)", "longer than 100"),
        ("len(str(items * 40000))", "longer than"),
    ],
)
def test_evaluation_refuses_bombs_and_nonsense(source, fragment):
    with pytest.raises(ExpressionError) as caught:
        evaluate(source, CONTEXT)
    assert fragment in caught.value.message


def test_python_objects_in_the_context_cannot_be_reached():
    class Secretive:
        password = "hunter2"

    with pytest.raises(ExpressionError, match="JSON-like data"):
        evaluate("thing.password", {"thing": Secretive()})
    with pytest.raises(ExpressionError, match="JSON-like data"):
        evaluate("things[0]", {"things": [Secretive()]})


def test_the_step_budget_stops_long_work():
    with pytest.raises(ExpressionError, match="steps"):
        evaluate(" + ".join(["len(items)"] * 40) + " > 0", {"items": list(range(90_000))})


def test_truthy():
    assert truthy("args.amount > 100", CONTEXT) is True
    assert truthy("args.note", CONTEXT) is False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


TOKENS = [*"abxy()[]{}.,:'+-*/%<>=! 0123456789", " and ", " or ", " not ", " in ", "len(",
          "str(", "max(", "matches(", "**", "//", "'a' * ", "9 ** "]  # fmt: skip


@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join), json_values, json_values)
def test_only_expression_errors_escape_evaluation(source, a, b):
    try:
        evaluate(source, {"a": a, "b": b, "x": a, "y": b})
    except ExpressionError:
        pass
