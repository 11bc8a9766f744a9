"""SecretBox: purpose-derived AES-256-GCM sealing, key rotation, and every way to refuse."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from bpart_auth import ConfigurationError, InvalidFlowState, InvalidInput, InvalidSecondFactor
from bpart_auth._secretbox import SecretBox, sealed_length

SECRET = "s" * 32
OTHER_SECRET = "o" * 32
PURPOSE = b"bpart_auth test v1"


def make_box(secret=SECRET, *, purpose=PURPOSE, error=InvalidSecondFactor, **options):
    return SecretBox(secret, purpose=purpose, error=error, noun="test value", **options)


def body(sealed):
    text = sealed[3:]
    return bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def reseal(data):
    return "v1." + base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()


def test_round_trip_with_associated_data():
    box = make_box()
    sealed = box.seal(b"\x00secret\xff", associated=b"account-1")
    assert sealed.startswith("v1.")
    assert box.open(sealed, associated=b"account-1") == b"\x00secret\xff"


def test_sealing_twice_gives_different_strings():
    box = make_box()
    assert box.seal(b"same") != box.seal(b"same")


def test_the_sealed_text_does_not_contain_the_plaintext():
    sealed = make_box().seal(b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert "JBSWY3DP" not in sealed
    assert b"JBSWY3DP" not in body(sealed)


def test_the_length_is_what_sealed_length_says():
    box = make_box()
    for size in (0, 1, 2, 3, 20, 100):
        assert len(box.seal(b"x" * size)) == sealed_length(size)


def test_other_associated_data_does_not_open():
    box = make_box()
    sealed = box.seal(b"secret", associated=b"account-1")
    for associated in (b"account-2", b"", b"account-1\x00"):
        with pytest.raises(InvalidSecondFactor) as caught:
            box.open(sealed, associated=associated)
        assert "not authentic" in caught.value.detail


def test_another_purpose_derives_another_key():
    sealed = make_box().seal(b"secret")
    with pytest.raises(InvalidSecondFactor) as caught:
        make_box(purpose=b"bpart_auth other v1").open(sealed)
    assert "not authentic" in caught.value.detail


def test_the_key_is_hkdf_of_the_secret_with_the_purpose_as_info():
    data = body(make_box().seal(b"secret", associated=b"a"))
    nonce, ciphertext = bytes(data[:12]), bytes(data[12:])
    with pytest.raises(InvalidTag):
        AESGCM(SECRET.encode()).decrypt(nonce, ciphertext, b"a")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        SECRET.encode()
    )
    assert AESGCM(key).decrypt(nonce, ciphertext, b"a") == b"secret"


def test_a_fallback_key_opens_but_never_seals():
    old = make_box()
    new = make_box(OTHER_SECRET, fallback_secret_keys=[SECRET])
    assert new.open(old.seal(b"before rotation")) == b"before rotation"
    with pytest.raises(InvalidSecondFactor) as caught:
        old.open(new.seal(b"after rotation"))
    assert "unknown key" in caught.value.detail


def test_bytes_and_str_secrets_are_the_same_key():
    assert make_box(SECRET.encode()).open(make_box(SECRET).seal(b"x")) == b"x"


@pytest.mark.parametrize(
    ("secret", "fallbacks", "detail"),
    [
        pytest.param("s" * 31, (), "secret_key must be at least 32 bytes", id="short"),
        pytest.param(b"s" * 31, (), "secret_key must be at least 32 bytes", id="short-bytes"),
        pytest.param(None, (), "secret_key must be a str or bytes", id="none"),
        pytest.param(SECRET, ["s" * 10], "each of fallback_secret_keys", id="short-fallback"),
        pytest.param(SECRET, SECRET, "not a single key", id="single-fallback"),
    ],
)
def test_weak_keys_are_a_configuration_error(secret, fallbacks, detail):
    with pytest.raises(ConfigurationError) as caught:
        make_box(secret, fallback_secret_keys=fallbacks)
    assert detail in caught.value.detail


def test_a_purpose_is_required():
    with pytest.raises(ConfigurationError):
        make_box(purpose=b"")


def test_the_minimum_is_32_bytes_not_characters():
    assert make_box("é" * 16).open(make_box("é" * 16).seal(b"x")) == b"x"


def test_sealing_more_than_the_maximum_is_refused():
    box = make_box(max_plaintext_bytes=64)
    assert box.open(box.seal(b"x" * 64)) == b"x" * 64
    with pytest.raises(InvalidInput):
        box.seal(b"x" * 65)


def flip(position):
    def mangle(sealed):
        data = body(sealed)
        data[position] ^= 1
        return reseal(data)

    return mangle


@pytest.mark.parametrize(
    ("mangle", "detail"),
    [
        pytest.param(flip(20), "not authentic", id="ciphertext-bit-flipped"),
        pytest.param(flip(-1), "not authentic", id="tag-bit-flipped"),
        pytest.param(flip(0), "not authentic", id="nonce-bit-flipped"),
        pytest.param(lambda s: s[:-4], "not authentic", id="truncated"),
        pytest.param(lambda s: reseal(body(s)[:28]), "truncated", id="cut-to-nonce-and-tag"),
        pytest.param(lambda s: s + "A", "not authentic", id="extended"),
        pytest.param(lambda s: s[:-1] + "!", "not base64url", id="not-base64url"),
        pytest.param(lambda s: s + "==", "not base64url", id="padded"),
        pytest.param(lambda s: s + "A" * 3, "not base64url", id="impossible-length"),
        pytest.param(lambda s: "v2." + s[3:], "unsupported version", id="other-version"),
        pytest.param(lambda s: s[3:], "no version prefix", id="no-version"),
        pytest.param(lambda _: "", "no version prefix", id="empty"),
        pytest.param(lambda _: "v1.", "not base64url", id="prefix-only"),
        pytest.param(lambda _: "v1." + "A" * 60, "not authentic", id="garbage"),
        pytest.param(lambda s: s + "A" * 200, "too long", id="huge"),
        pytest.param(lambda _: None, "is not a str", id="none"),
        pytest.param(lambda s: s.encode(), "is not a str", id="bytes"),
        pytest.param(lambda _: 12, "is not a str", id="int"),
    ],
)
def test_open_refuses_with_the_callers_error(mangle, detail):
    box = make_box(max_plaintext_bytes=100)
    with pytest.raises(InvalidSecondFactor) as caught:
        box.open(mangle(box.seal(b"a 40-byte secret, roughly, give or take")))
    assert caught.value.code == "invalid_second_factor"
    assert caught.value.detail.startswith("test value ")
    assert detail in caught.value.detail


def test_the_error_class_is_the_callers_choice():
    with pytest.raises(InvalidFlowState) as caught:
        make_box(error=InvalidFlowState).open("garbage")
    assert caught.value.detail == "test value malformed: no version prefix"


@given(st.text(max_size=300))
def test_open_raises_only_the_callers_error_for_any_text(text):
    box = make_box()
    for candidate in (text, "v1." + text):
        with pytest.raises(InvalidSecondFactor):
            box.open(candidate)


@given(st.binary(max_size=300), st.binary(max_size=20))
def test_open_raises_only_the_callers_error_for_any_well_formed_body(data, associated):
    with pytest.raises(InvalidSecondFactor):
        make_box().open(reseal(data), associated=associated)
