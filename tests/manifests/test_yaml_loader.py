from __future__ import annotations

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.manifests.dump import dump_yaml
from afctl.manifests.limits import MAX_DEPTH
from afctl.manifests.positions import locate
from afctl.manifests.yaml_loader import load_bytes, resolve_plain


def load(text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return load_bytes(data, "f.yaml")


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def test_core_schema_scalars():
    result = load(
        "a: 0o17\nb: 0x1f\nc: 1e3\nd: yes\ne: on\nf: ~\ng: 007\nh: -.inf\ni: '12'\nj: 2024-01-01\n"
    )
    assert result.diagnostics == []
    data = result.documents[0].data
    assert data["a"] == 15 and data["b"] == 31 and data["c"] == 1000.0
    assert data["d"] == "yes" and data["e"] == "on"  # YAML 1.2: no yes/on booleans
    assert data["f"] is None and data["g"] == 7 and data["h"] == -math.inf
    assert data["i"] == "12" and data["j"] == "2024-01-01"


def test_keys_are_strings_taken_verbatim():
    data = load("200: ok\ntrue: t\nnull: n\n1.5: x\n").documents[0].data
    assert data == {"200": "ok", "true": "t", "null": "n", "1.5": "x"}


def test_positions_are_absolute_in_multi_document_files():
    text = "a: 1\n---\nb:\n  c: [x, y]\n---\n# comment\nd: 2\n"
    result = load(text)
    assert [d.index for d in result.documents] == [0, 1, 2]
    second = result.documents[1]
    assert locate(second.positions, ["b", "c", 1]) == (3, 9)
    assert locate(second.positions, ["b", "c"], key=True) == (3, 2)
    assert result.documents[2].line == 7


def test_python_tags_are_reported_and_never_constructed():
    result = load("a: !!python/object/apply:os.system [echo pwned]\nb: !custom x\n")
    assert codes(result) == ["yaml.tag", "yaml.tag"]
    assert "!!python/object/apply:os.system" in result.diagnostics[0].summary
    assert result.documents[0].data == {"a": ["echo pwned"], "b": "x"}


def test_duplicate_keys():
    result = load("a: 1\nb: 2\na: 3\n")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "yaml.duplicate-key"
    assert (diagnostic.line, diagnostic.col) == (3, 1)
    assert "line 1" in diagnostic.summary
    assert result.documents[0].data == {"a": 1, "b": 2}


def test_tabs_get_their_own_message():
    result = load("a:\n\tb: 1\n")
    assert codes(result) == ["yaml.tab"]
    assert result.diagnostics[0].line == 2
    assert "spaces" in (result.diagnostics[0].hint or "")


def test_syntax_error_then_later_documents_still_load():
    result = load("a: [1, 2\nb: 3\n---\nkind: ok\n---\nc: {\n")
    assert codes(result) == ["yaml.syntax", "yaml.syntax"]
    assert [d.data for d in result.documents] == [{"kind": "ok"}]
    assert result.diagnostics[1].line == 7


def test_not_utf8():
    result = load(b"a: 1\nb: \xff\xfe\n")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "yaml.encoding"
    assert (diagnostic.line, diagnostic.col) == (2, 4)


def test_utf8_bom_is_accepted():
    assert load(b"\xef\xbb\xbfa: 1\n").documents[0].data == {"a": 1}


def test_alias_bomb_refused_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    result = load("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 5  # a sanity bound, not a benchmark
    assert codes(result) == ["yaml.alias-bomb"]
    assert result.documents == []


def test_aliases_and_merge_keys_within_limits():
    result = load("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: *b\n")
    assert result.diagnostics == []
    data = result.documents[0].data
    assert data["c"] == {"y": 3, "x": 1}
    assert data["d"] == {"x": 1, "y": 2}
    data["d"]["x"] = 99
    assert data["base"]["x"] == 1  # aliases are copies, not shared objects


def test_unknown_alias():
    assert codes(load("a: *nope\n")) == ["yaml.alias"]


def test_deep_nesting_refused():
    result = load("[" * (MAX_DEPTH + 50) + "]" * (MAX_DEPTH + 50))
    assert codes(result) == ["yaml.too-deep"]


def test_deep_nesting_through_aliases_refused():
    deep = "[" * 60 + "]" * 60
    result = load(
        f"a: &a {deep}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
    )
    assert codes(result) == ["yaml.too-deep"]


def test_huge_numbers_are_diagnosed_not_raised():
    result = load("a: " + "9" * 5000 + "\n")
    assert codes(result) == ["yaml.number"]


def test_complex_keys():
    result = load("? [a]\n: 1\nb: 2\n")
    assert codes(result) == ["yaml.complex-key"]
    assert result.documents[0].data == {"b": 2}


def test_control_characters():
    assert codes(load(b"a: \x01\n")) == ["yaml.syntax"]


def test_empty_file_is_a_warning():
    result = load("# nothing here\n")
    assert [(d.code, d.is_error) for d in result.diagnostics] == [("manifest.empty-file", False)]


def test_resolve_plain_never_uses_unicode_digits():
    assert resolve_plain("٣") == "٣"
    assert resolve_plain("1_000") == "1_000"


# -- properties -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_dump_then_load_round_trips(data):
    result = load(dump_yaml(data))
    assert [d for d in result.diagnostics if d.is_error] == []
    loaded = result.documents[0].data if result.documents else {}
    assert loaded == data


@given(st.binary(max_size=400))
def test_loader_never_raises_on_arbitrary_bytes(data):
    result = load_bytes(data, "x.yaml")
    for diagnostic in result.diagnostics:
        assert diagnostic.file == "x.yaml"


@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n\t ,?%@`~<")), max_size=200))
def test_loader_never_raises_on_yaml_like_text(text):
    result = load(text)
    assert all(d.line is None or d.line >= 1 for d in result.diagnostics)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_non_mapping_documents_are_loaded_as_data(text):
    result = load(text)
    assert result.diagnostics == []
    assert len(result.documents) == 1
