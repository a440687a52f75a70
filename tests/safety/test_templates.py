from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.safety.templates import _obviously_valid, check_template, environment


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("Hello {{ name }", "unexpected '}'", 1),
        ("a\nb\n{% if x %}\nno end", "endif", 3),
        ("{{ x | uper }}", 'did you mean "upper"', 1),
        ("{% if x is evn %}y{% endif %}", "no test named 'evn'", 1),
        ("{{ }}", "Expected an expression", 1),
    ],
)
def test_syntax_errors(text, fragment, line):
    problem = check_template(text)
    assert problem is not None
    assert fragment in problem.message
    assert problem.line == line


@pytest.mark.parametrize(
    "text",
    ["plain text", "{{ vars.company }}", "{% for x in items %}{{ x }}{% endfor %}", "}} {{ a }}"],
)
def test_valid_templates(text):
    assert check_template(text) is None


def test_the_environment_is_an_immutable_sandbox_with_strict_undefined():
    from jinja2 import StrictUndefined, UndefinedError
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = environment()
    assert isinstance(env, ImmutableSandboxedEnvironment)
    assert env.undefined is StrictUndefined
    with pytest.raises(UndefinedError):
        env.from_string("{{ missing }}").render()
    with pytest.raises(SecurityError):
        env.from_string("{{ ''.__class__.__mro__ }}").render()
    with pytest.raises(SecurityError):
        env.from_string("{{ items.append(1) }}").render(items=[])


fragments = st.sampled_from(
    ["{{", "}}", "{%", "%}", " ", "a", ".", "b", "[0]", "|", "-", "x_1", "{", "}", "1", "'"]
)


@given(st.lists(fragments, max_size=12).map("".join))
def test_the_fast_path_only_accepts_what_jinja_parses(text):
    if _obviously_valid(text):
        environment().parse(text)  # must not raise


@given(st.text(max_size=200))
def test_check_template_never_raises(text):
    check_template(text)
