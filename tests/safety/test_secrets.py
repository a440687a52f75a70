from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from afctl.safety.secrets import REDACTED, Secrets

secret_values = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=4, max_size=40
).filter(lambda s: s.strip() == s and REDACTED not in s)


@given(secret_values, st.text(max_size=60), st.text(max_size=60))
def test_a_remembered_secret_never_survives_redaction(secret, before, after):
    secrets = Secrets(env={"KEY": secret})
    assert secrets.resolve("${env:KEY}") == secret
    for text in (before + secret + after, json.dumps({"v": before + secret + after})):
        assert secret not in secrets.redact(text) or secret in REDACTED


@given(st.lists(secret_values, min_size=1, max_size=4), st.text(max_size=40))
def test_overlapping_secrets_are_all_redacted(values, filler):
    secrets = Secrets(env={f"K{i}": v for i, v in enumerate(values)})
    for index in range(len(values)):
        secrets.env(f"K{index}")
    text = filler.join(values)
    redacted = secrets.redact(text)
    for value in values:
        assert value not in redacted or value in REDACTED or value in filler


def test_token_shapes_are_redacted_without_being_told():
    secrets = Secrets(env={})
    text = (
        "keys: sk-proj-abcdefghijklmnopqrstuvwxyz0123 sk-ant-api03-abcdefghijklmnopqrstuvwx "
        "AKIAABCDEFGHIJKLMNOP ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok"
    )
    assert secrets.redact(text) == f"keys: {REDACTED} {REDACTED} {REDACTED} {REDACTED} ok"


def test_short_values_are_not_treated_as_secrets():
    secrets = Secrets(env={"A": "ab"})
    secrets.env("A")
    assert secrets.redact("a crab") == "a crab"
