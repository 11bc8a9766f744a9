"""Sealed flow state: round trips, key rotation, every way to refuse, return_to rules."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from bpart_auth import ConfigurationError, InvalidFlowState, InvalidInput, InvalidReturnTo
from bpart_auth.oidc.flowstate import (
    DEFAULT_LIFETIME,
    FlowSealer,
    FlowState,
    check_return_to,
    code_challenge,
    new_flow_state,
)

SECRET = "s" * 32
OTHER_SECRET = "o" * 32
START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CALLBACK = "https://app.example/auth/callback"


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sealer(clock):
    return FlowSealer(SECRET, clock=clock)


def sign_in_state(**overrides):
    values = {
        "intent": "sign_in",
        "provider": "google",
        "redirect_uri": CALLBACK,
        "return_to": "/profile?tab=security#linked",
        "now": START,
    }
    return new_flow_state(**(values | overrides))


def body(sealed):
    text = sealed.removeprefix("v1.")
    return bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def reseal(data):
    return "v1." + base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()


# Making flow states


def test_new_flow_state_has_fresh_random_values_of_256_bits():
    first, second = sign_in_state(), sign_in_state()
    for name in ("state", "nonce", "code_verifier"):
        assert getattr(first, name) != getattr(second, name)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", getattr(first, name))
    assert first.issued_at == START
    assert first.expires_at == START + DEFAULT_LIFETIME == START + timedelta(minutes=10)


def test_code_challenge_is_s256_base64url_without_padding():
    verifier = sign_in_state().code_verifier
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert code_challenge(verifier) == expected.rstrip(b"=").decode()
    assert "=" not in code_challenge(verifier)


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 42, id="too-short"),
        pytest.param("a" * 129, id="too-long"),
        pytest.param("a" * 42 + "+", id="plus"),
        pytest.param("a" * 42 + "=", id="padding"),
        pytest.param("a" * 42 + " ", id="space"),
    ],
)
def test_code_challenge_refuses_a_bad_verifier(verifier):
    with pytest.raises(InvalidInput) as caught:
        code_challenge(verifier)
    assert caught.value.code == "invalid_input"


def test_code_verifier_accepts_the_whole_unreserved_set():
    verifier = "AZaz09-._~" * 5
    assert len(code_challenge(verifier)) == 43


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"intent": "sign_out"}, "intent", id="unknown-intent"),
        pytest.param({"intent": "link"}, "account_id", id="link-without-account"),
        pytest.param(
            {"intent": "accept_invite"}, "invite_token_hash", id="invite-without-token-hash"
        ),
        pytest.param({"account_id": "a1"}, "account_id", id="account-on-sign-in"),
        pytest.param({"provider": ""}, "provider", id="empty-provider"),
        pytest.param({"redirect_uri": ""}, "redirect_uri", id="empty-redirect-uri"),
        pytest.param({"now": START.replace(tzinfo=None)}, "issued_at", id="naive-datetime"),
        pytest.param({"lifetime": timedelta(0)}, "lifetime", id="zero-lifetime"),
        pytest.param({"extra": {"k": 1}}, "extra", id="extra-not-str"),
    ],
)
def test_new_flow_state_refuses_inconsistent_values(overrides, field):
    with pytest.raises(InvalidInput) as caught:
        sign_in_state(**overrides)
    assert caught.value.field == field


def test_flow_state_refuses_a_short_state_and_a_bad_verifier():
    state = sign_in_state()
    values = {name: getattr(state, name) for name in FlowState.__dataclass_fields__}
    with pytest.raises(InvalidInput) as caught:
        FlowState(**(values | {"state": "x" * 21}))
    assert caught.value.field == "state"
    with pytest.raises(InvalidInput) as caught:
        FlowState(**(values | {"code_verifier": "short"}))
    assert caught.value.field == "code_verifier"


def test_flow_state_checks_return_to():
    with pytest.raises(InvalidReturnTo):
        sign_in_state(return_to="https://evil.example/")


def test_repr_hides_the_code_verifier_and_extra():
    state = sign_in_state(extra={"msal": "secret-bits"})
    assert state.code_verifier not in repr(state)
    assert "secret-bits" not in repr(state)


# Sealing and opening


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(sign_in_state(), id="sign-in"),
        pytest.param(sign_in_state(return_to=None), id="no-return-to"),
        pytest.param(
            sign_in_state(intent="link", provider="microsoft", account_id="acct-1"), id="link"
        ),
        pytest.param(
            sign_in_state(intent="accept_invite", invite_token_hash="ab" * 32), id="invite"
        ),
        pytest.param(sign_in_state(extra={"é": "ü", "b": ""}), id="unicode-extra"),
        pytest.param(
            sign_in_state(now=START.astimezone(timezone(timedelta(hours=2)))), id="other-tz"
        ),
    ],
)
def test_seal_and_open_round_trip(sealer, state):
    sealed = sealer.seal(state)
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+", sealed)
    opened = sealer.open(sealed)
    assert opened == state
    assert dict(opened.extra) == dict(state.extra)
    assert opened.code_verifier == state.code_verifier


def test_sealing_twice_gives_different_strings(sealer):
    state = sign_in_state()
    assert sealer.seal(state) != sealer.seal(state)


def test_sealed_state_is_compact_and_hides_its_contents(sealer):
    state = sign_in_state()
    sealed = sealer.seal(state)
    assert len(sealed) < 600
    assert "profile" not in sealed
    assert state.state not in sealed


def test_a_fallback_key_opens_but_never_seals(clock):
    old = FlowSealer(OTHER_SECRET, clock=clock)
    new = FlowSealer(SECRET, fallback_secret_keys=[OTHER_SECRET], clock=clock)
    state = sign_in_state()
    assert new.open(old.seal(state)) == state
    with pytest.raises(InvalidFlowState) as caught:
        old.open(new.seal(state))
    assert "not authentic" in caught.value.detail


def test_bytes_and_str_secrets_derive_the_same_key(clock):
    state = sign_in_state()
    sealed = FlowSealer(SECRET.encode(), clock=clock).seal(state)
    assert FlowSealer(SECRET, clock=clock).open(sealed) == state


@pytest.mark.parametrize(
    ("secret", "fallbacks"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("x" * 31, (), id="31-bytes"),
        pytest.param(b"x" * 31, (), id="31-bytes-as-bytes"),
        pytest.param(12345678901234567890123456789012, (), id="not-text"),
        pytest.param(SECRET, ("short",), id="short-fallback"),
        pytest.param(SECRET, OTHER_SECRET, id="fallbacks-as-one-string"),
    ],
)
def test_weak_secrets_are_a_configuration_error(secret, fallbacks):
    with pytest.raises(ConfigurationError) as caught:
        FlowSealer(secret, fallback_secret_keys=fallbacks)
    assert caught.value.code == "configuration_error"


def test_the_minimum_is_32_bytes_not_characters():
    FlowSealer("é" * 16)  # 32 bytes of UTF-8
    with pytest.raises(ConfigurationError):
        FlowSealer("x" * 31)


def test_an_oversized_state_is_refused_at_sealing(sealer):
    with pytest.raises(InvalidInput) as caught:
        sealer.seal(sign_in_state(extra={"big": "x" * 7000}))
    assert caught.value.field == "extra"


def tampered(sealed):
    data = body(sealed)
    data[20] ^= 1
    return reseal(data)


def tag_flipped(sealed):
    data = body(sealed)
    data[-1] ^= 0x80
    return reseal(data)


def nonce_flipped(sealed):
    data = body(sealed)
    data[0] ^= 1
    return reseal(data)


def truncated(sealed):
    return sealed[:-4]


def cut_to_nonce(sealed):
    return reseal(body(sealed)[:28])


def with_padding(sealed):
    return sealed + "=" * (-len(sealed[3:]) % 4 or 4)


@pytest.mark.parametrize(
    ("mangle", "detail"),
    [
        pytest.param(tampered, "not authentic", id="ciphertext-bit-flipped"),
        pytest.param(tag_flipped, "not authentic", id="tag-bit-flipped"),
        pytest.param(nonce_flipped, "not authentic", id="nonce-bit-flipped"),
        pytest.param(truncated, "not authentic", id="truncated"),
        pytest.param(cut_to_nonce, "truncated", id="cut-to-nonce-and-tag"),
        pytest.param(lambda s: s + "A", "not authentic", id="extended"),
        pytest.param(lambda s: s[:-1] + "!", "base64url", id="not-base64url"),
        pytest.param(with_padding, "base64url", id="padded"),
        pytest.param(lambda s: "v2." + s[3:], "version", id="other-version"),
        pytest.param(lambda s: s[3:], "version prefix", id="no-version"),
        pytest.param(lambda _: "", "version prefix", id="empty"),
        pytest.param(lambda _: "v1.", "base64url", id="prefix-only"),
        pytest.param(lambda _: "v1." + "A" * 60, "not authentic", id="garbage"),
        pytest.param(lambda s: s + "A" * 9000, "too long", id="huge"),
        pytest.param(lambda _: None, "not a str", id="none"),
        pytest.param(lambda s: s.encode(), "not a str", id="bytes"),
    ],
)
def test_open_refuses(sealer, mangle, detail):
    with pytest.raises(InvalidFlowState) as caught:
        sealer.open(mangle(sealer.seal(sign_in_state())))
    assert caught.value.code == "invalid_flow_state"
    assert detail in caught.value.detail


def test_open_refuses_a_state_sealed_under_another_key(sealer, clock):
    sealed = FlowSealer(OTHER_SECRET, clock=clock).seal(sign_in_state())
    with pytest.raises(InvalidFlowState) as caught:
        sealer.open(sealed)
    assert "unknown key" in caught.value.detail


def test_the_key_is_derived_not_the_secret_itself(sealer):
    data = body(sealer.seal(sign_in_state()))
    raw_key = AESGCM(SECRET.encode())
    with pytest.raises(InvalidTag):
        raw_key.decrypt(bytes(data[:12]), bytes(data[12:]), b"bpart_auth flow state v1")


def test_open_refuses_an_expired_state(sealer, clock):
    sealed = sealer.seal(sign_in_state())
    clock.advance(minutes=9, seconds=59)
    assert sealer.open(sealed).provider == "google"
    clock.advance(seconds=1)
    with pytest.raises(InvalidFlowState) as caught:
        sealer.open(sealed)
    assert caught.value.detail == "flow state expired"


def test_the_sealers_lifetime_caps_a_longer_sealed_expiry(clock):
    long_lived = sign_in_state(lifetime=timedelta(hours=1))
    sealed = FlowSealer(SECRET, clock=clock).seal(long_lived)
    strict = FlowSealer(SECRET, lifetime=timedelta(minutes=5), clock=clock)
    clock.advance(minutes=5)
    with pytest.raises(InvalidFlowState) as caught:
        strict.open(sealed)
    assert caught.value.detail == "flow state expired"


def test_open_refuses_a_state_from_the_future_beyond_a_minute(sealer, clock):
    near = sealer.seal(sign_in_state(now=START + timedelta(seconds=60)))
    far = sealer.seal(sign_in_state(now=START + timedelta(seconds=61)))
    assert sealer.open(near).issued_at == START + timedelta(seconds=60)
    with pytest.raises(InvalidFlowState) as caught:
        sealer.open(far)
    assert caught.value.detail == "flow state issued in the future"


def test_an_authentic_but_unreadable_payload_is_refused(sealer):
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"bpart_auth flow state v1"
    ).derive(SECRET.encode())
    nonce = b"\x00" * 12
    for plaintext in (b"[]", b'{"i":"sign_in"}', b"\xff"):
        data = nonce + AESGCM(key).encrypt(nonce, plaintext, b"bpart_auth flow state v1")
        with pytest.raises(InvalidFlowState) as caught:
            sealer.open(reseal(data))
        assert caught.value.detail == "flow state payload unreadable"


def test_associated_data_binds_the_version(sealer):
    # The same bytes under another version label must not open, even with our key.
    data = body(sealer.seal(sign_in_state()))
    with pytest.raises(InvalidFlowState):
        sealer.open("v2." + reseal(data)[3:])


@given(st.text(max_size=300))
def test_open_raises_only_invalid_flow_state_for_any_text(text):
    sealer = FlowSealer(SECRET, clock=lambda: START)
    for candidate in (text, "v1." + text):
        with pytest.raises(InvalidFlowState):
            sealer.open(candidate)


@given(st.binary(min_size=0, max_size=400))
def test_open_raises_only_invalid_flow_state_for_any_well_formed_body(data):
    sealer = FlowSealer(SECRET, clock=lambda: START)
    with pytest.raises(InvalidFlowState):
        sealer.open(reseal(data))


@given(st.integers(min_value=0, max_value=1000), st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_refused(position, bit):
    sealer = FlowSealer(SECRET, clock=lambda: START)
    data = body(sealer.seal(sign_in_state()))
    data[position % len(data)] ^= 1 << bit
    with pytest.raises(InvalidFlowState):
        sealer.open(reseal(data))


# Where to go afterwards: check_return_to


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("/", id="root"),
        pytest.param("/profile?tab=security#linked", id="query-and-fragment"),
        pytest.param("/a/b%20c", id="encoded-space"),
        pytest.param("/a:b/c@d", id="colon-and-at-in-path"),
        pytest.param("/%E2%9C%93", id="encoded-utf8"),
        pytest.param("/" + "a" * 1999, id="2000-characters"),
    ],
)
def test_return_to_accepts_same_site_paths(value):
    assert check_return_to(value) == value


def test_return_to_none_means_none():
    assert check_return_to(None) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("profile", id="relative-without-slash"),
        pytest.param("https://evil.example/", id="absolute-url"),
        pytest.param("javascript:alert(1)", id="javascript-scheme"),
        pytest.param("//evil.example", id="protocol-relative"),
        pytest.param("///evil.example", id="triple-slash"),
        pytest.param("/\\evil.example", id="slash-backslash"),
        pytest.param("\\\\evil.example", id="double-backslash"),
        pytest.param("/a\\b", id="backslash-inside"),
        pytest.param("/%2F%2Fevil.example", id="encoded-double-slash"),
        pytest.param("/%2f/evil.example", id="encoded-slash-lowercase"),
        pytest.param("/%5Cevil.example", id="encoded-backslash"),
        pytest.param("/%09/evil.example", id="encoded-tab"),
        pytest.param("/%0A/evil.example", id="encoded-newline"),
        pytest.param("/%0d%0aSet-Cookie:x", id="encoded-crlf-header-injection"),
        pytest.param("/%00", id="encoded-nul"),
        pytest.param("/%C2%85", id="encoded-next-line"),
        pytest.param("/%E2%80%A8", id="encoded-line-separator"),
        pytest.param("/\t/evil.example", id="tab"),
        pytest.param("/\n/evil.example", id="newline"),
        pytest.param("/ /evil.example", id="space"),
        pytest.param("/\x7f", id="delete"),
        pytest.param("/é", id="non-ascii"),
        pytest.param("/\u3000", id="ideographic-space"),
        pytest.param(" /profile", id="leading-space"),
        pytest.param("/" + "a" * 2000, id="2001-characters"),
        pytest.param(b"/profile", id="bytes"),
    ],
)
def test_return_to_refuses(value):
    with pytest.raises(InvalidReturnTo) as caught:
        check_return_to(value)
    assert caught.value.code == "invalid_return_to"
    assert caught.value.field == "return_to"
    assert caught.value.detail.startswith("return_to refused")


@given(st.text(max_size=60))
def test_return_to_accepts_nothing_a_browser_could_read_as_another_host(text):
    try:
        value = check_return_to(text)
    except InvalidReturnTo:
        return
    assert value is not None
    assert value.startswith("/")
    assert not value.startswith("//")
    assert "\\" not in value


def test_flow_states_are_hashable_values():
    state = sign_in_state(extra={"a": "b"})
    assert len({state, state}) == 1
