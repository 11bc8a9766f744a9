"""Passkeys: bpart_auth.passkeys over py_webauthn, driven by the software authenticator."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpart_auth.errors import ConfigurationError, InvalidInput, InvalidSecondFactor
from bpart_auth.passkeys import (
    MAX_RESPONSE_CHARS,
    PasskeyCredential,
    RelyingParty,
    authentication_options,
    credential_id_of,
    registration_options,
    verify_authentication,
    verify_registration,
)
from bpart_auth.testing import SoftAuthenticator

ORIGIN = "https://admin.example.com"
RP = RelyingParty("example.com", "Example back office", [ORIGIN, "https://example.com"])
USER_ID = b"\x01" * 16


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def authenticator(**switches: Any) -> SoftAuthenticator:
    return SoftAuthenticator(origin=ORIGIN, rp_id="example.com", **switches)


def register(key: SoftAuthenticator, **create: Any) -> PasskeyCredential:
    options, challenge = registration_options(
        RP, user_id=USER_ID, user_name="ann@example.com", display_name="Ann"
    )
    return verify_registration(
        RP, key.create(options, **create), challenge=challenge, require_user_verification=True
    )


# --- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        pytest.param("example.com", ["https://example.com"], id="same-host"),
        pytest.param("example.com", ["https://a.b.example.com:8443"], id="subdomain-port"),
        pytest.param("localhost", ["http://localhost:5000"], id="localhost-http"),
        pytest.param("127.0.0.1", ["http://127.0.0.1:8000"], id="loopback-ip-http"),
        pytest.param("intranet", ["https://intranet"], id="single-label-equal"),
    ],
)
def test_relying_party_accepts(rp_id, origins):
    assert RelyingParty(rp_id, "Example", origins).origins == tuple(origins)


@pytest.mark.parametrize(
    ("rp_id", "origins", "detail"),
    [
        pytest.param("example.com", ["https://example.org"], "registrable suffix", id="other"),
        pytest.param("example.com", ["https://notexample.com"], "registrable", id="not-dot"),
        pytest.param("com", ["https://example.com"], "registrable", id="public-suffix"),
        pytest.param("example.com", ["http://example.com"], "https", id="http"),
        pytest.param("example.com", ["https://example.com/"], "as browsers", id="slash"),
        pytest.param("example.com", ["https://example.com/app"], "as browsers", id="path"),
        pytest.param("example.com", ["https://Example.com"], "as browsers", id="upper"),
        pytest.param("example.com", ["https://example.com:443"], "as browsers", id="port-443"),
        pytest.param("example.com", ["https://u@example.com"], "as browsers", id="userinfo"),
        pytest.param("example.com", ["https://example.com:x"], "origin", id="bad-port"),
        pytest.param("example.com", "https://example.com", "non-empty list", id="str"),
        pytest.param("example.com", [], "non-empty list", id="empty"),
        pytest.param("example.com", [None], "not a str", id="none"),
        pytest.param("https://example.com", ["https://example.com"], "not a domain", id="url"),
        pytest.param("Example.com", ["https://example.com"], "not a domain", id="rp-upper"),
        pytest.param("0.0.1", ["https://127.0.0.1"], "registrable", id="ip-suffix"),
        pytest.param("example.com", ["ftp://example.com"], "https", id="ftp"),
    ],
)
def test_relying_party_refuses(rp_id, origins, detail):
    with pytest.raises(ConfigurationError) as caught:
        RelyingParty(rp_id, "Example", origins)
    assert caught.value.code == "configuration_error"
    assert detail in (caught.value.detail or "")


def test_relying_party_refuses_empty_name():
    with pytest.raises(ConfigurationError) as caught:
        RelyingParty("example.com", " ", ["https://example.com"])
    assert "rp_name" in (caught.value.detail or "")


# --- options ---------------------------------------------------------------------


def test_registration_options_ask_for_a_discoverable_passkey():
    options, challenge = registration_options(
        RP, user_id=USER_ID, user_name="ann@example.com", display_name="Ann", exclude=["AAEC"]
    )
    data = json.loads(options)
    assert unb64url(data["challenge"]) == challenge
    assert len(challenge) == 32
    assert data["rp"] == {"id": "example.com", "name": "Example back office"}
    assert data["user"] == {"id": b64url(USER_ID), "name": "ann@example.com", "displayName": "Ann"}
    assert data["authenticatorSelection"]["residentKey"] == "required"
    assert data["authenticatorSelection"]["requireResidentKey"] is True
    assert data["authenticatorSelection"]["userVerification"] == "preferred"
    assert data["attestation"] == "none"
    assert [item["id"] for item in data["excludeCredentials"]] == ["AAEC"]
    assert {param["alg"] for param in data["pubKeyCredParams"]} >= {-7, -8, -257}


def test_each_challenge_is_new():
    assert authentication_options(RP, allow=None)[1] != authentication_options(RP, allow=None)[1]


def test_authentication_options():
    options, challenge = authentication_options(RP, allow=["AAEC"])
    data = json.loads(options)
    assert unb64url(data["challenge"]) == challenge
    assert data["rpId"] == "example.com"
    assert data["userVerification"] == "preferred"
    assert [item["id"] for item in data["allowCredentials"]] == ["AAEC"]
    assert json.loads(authentication_options(RP, allow=None)[0])["allowCredentials"] == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(
            lambda: registration_options(RP, user_id=b"", user_name="a", display_name="A"),
            "user_id",
            id="empty-user-id",
        ),
        pytest.param(
            lambda: registration_options(RP, user_id=bytes(65), user_name="a", display_name="A"),
            "user_id",
            id="long-user-id",
        ),
        pytest.param(
            lambda: registration_options(RP, user_id=USER_ID, user_name="", display_name="A"),
            "user_name",
            id="no-name",
        ),
        pytest.param(
            lambda: registration_options(
                RP, user_id=USER_ID, user_name="a", display_name="A", exclude=["not base64!"]
            ),
            "exclude",
            id="bad-exclude",
        ),
        pytest.param(lambda: authentication_options(RP, allow=[]), "allow", id="empty-allow"),
        pytest.param(lambda: authentication_options(RP, allow=["A"]), "allow", id="bad-allow"),
    ],
)
def test_options_refuse_bad_arguments(call, field):
    with pytest.raises(InvalidInput) as caught:
        call()
    assert (caught.value.code, caught.value.field) == ("invalid_input", field)


# --- happy paths -----------------------------------------------------------------


def test_register_then_authenticate_as_second_factor():
    key = authenticator(backed_up=False)
    passkey = register(key)
    assert passkey.credential_id == key.credential_ids[0]
    assert (passkey.sign_count, passkey.backed_up, passkey.device_type) == (
        0,
        False,
        "single_device",
    )
    assert passkey.transports == ("hybrid", "internal")
    assert passkey.user_verified is True
    stored = PasskeyCredential.from_secret(passkey.to_secret())
    assert stored == passkey
    for expected_count in (1, 2):
        options, challenge = authentication_options(RP, allow=[stored.credential_id])
        answer = key.get(options)
        assert credential_id_of(answer) == stored.credential_id
        count, handle = verify_authentication(
            RP, answer, challenge=challenge, credential=stored, require_user_verification=False
        )
        assert (count, handle) == (expected_count, USER_ID)
        stored = stored.with_sign_count(count)


def test_discoverable_sign_in_without_allow_list():
    key = authenticator()
    passkey = register(key)
    assert (passkey.backed_up, passkey.device_type) == (True, "multi_device")
    options, challenge = authentication_options(RP, allow=None)
    answer = json.dumps(key.get(options))  # as a str, the way a form posts it
    found = credential_id_of(answer)
    assert found == passkey.credential_id
    count, handle = verify_authentication(
        RP, answer, challenge=challenge, credential=passkey, require_user_verification=True
    )
    assert (count, handle) == (1, USER_ID)


def test_synced_passkey_without_counter_keeps_zero():
    key = authenticator(counter=False)
    passkey = register(key)
    for _ in range(2):
        options, challenge = authentication_options(RP, allow=None)
        count, _handle = verify_authentication(
            RP,
            key.get(options),
            challenge=challenge,
            credential=passkey,
            require_user_verification=True,
        )
        assert count == 0


def test_second_origin_and_no_user_verification_when_not_required():
    key = SoftAuthenticator(origin="https://example.com", rp_id="example.com")
    options, challenge = registration_options(
        RP, user_id=USER_ID, user_name="ann@example.com", display_name="Ann"
    )
    passkey = verify_registration(
        RP,
        key.create(options, user_verified=False),
        challenge=challenge,
        require_user_verification=False,
    )
    assert passkey.user_verified is False
    options, challenge = authentication_options(RP, allow=[passkey.credential_id])
    answer = key.get(options, user_verified=False, user_handle=False)
    assert verify_authentication(
        RP, answer, challenge=challenge, credential=passkey, require_user_verification=False
    ) == (1, None)


def test_excluded_authenticator_does_not_register_twice():
    key = authenticator()
    passkey = register(key)
    options, _challenge = registration_options(
        RP, user_id=USER_ID, user_name="a", display_name="A", exclude=[passkey.credential_id]
    )
    with pytest.raises(ValueError, match="InvalidStateError"):
        key.create(options)


# --- refusals --------------------------------------------------------------------


def _tamper(answer: dict[str, Any], part: str, change: Any) -> dict[str, Any]:
    answer = copy.deepcopy(answer)
    raw = bytearray(unb64url(answer["response"][part]))
    change(raw)
    answer["response"][part] = b64url(bytes(raw))
    return answer


def _flip_last(raw: bytearray) -> None:
    raw[-1] ^= 1


def _truncate(raw: bytearray) -> None:
    del raw[-10:]


def _set_uv(raw: bytearray) -> None:
    raw[32] |= 0x04


REGISTRATION_REFUSALS = {
    "wrong-challenge": (lambda key, options: key.create(options), b"x" * 32, False),
    "wrong-origin": (
        lambda key, options: key.create(options, origin="https://evil.example.net"),
        None,
        False,
    ),
    "wrong-rp-id": (lambda key, options: key.create(options, rp_id="evil.example"), None, False),
    "no-user-verification": (
        lambda key, options: key.create(options, user_verified=False),
        None,
        True,
    ),
    "cross-origin-frame": (
        lambda key, options: key.create(options, cross_origin=True),
        None,
        False,
    ),
    "truncated-attestation": (
        lambda key, options: _tamper(key.create(options), "attestationObject", _truncate),
        None,
        False,
    ),
    "assertion-not-attestation": (
        lambda key, options: key.get(options | {"rpId": "example.com"}),
        None,
        False,
    ),
    "id-mismatch": (lambda key, options: key.create(options) | {"id": "AAEC"}, None, False),
    "oversized": (
        lambda key, options: key.create(options) | {"padding": "x" * MAX_RESPONSE_CHARS},
        None,
        False,
    ),
    "not-json": (lambda _key, _options: "{not json", None, False),
    "not-an-object": (lambda _key, _options: "[1, 2, 3]", None, False),
}


@pytest.mark.parametrize("case", sorted(REGISTRATION_REFUSALS))
def test_registration_refusals(case):
    make, challenge_override, require_uv = REGISTRATION_REFUSALS[case]
    key = authenticator()
    if case == "assertion-not-attestation":
        register(key)
    options, challenge = registration_options(
        RP, user_id=USER_ID, user_name="ann@example.com", display_name="Ann"
    )
    answer = make(key, json.loads(options))
    with pytest.raises(InvalidSecondFactor) as caught:
        verify_registration(
            RP,
            answer,
            challenge=challenge_override or challenge,
            require_user_verification=require_uv,
        )
    assert caught.value.code == "invalid_second_factor"
    assert caught.value.detail


AUTHENTICATION_REFUSALS = {
    "wrong-challenge": ({}, "challenge"),
    "wrong-origin": ({"origin": "https://evil.example.net"}, "origin"),
    "wrong-rp-id": ({"rp_id": "evil.example"}, "RP ID"),
    "no-user-verification": ({"user_verified": False}, "verification"),
    "cross-origin-frame": ({"cross_origin": True}, "cross-origin"),
    "counter-goes-back": ({"sign_count": 4}, "sign counter"),
    "counter-stays": ({"sign_count": 5}, "sign counter"),
    "counter-drops-to-zero": ({"sign_count": 0}, "sign counter"),
    "bad-signature": ({"tamper": ("signature", _flip_last)}, "signature"),
    "forged-uv-flag": ({"user_verified": False, "tamper": ("authenticatorData", _set_uv)}, "sig"),
    "another-credential": ({"other": True}, "another credential"),
}


@pytest.mark.parametrize("case", sorted(AUTHENTICATION_REFUSALS))
def test_authentication_refusals(case):
    switches, detail = dict(AUTHENTICATION_REFUSALS[case][0]), AUTHENTICATION_REFUSALS[case][1]
    key = authenticator()
    passkey = register(key).with_sign_count(5)
    key.set_sign_count(passkey.credential_id, 5)
    tamper = switches.pop("tamper", None)
    if switches.pop("other", False):
        register(key)
        switches["credential_id"] = key.credential_ids[1]
    options, challenge = authentication_options(RP, allow=None)
    answer = key.get(options, **switches)
    if tamper:
        answer = _tamper(answer, *tamper)
    with pytest.raises(InvalidSecondFactor) as caught:
        verify_authentication(
            RP,
            answer,
            challenge=b"x" * 32 if case == "wrong-challenge" else challenge,
            credential=passkey,
            require_user_verification=True,
        )
    assert caught.value.code == "invalid_second_factor"
    assert detail.lower() in (caught.value.detail or "").lower()


def test_counter_going_up_after_a_clone_check_passes():
    key = authenticator()
    passkey = register(key).with_sign_count(5)
    key.set_sign_count(passkey.credential_id, 5)
    options, challenge = authentication_options(RP, allow=None)
    assert verify_authentication(
        RP,
        key.get(options),
        challenge=challenge,
        credential=passkey,
        require_user_verification=True,
    ) == (6, USER_ID)


def test_registration_answer_is_not_an_assertion():
    key = authenticator()
    options, challenge = registration_options(RP, user_id=USER_ID, user_name="a", display_name="A")
    answer = key.create(options)
    passkey = verify_registration(RP, answer, challenge=challenge, require_user_verification=True)
    with pytest.raises(InvalidSecondFactor):
        verify_authentication(
            RP, answer, challenge=challenge, credential=passkey, require_user_verification=False
        )


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("x" * (MAX_RESPONSE_CHARS + 1), id="oversized"),
        pytest.param("[" * 50_000, id="deep-nesting"),
        pytest.param({"id": object()}, id="not-json-data"),
        pytest.param('{"id": "AAEC", "rawId": "AAED"}', id="id-rawid-differ"),
        pytest.param('{"id": "A", "rawId": "A"}', id="not-base64url"),
        pytest.param('{"id": "", "rawId": ""}', id="empty-id"),
        pytest.param(json.dumps({"id": "A" * 1366, "rawId": "A" * 1366}), id="id-too-long"),
        pytest.param('{"id": 5, "rawId": 5}', id="id-not-str"),
    ],
)
def test_credential_id_of_refuses_quietly(answer):
    assert credential_id_of(answer) is None


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("", id="empty"),
        pytest.param("[]", id="list"),
        pytest.param('{"v": 2}', id="version"),
        pytest.param('{"v": 1}', id="fields-missing"),
        pytest.param(
            PasskeyCredential(credential_id="AAEC", public_key=b"k", sign_count=1)
            .to_secret()
            .replace('"sign_count":1', '"sign_count":"1"'),
            id="count-type",
        ),
        pytest.param(
            PasskeyCredential(credential_id="AAEC", public_key=b"k", sign_count=1)
            .to_secret()
            .replace('"public_key":"aw"', '"public_key":"a w"'),
            id="key-not-base64url",
        ),
    ],
)
def test_damaged_secret(secret):
    with pytest.raises(InvalidSecondFactor) as caught:
        PasskeyCredential.from_secret(secret)
    assert "damaged" in (caught.value.detail or "")


# --- hostile input ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def ceremony():
    key = authenticator()
    options, challenge = registration_options(RP, user_id=USER_ID, user_name="a", display_name="A")
    registration = key.create(options)
    passkey = verify_registration(
        RP, registration, challenge=challenge, require_user_verification=True
    )
    options, auth_challenge = authentication_options(RP, allow=None)
    return {
        "registration": (registration, challenge),
        "assertion": (key.get(options), auth_challenge),
        "passkey": passkey,
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for name, child in value.items():
            paths += _paths(child, (*prefix, name))
    return paths


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value = dict(value)
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


def _mutations(answer: dict[str, Any]) -> st.SearchStrategy[Any]:
    paths = _paths(answer)
    encoded = [p for p in paths if p[-1:] and p[-1] not in ("type", "id", "rawId")]

    def bytes_mutation(path: tuple[Any, ...]) -> st.SearchStrategy[Any]:
        return st.binary(max_size=300).map(lambda raw: _replace(answer, path, b64url(raw)))

    client_data = json.loads(unb64url(answer["response"]["clientDataJSON"]))

    def client_data_mutation(name_value: tuple[str, Any]) -> Any:
        changed = json.dumps(client_data | dict([name_value])).encode()
        return _replace(answer, ("response", "clientDataJSON"), b64url(changed))

    return st.one_of(
        st.tuples(st.sampled_from(paths), json_values).map(lambda pv: _replace(answer, *pv)),
        st.tuples(
            st.sampled_from([*client_data, "tokenBinding"]),
            json_values | st.text(st.characters(exclude_categories=()), max_size=20),
        ).map(client_data_mutation),
        st.sampled_from(encoded).flatmap(bytes_mutation),
        st.text(max_size=200),
        json_values,
    )


def _only_invalid_second_factor(call: Any) -> None:
    """Run `call`: it may succeed (a harmless mutation); any failure is ours, with a detail."""
    error: InvalidSecondFactor | None = None
    try:
        call()
    except InvalidSecondFactor as caught:
        error = caught
    assert error is None or error.detail


@HOSTILE
@given(data=st.data())
def test_hostile_registration_answers(ceremony, data):
    answer, challenge = ceremony["registration"]
    hostile = data.draw(_mutations(answer))
    _only_invalid_second_factor(
        lambda: verify_registration(
            RP, hostile, challenge=challenge, require_user_verification=True
        )
    )
    found = credential_id_of(hostile)
    assert found is None or found == hostile["id"]


@HOSTILE
@given(data=st.data())
def test_hostile_assertions(ceremony, data):
    answer, challenge = ceremony["assertion"]
    hostile = data.draw(_mutations(answer))

    def verify() -> None:
        count, _handle = verify_authentication(
            RP,
            hostile,
            challenge=challenge,
            credential=ceremony["passkey"],
            require_user_verification=True,
        )
        assert count == 1

    _only_invalid_second_factor(verify)
