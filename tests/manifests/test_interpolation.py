from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.errors import UserError
from afctl.safety.interpolation import MalformedReference, Reference, resolve, scan


def test_scan_finds_references_and_problems():
    found = list(scan("a ${env:HOME} b ${var:team} c $${env:X} d ${HOME} e ${secret:K} f ${env:1x"))
    assert found[:2] == [Reference("env", "HOME", 2), Reference("var", "team", 16)]
    problems = [f for f in found if isinstance(f, MalformedReference)]
    assert [p.text for p in problems] == ["${HOME}", "${secret:K}", "${env:1x"]
    assert "${env:HOME}" in problems[0].hint


def test_resolve_replaces_late_and_names_what_is_missing():
    assert resolve("Bearer ${env:TOKEN}", {"TOKEN": "t0k"}, {}) == "Bearer t0k"
    assert resolve("$${env:TOKEN} ${var:x}", {}, {"x": "1"}) == "${env:TOKEN} 1"
    with pytest.raises(UserError) as caught:
        resolve("${env:MISSING}", {}, {})
    assert caught.value.hint == "set the environment variable MISSING"
    with pytest.raises(UserError):
        resolve("${nope}", {}, {})


@given(st.text(max_size=100))
def test_scan_never_raises_and_offsets_point_at_dollars(text):
    for found in scan(text):
        assert text[found.offset] == "$"


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=50))
def test_text_without_references_is_unchanged(text):
    assert resolve(text, {}, {}) == text
