"""Properties of the whole validation pipeline on arbitrary and mutated input."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from afctl.manifests.dump import dump_all_yaml
from afctl.manifests.validate import analyze_file
from afctl.manifests.yaml_loader import load_bytes
from tests.manifests.test_validate import AGENT, SUPPORTING

DOCUMENTS = [d.data for d in load_bytes((AGENT + "---\n" + SUPPORTING).encode()).documents]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


@st.composite
def mutated_documents(draw: st.DrawFn) -> list[Any]:
    documents = copy.deepcopy(DOCUMENTS)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(documents) - 1))
        path = draw(st.sampled_from(_paths(documents[index])))
        documents[index] = _replace(documents[index], path, draw(json_values))
    return documents


@given(mutated_documents())
def test_no_check_ever_crashes_on_mutated_manifests(documents):
    result = analyze_file(dump_all_yaml(documents).encode(), "m.yaml")
    crashed = [d for d in result.diagnostics if d.code == "manifest.unchecked"]
    assert crashed == [], crashed[0].summary


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_diagnostics_never_exceptions(data):
    result = analyze_file(data, "x.yaml")
    assert all(d.code != "manifest.unchecked" for d in result.diagnostics)


def test_valid_manifests_round_trip_through_dump():
    text = dump_all_yaml(DOCUMENTS)
    again = [d.data for d in load_bytes(text.encode()).documents]
    assert again == DOCUMENTS
    assert analyze_file(text.encode(), "m.yaml").diagnostics == []
