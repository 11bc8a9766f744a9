"""Email normalisation: one spelling per address, decided in one place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpart_auth import InvalidEmail
from bpart_auth._email import normalize_email


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        pytest.param("ann@example.com", "ann@example.com", id="already-normal"),
        pytest.param("  Ann@Example.COM\t", "ann@example.com", id="case-and-space"),
        pytest.param("ann@BÜCHER.example", "ann@xn--bcher-kva.example", id="idna-domain"),
        pytest.param("ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example", id="punycode"),
        pytest.param("Jose\u0301@example.com", "jos\u00e9@example.com", id="nfc-local-part"),
        pytest.param("ann+tag@example.com", "ann+tag@example.com", id="plus-kept"),
        pytest.param("ann@localhost", "ann@localhost", id="single-label-domain"),
    ],
)
def test_normalisation(raw, normalised):
    assert normalize_email(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("ann", id="no-at"),
        pytest.param("ann@", id="no-domain"),
        pytest.param("@example.com", id="no-local"),
        pytest.param("a@b@example.com", id="two-ats"),
        pytest.param("ann @example.com", id="space"),
        pytest.param("ann\x00@example.com", id="nul"),
        pytest.param("ann\n@example.com", id="newline"),
        pytest.param("a" * 65 + "@example.com", id="local-65"),
        pytest.param("ann@" + ".".join(["a" * 60] * 5), id="over-254"),
        pytest.param("ann@exa_mple.com", id="underscore-domain"),
        pytest.param(None, id="not-a-str"),
    ],
)
def test_malformed(raw):
    with pytest.raises(InvalidEmail) as caught:
        normalize_email(raw)
    assert caught.value.code == "invalid_email"
    assert caught.value.field == "email"
    assert caught.value.detail


addresses = st.builds(
    "{}@{}.{}".format,
    st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=20),
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9]{0,15}", fullmatch=True),
    st.sampled_from(["com", "org", "example", "DE"]),
)


@given(addresses)
def test_normalising_twice_changes_nothing(raw):
    try:
        once = normalize_email(raw)
    except InvalidEmail:
        return
    assert normalize_email(once) == once


@given(
    st.from_regex(r"[A-Za-z0-9._+-]{1,30}@[A-Za-z][A-Za-z0-9]{0,20}\.[A-Za-z]{2,6}", fullmatch=True)
)
def test_ascii_addresses_are_case_insensitive(raw):
    assert normalize_email(raw.swapcase()) == normalize_email(raw) == raw.lower()
