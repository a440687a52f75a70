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
