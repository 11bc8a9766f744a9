"""Email addresses: one spelling per address, validated on write, shown in Unicode."""

from __future__ import annotations

import unicodedata

import idna
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from bpart_auth import Auth, InvalidCredentials, InvalidEmail, MemoryStore
from bpart_auth._email import display_email, normalize_email, validate_new_email
from bpart_auth._input import MAX_EMAIL_INPUT
from bpart_auth.testing import CHEAP_FOR_TESTS


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


# A string whose NFC costs time quadratic in its length (issue 12): refused by length
# before any normalisation. The tests check the answer; bench/ checks the time.
PATHOLOGICAL = "a" + "\u0301" * 32_768 + "\u0316" * 32_768 + "@example.com"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(PATHOLOGICAL, "longer than 512 characters", id="combining-marks-64k"),
        pytest.param("a" * 1_000_000 + "@example.com", "longer than 512", id="one-megabyte"),
        pytest.param(" " * 600 + "ann@example.com", "longer than 512", id="padding-counts"),
        pytest.param("ann\ud800@example.com", "lone surrogate", id="lone-surrogate"),
        pytest.param(b"ann@example.com", "expected str, got bytes", id="bytes"),
        pytest.param(["ann@example.com"], "expected str, got list", id="list"),
        pytest.param(None, "expected str, got NoneType", id="none"),
    ],
)
def test_unbounded_input_is_refused_before_any_work(raw, reason):
    for function in (normalize_email, validate_new_email):
        with pytest.raises(InvalidEmail) as caught:
            function(raw)
        assert caught.value.code == "invalid_email"
        assert reason in caught.value.detail


@pytest.fixture
def text_work(monkeypatch):
    """The lengths of the strings Unicode normalisation and IDNA are asked to work on.

    A spy on the libraries (the real functions still run), so a test can say that no
    path hands them an unbounded string.
    """
    lengths = []

    def spy(function):
        def recording(*args, **kwargs):
            lengths.append(len(args[-1]))
            return function(*args, **kwargs)

        return recording

    monkeypatch.setattr(unicodedata, "normalize", spy(unicodedata.normalize))
    monkeypatch.setattr(idna, "encode", spy(idna.encode))
    monkeypatch.setattr(idna, "decode", spy(idna.decode))
    return lengths


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(PATHOLOGICAL, id="combining-marks-64k"),
        pytest.param("ann@" + "b\u00fccher" * 100_000 + ".example", id="idn-domain-800k"),
    ],
)
def test_no_path_normalises_an_unbounded_email(text_work, raw):
    store = MemoryStore()
    auth = Auth(store, password_hashing=CHEAP_FOR_TESTS)
    ann = auth.create_account(email="ann@example.com", password="correct horse battery")
    text_work.clear()
    with pytest.raises(InvalidCredentials):
        auth.passwords.sign_in(raw, "correct horse battery")
    assert auth.passwords.begin_reset(raw) is None
    for refused in (
        lambda: auth.create_account(email=raw),
        lambda: auth.invites.create(raw, invited_by=ann.id),
        lambda: store.find_account_by_email(raw),
        lambda: store.update_account(ann.id, email=raw),
    ):
        with pytest.raises(InvalidEmail):
            refused()
    assert text_work  # the spy saw the work on the bounded values (the password, the key)
    assert max(text_work) <= MAX_EMAIL_INPUT


def test_the_bound_is_on_the_raw_value():
    padded = " " * (512 - len("ann@example.com")) + "ann@example.com"
    assert normalize_email(padded) == "ann@example.com"


