"""Known sandbox-escape payloads, all refused: the kinds the simpleeval and asteval security
tests try against expression evaluators, and the jinja2 sandbox escapes of past CVEs and
server-side template injection write-ups. Expressions serve `when`, `for_each`, approval
rules and the eval `expression` assertion; templates serve step inputs, outputs, instructions
and eval inputs."""

from __future__ import annotations

from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError, TemplateError

from afctl.safety.expr import FUNCTIONS, ExpressionError, evaluate
from afctl.safety.templates import TemplateFailure, render


class Tripwire:
    """A Python object in the context: any attribute read on it is recorded (but `__class__`,
    which `isinstance` itself reads when the evaluator checks what kind of value it holds)."""

    touched: ClassVar[list[str]] = []

    def __getattribute__(self, name: str) -> object:
        if name != "__class__":
            Tripwire.touched.append(name)
        return object.__getattribute__(self, name)


CONTEXT = {"output": "hello", "items": [1, 2, 3], "args": {"amount": 5}, "obj": Tripwire()}

EXPRESSION_PAYLOADS = [
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[1].__subclasses__()",
    "output.__class__",
    "items.__len__()",
    "args.__dict__",
    "obj.__class__",
    "obj.__reduce_ex__(2)",
    "[x for x in ().__class__.__base__.__subclasses__()]",
    "{x: 1 for x in items}",
    "(lambda: 1)()",
    "__import__('os').system('id')",
    "__builtins__",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "getattr(output, '__class__')",
    "type(output)",
    "eval('1+1')",
    "exec('import os')",
    "compile('1', 'x', 'eval')",
    "open('/etc/passwd').read()",
    "breakpoint()",
    "'{0.__class__}'.format(output)",
    "format(output, '>99999999')",
    "f'{output!r:>{10**9}}'",
    "'%s' % output",
    "'%999999999s' % (1,)",
    "9**9**9**9",
    "'a' * 10**10",
    "[1] * 10**10",
    "str(10**100000)",
    "bytearray(10**9)",
    "memoryview(b'x')",
    "output.lower()",
    "items.append(4)",
    "(y := 1)",
    "obj",
    "args.get('amount')",
    "max(items, key=len)",
    "__name__",
    "[].__class__.__base__.__subclasses__()[0]",
]


@pytest.mark.parametrize("payload", EXPRESSION_PAYLOADS)
def test_expression_escapes_are_refused(payload):
    Tripwire.touched.clear()
    with pytest.raises(ExpressionError):
        evaluate(payload, CONTEXT)
    assert Tripwire.touched == []


TEMPLATE_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ output.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__class__.__base__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ '{0.__class__}'.format(output) }}",  # CVE-2016-10745
    "{{ '{x.__class__}'.format_map({'x': output}) }}",  # CVE-2019-10906
    "{{ '{0.__class__}'.format_map([output]) }}",
    "{{ 1 / 0 }}",
    "{% set f = '{0.__class__}'.format %}{{ f(output) }}",  # CVE-2024-56326
    "{{ ('{0.__class__}'|attr('format'))(output) }}",  # CVE-2025-27516
    "{{ output|attr('__class__') }}",
    "{{ items.append(4) }}",
    "{{ args.update({'amount': 1}) }}",
    "{{ args.pop('amount') }}",
    "{{ config }}",
    "{{ request }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    "{{ 'x' * 10**9 }}",
]


@pytest.mark.parametrize("payload", TEMPLATE_PAYLOADS)
def test_template_escapes_are_refused(payload):
    Tripwire.touched.clear()
    with pytest.raises((SecurityError, TemplateError, TemplateFailure)):
        render(payload, {"output": "hello", "items": [1, 2], "args": {"amount": 5}})
    assert Tripwire.touched == []


# random expressions built from the grammar: literals, names, fields, indexes, operators,
# comparisons, conditions and the allowed functions, nested
atoms = st.sampled_from(["output", "items", "args", "args.amount", "obj", "items[0]", "1", "0",
                         "-3", "2.5", "'a'", "''", "true", "null", "[1, 2]", "{'k': 1}",
                         "obj.name", "output.x", "items[-1]", "args['amount']"])  # fmt: skip


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "!=",
                                               "<", ">=", "and", "or", "in", "not in"]), inner)  # fmt: skip
    call = st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(inner, max_size=2))
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        call.map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        inner.map(lambda e: f"not {e}"),
        st.lists(inner, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
    )


expressions = st.recursive(atoms, _combine, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(expressions)
def test_random_expressions_give_a_value_or_their_own_error_and_never_touch_objects(source):
    Tripwire.touched.clear()
    try:
        evaluate(source, CONTEXT)
    except ExpressionError:
        pass
    assert Tripwire.touched == []
