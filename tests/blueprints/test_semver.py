"""Semantic versions and ranges, as `requires`, `install NAME@RANGE` and `afctl_version` use
them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.blueprints.semver import Version, best, satisfies
from afctl.errors import UsageError


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("1.2.3", "1.2.3", True), ("1.2.4", "1.2.3", False),
        ("1.9.0", "^1.2", True), ("2.0.0", "^1.2", False), ("1.1.9", "^1.2", False),
        ("0.2.5", "^0.2", True), ("0.3.0", "^0.2", False),
        ("1.2.9", "~1.2.0", True), ("1.3.0", "~1.2.0", False),
        ("1.5.0", ">=1.0 <2.0", True), ("2.0.0", ">=1.0 <2.0", False),
        ("1.4.2", "1.x", True), ("2.0.0", "1.x", False), ("7.0.0", "*", True),
        ("1.3.0-rc.1", "^1.2", False), ("1.3.0-rc.1", ">=1.3.0-rc.0", True),
    ],
)  # fmt: skip
def test_ranges(version, spec, expected):
    assert satisfies(Version(version), spec) is expected


def test_ordering_and_the_best_match():
    assert Version("1.0.0-alpha") < Version("1.0.0-beta") < Version("1.0.0") < Version("1.0.1")
    assert Version("1.0.0-2") < Version("1.0.0-10") < Version("1.0.0-a")
    assert best(["1.0.0", "1.4.0", "2.1.0", "1.10.0"], "^1.0") == "1.10.0"
    assert best(["1.0.0"], "^2") is None


@pytest.mark.parametrize("bad", ["1.2", "v1.0.0", "01.x.y", ""])
def test_bad_versions_and_ranges_are_usage_errors(bad):
    with pytest.raises(UsageError):
        Version(bad) if bad != "01.x.y" else satisfies(Version("1.0.0"), "~banana")


parts = st.integers(min_value=0, max_value=30)


@given(parts, parts, parts, parts, parts, parts)
def test_caret_ranges_agree_with_their_definition(a, b, c, x, y, z):
    version = Version(f"{x}.{y}.{z}")
    base = Version(f"{a}.{b}.{c}")
    in_range = satisfies(version, f"^{a}.{b}.{c}")
    if a > 0:
        expected = version >= base and x == a
    elif b > 0:
        expected = version >= base and x == 0 and y == b
    else:
        expected = version >= base and x == 0 and y == 0 and z == c
    assert in_range == expected