# Writes: email-validator on top of the canonicaliser.


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        pytest.param("ann@example.com", "ann@example.com", id="plain"),
        pytest.param("  Ann.Smith@Example.COM ", "ann.smith@example.com", id="case-and-space"),
        pytest.param("ann+tag@example.com", "ann+tag@example.com", id="plus-tag"),
        pytest.param("o'brien@example.com", "o'brien@example.com", id="apostrophe"),
        pytest.param("ann@Bücher.example", "ann@xn--bcher-kva.example", id="idn-domain"),
        pytest.param("ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example", id="punycode"),
        pytest.param("José@example.com", "josé@example.com", id="smtputf8-local-part"),
        pytest.param("Jose\u0301@example.com", "jos\u00e9@example.com", id="nfc-local-part"),
        pytest.param("ann@sub.example.co.uk", "ann@sub.example.co.uk", id="subdomains"),
        pytest.param("ann@1.example", "ann@1.example", id="digit-label"),
    ],
)
def test_valid_new_addresses(raw, stored):
    assert validate_new_email(raw) == stored
    assert normalize_email(raw) == stored  # the key its lookups compute


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("ann@example.com.", "cannot end with a period", id="trailing-dot"),
        pytest.param(
            "ann.@example.com", "period immediately before the @-sign", id="local-trailing-dot"
        ),
        pytest.param(".ann@example.com", "cannot start with a period", id="leading-dot"),
        pytest.param("a..b@example.com", "two periods in a row", id="double-dot"),
        pytest.param(
            "<script>alert(1)</script>@example.com",
            "anything after the email address",
            id="script-tag",
        ),
        pytest.param("Ann<ann@example.com>", "IDNA", id="display-name"),
        pytest.param('"ann"@example.com', "Quoting", id="quoted-local-part"),
        pytest.param('"a b"@example.com', "white space", id="quoted-with-space"),
        pytest.param("ann(work)@example.com", "invalid characters", id="comment"),
        pytest.param("ann@[192.0.2.1]", "IDNA", id="domain-literal"),
        pytest.param("ann@localhost", "should have a period", id="single-label"),
        pytest.param("ann@example.test", "special-use or reserved", id="test-tld"),
        pytest.param("ann@printer.local", "special-use or reserved", id="mdns-local"),
        pytest.param("ann@192.0.2.1", "not within a valid top-level domain", id="bare-ip"),
        pytest.param("ann;bob@example.com", "invalid characters", id="semicolon"),
        pytest.param("ann\u202e@example.com", "control characters", id="bidi-override"),
        pytest.param("an\u200bn@example.com", "control characters", id="zero-width-space"),
        pytest.param("ann@exa_mple.com", "IDNA", id="underscore-domain"),
        pytest.param("a" * 65 + "@example.com", "local part over 64", id="local-65"),
        pytest.param("ann", "needs a local part", id="no-at"),
    ],
)
def test_invalid_new_addresses(raw, reason):
    with pytest.raises(InvalidEmail) as caught:
        validate_new_email(raw)
    assert caught.value.code == "invalid_email"
    assert caught.value.field == "email"
    assert str(caught.value) == str(InvalidEmail())  # the reason stays in detail
    assert reason in caught.value.detail


def test_validator_refusals_keep_the_cause():
    with pytest.raises(InvalidEmail) as caught:
        validate_new_email("ann@example.com.")
    assert isinstance(caught.value.__cause__, EmailNotValidError)


# What the validator accepts and what lookups compute must be one key.

_ATEXT = "abcXYZ019!#$%&'*+-/=?^_`{|}~."
# Case and normalisation edge cases: İ, ẞ, Σ, the Kelvin and Ohm signs, ǅ, the fi
# ligature, the Angstrom sign, dotless i, long s, ß, é, ñ and two combining marks.
_TRICKY = (
    "\u0130\u1e9e\u03a3\u212a\u2126\u01c5\ufb01\u212b\u0131\u017f\u00df\u00e9\u00f1\u0301\u0307"
)
_VALIDATOR_OPTIONS = {
    "allow_smtputf8": True,
    "allow_quoted_local": False,
    "allow_domain_literal": False,
    "allow_display_name": False,
    "check_deliverability": False,
}
candidates = st.builds(
    "{}@{}.{}".format,
    st.text(
        st.sampled_from(_ATEXT + _TRICKY) | st.characters(codec="utf-8", categories=["L", "N"]),
        min_size=1,
        max_size=12,
    ),
    st.lists(
        st.text(
            st.sampled_from("abcXYZ019-" + _TRICKY)
            | st.characters(codec="utf-8", categories=["L", "N"]),
            min_size=1,
            max_size=10,
        ),
        min_size=1,
        max_size=3,
    ).map(".".join),
    st.sampled_from(["com", "ORG", "example", "xn--p1ai", "рф"]),
)


@given(candidates)
def test_every_address_the_validator_accepts_has_one_stable_key(raw):
    try:
        validated = validate_email(raw, **_VALIDATOR_OPTIONS)
    except EmailNotValidError:
        return
    key = normalize_email(raw)  # what sign-in and find_account_by_email compute
    assert validate_new_email(raw) == key  # what a store writes
    assert normalize_email(key) == key
    assert validate_new_email(key) == key
    assert normalize_email(validated.normalized) == key
    if validated.ascii_email is not None:
        assert normalize_email(validated.ascii_email) == key


# Display form


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        pytest.param("ann@xn--bcher-kva.example", "ann@bücher.example", id="idn-domain"),
        pytest.param("ann@mail.xn--p1ai", "ann@mail.рф", id="idn-tld"),
        pytest.param("ann@example.com", "ann@example.com", id="ascii-unchanged"),
        pytest.param("josé@example.com", "josé@example.com", id="unicode-local-part"),
        pytest.param("ann@xn--a.example", "ann@xn--a.example", id="undecodable-kept"),
    ],
)
def test_display_email(stored, shown):
    assert display_email(stored) == shown


@given(candidates)
def test_display_form_leads_back_to_the_stored_form(raw):
    try:
        stored = validate_new_email(raw)
    except InvalidEmail:
        return
    assert normalize_email(display_email(stored)) == stored


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
