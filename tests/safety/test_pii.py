"""Personal data detection: checksums decide what is a card or an IBAN, and masking removes
every finding whatever text surrounds it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from afctl.safety.pii import find, iban_ok, luhn_ok, mask


def with_luhn_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_ok(body + digit):
            return body + digit
    raise AssertionError("some digit always completes a Luhn number")


def iban_for(country: str, bban: str) -> str:
    for check in range(100):
        candidate = f"{country}{check:02d}{bban}"
        if iban_ok(candidate):
            return candidate
    raise AssertionError("some check digits always fit")


# words that cannot themselves look like personal data
filler = st.lists(
    st.sampled_from(["the", "order", "is", "late", "please", "call", "me", "now", "thanks"]),
    max_size=6,
).map(" ".join)
card_numbers = st.text("0123456789", min_size=15, max_size=15).map(with_luhn_digit)
emails = st.builds(
    lambda user, domain: f"{user}@{domain}.com",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=20),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=15),
)
ibans = st.builds(iban_for, st.sampled_from(["DE", "FR", "GB", "NL"]),
                  st.text("0123456789", min_size=18, max_size=18))  # fmt: skip


@given(filler, card_numbers, filler)
def test_valid_card_numbers_are_found_and_masked(before, card, after):
    text = f"{before} {card} {after}"
    found = find(text, ["card"])
    assert [f.kind for f in found] == ["card"]
    assert card not in mask(text, found) and "[CARD]" in mask(text, found)


@given(card_numbers)
def test_a_wrong_check_digit_is_not_a_card(card):
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert find(f"ref {wrong}", ["card"]) == []


@given(filler, emails, ibans, card_numbers, filler)
def test_masking_leaves_none_of_what_was_found(before, email, iban, card, after):
    text = f"{before} {email} {after} {iban} {before} {card}"
    masked = mask(text, find(text))
    for value in (email, iban, card):
        assert value not in masked


def test_phone_numbers_need_phone_shape_and_dates_are_not_phones():
    text = "call +44 20 7946 0958 or (415) 555-0123; order 1234567890 shipped 2024-01-15"
    assert [text[f.start : f.end] for f in find(text, ["phone"])] == [
        "+44 20 7946 0958",
        "(415) 555-0123",
    ]


def test_an_iban_followed_by_words_is_still_found():
    text = "pay to DE89 3704 0044 0532 0130 00 THANKS"
    (found,) = find(text, ["iban"])
    assert text[found.start : found.end] == "DE89 3704 0044 0532 0130 00"
