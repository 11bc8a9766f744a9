"""TOTP primitives: RFC 6238 codes, drift, hostile input, QR SVG, sealed secrets, recovery codes."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st

from bpart_auth import InvalidInput, InvalidSecondFactor
from bpart_auth.oidc.flowstate import FlowSealer, new_flow_state
from bpart_auth.totp import (
    TotpSecrets,
    matching_step,
    new_recovery_codes,
    new_secret,
    normalize_recovery_code,
    provisioning_uri,
    qr_svg,
    recovery_code_hash,
)

# RFC 6238 appendix B: the SHA-1 seed is the ASCII "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [  # (Unix time, 8-digit TOTP)
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
KEY = "k" * 32
OTHER_KEY = "q" * 32
NOW = datetime(2026, 3, 1, 12, 0, 10, tzinfo=timezone.utc)


def at(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc)


def code_at(secret, moment):
    return pyotp.TOTP(secret).at(moment)


# Codes


@pytest.mark.parametrize(("seconds", "code8"), RFC_VECTORS)
def test_rfc_6238_vectors(seconds, code8):
    # The 8-digit vectors through pyotp, then the 6-digit codes the library takes:
    # the same truncation modulo 10**6, i.e. the vector's last six digits.
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(at(seconds)) == code8
    assert matching_step(RFC_SECRET, code8[-6:], now=at(seconds), drift=0) == seconds // 30


@pytest.mark.parametrize(("seconds", "code8"), RFC_VECTORS)
def test_an_8_digit_code_is_not_a_code(seconds, code8):
    assert matching_step(RFC_SECRET, code8, now=at(seconds)) is None


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-2, False, id="two-steps-early"),
        pytest.param(-1, True, id="one-step-early"),
        pytest.param(0, True, id="now"),
        pytest.param(1, True, id="one-step-late"),
        pytest.param(2, False, id="two-steps-late"),
    ],
)
def test_one_step_of_drift_either_way(offset, accepted):
    secret = new_secret()
    step = int(NOW.timestamp()) // 30
    code = code_at(secret, NOW + timedelta(seconds=30 * offset))
    expected = step + offset if accepted else None
    assert matching_step(secret, code, now=NOW) == expected


def test_drift_is_configurable():
    secret = new_secret()
    step = int(NOW.timestamp()) // 30
    two_late = code_at(secret, NOW + timedelta(seconds=60))
    assert matching_step(secret, two_late, now=NOW, drift=2) == step + 2
    one_late = code_at(secret, NOW + timedelta(seconds=30))
    assert matching_step(secret, one_late, now=NOW, drift=0) is None


def test_the_step_is_the_same_while_the_window_moves():
    # What the single-use guard keys on: one code, one step, whenever it is replayed.
    secret = new_secret()
    code = code_at(secret, NOW)
    steps = {matching_step(secret, code, now=NOW + timedelta(seconds=s)) for s in (-30, 0, 29)}
    assert steps == {int(NOW.timestamp()) // 30}


def test_spaces_in_a_code_are_ignored():
    secret = new_secret()
    code = code_at(secret, NOW)
    step = int(NOW.timestamp()) // 30
    for typed in (f"{code[:3]} {code[3:]}", f" {code}\t", f"{code}\n"):
        assert matching_step(secret, typed, now=NOW) == step


def to_digits(code, zero):
    return "".join(chr(ord(zero) + int(d)) for d in code)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda _: None, id="none"),
        pytest.param(int, id="int"),
        pytest.param(float, id="float"),
        pytest.param(lambda c: c.encode(), id="bytes"),
        pytest.param(lambda c: [c], id="list"),
        pytest.param(lambda _: "", id="empty"),
        pytest.param(lambda c: c[:5], id="five-digits"),
        pytest.param(lambda c: c + "0", id="seven-digits"),
        pytest.param(lambda c: "+" + c, id="plus-sign"),
        pytest.param(lambda c: c[:3] + "-" + c[3:], id="dash"),
        pytest.param(lambda c: c + "\x00", id="nul"),
        pytest.param(lambda c: to_digits(c, "\u0660"), id="arabic-indic-digits"),
        pytest.param(lambda c: to_digits(c, "\uff10"), id="fullwidth-digits"),
        pytest.param(lambda c: to_digits(c, "\u0966"), id="devanagari-digits"),
        pytest.param(lambda c: c + " " * 100, id="padded-past-the-bound"),
        pytest.param(lambda c: c * 200_000, id="huge"),
    ],
)
def test_malformed_codes_are_none_without_raising(mangle):
    secret = new_secret()
    assert matching_step(secret, mangle(code_at(secret, NOW)), now=NOW) is None


@given(
    st.one_of(
        st.text(max_size=80),
        st.text(alphabet="0123456789 \u0660\u0661\uff11", max_size=12),
        st.integers(),
        st.none(),
        st.binary(max_size=20),
        st.floats(),
        st.lists(st.text(max_size=6), max_size=3),
    )
)
def test_hostile_codes_give_none_or_a_step_in_the_window(code):
    step = int(NOW.timestamp()) // 30
    result = matching_step(RFC_SECRET, code, now=NOW)
    assert result is None or (isinstance(code, str) and result in {step - 1, step, step + 1})


@pytest.mark.parametrize(
    ("secret", "options", "field"),
    [
        pytest.param(RFC_SECRET, {"now": datetime(2026, 1, 1)}, "now", id="naive-now"),  # noqa: DTZ001
        pytest.param(RFC_SECRET, {"drift": -1}, "drift", id="negative-drift"),
        pytest.param(RFC_SECRET, {"drift": 11}, "drift", id="huge-drift"),
        pytest.param("JBSWY3DPEHPK3PXP", {}, "secret", id="80-bit-secret"),
        pytest.param("not base32 at all, not at all!", {}, "secret", id="not-base32"),
    ],
)
def test_caller_mistakes_are_invalid_input(secret, options, field):
    with pytest.raises(InvalidInput) as caught:
        matching_step(secret, "123456", **{"now": NOW, **options})
    assert caught.value.field == field


# Setting up an app


def test_new_secrets_are_160_random_bits_in_base32():
    secrets_ = {new_secret() for _ in range(50)}
    assert len(secrets_) == 50
    for secret in secrets_:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_is_what_authenticator_apps_read():
    uri = provisioning_uri(RFC_SECRET, account_name="ada@example.com", issuer="Back Office")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Back Office:ada@example.com"
    assert parse_qs(parts.query) == {"secret": [RFC_SECRET], "issuer": ["Back Office"]}
    parsed = pyotp.parse_uri(uri)
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")
    assert parsed.now() == pyotp.TOTP(RFC_SECRET).now()


@pytest.mark.parametrize(
    ("account_name", "issuer", "field"),
    [
        pytest.param("ada@example.com", "Back:Office", "issuer", id="colon-in-issuer"),
        pytest.param("ada:x@example.com", "Back Office", "account_name", id="colon-in-name"),
        pytest.param("", "Back Office", "account_name", id="empty-name"),
        pytest.param("ada@example.com", " ", "issuer", id="blank-issuer"),
        pytest.param("ada\n@example.com", "Back Office", "account_name", id="newline"),
        pytest.param("ada\u202e@example.com", "Back Office", "account_name", id="bidi-override"),
        pytest.param("a" * 201, "Back Office", "account_name", id="too-long"),
        pytest.param(None, "Back Office", "account_name", id="none"),
    ],
)
def test_provisioning_uri_refuses_labels_apps_would_misread(account_name, issuer, field):
    with pytest.raises(InvalidInput) as caught:
        provisioning_uri(RFC_SECRET, account_name=account_name, issuer=issuer)
    assert caught.value.field == field


def test_provisioning_uri_refuses_a_weak_secret():
    with pytest.raises(InvalidInput):
        provisioning_uri("JBSWY3DPEHPK3PXP", account_name="ada", issuer="Back Office")


SVG = "{http://www.w3.org/2000/svg}"


def test_qr_svg_is_plain_inline_svg_with_no_active_content():
    uri = provisioning_uri(new_secret(), account_name="ada@example.com", issuer="Back Office")
    svg = qr_svg(uri)
    assert svg.startswith("<svg ")
    assert svg.endswith("</svg>")
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == SVG + "svg"
    elements = list(root.iter())
    assert {element.tag for element in elements} <= {SVG + "svg", SVG + "g", SVG + "path"}
    for element in elements:
        assert set(element.attrib) <= {"width", "height", "transform", "fill", "stroke", "d"}
        assert not (element.text or "").strip()
    assert "script" not in svg.lower()
    assert "href" not in svg
    assert "secret" not in svg
    # A white background under the quiet zone: scannable on a dark page.
    assert root.find(f".//{SVG}path[@fill='#fff']") is not None


def test_qr_svg_encodes_the_uri():
    # Rebuild the module matrix from the path and compare it with the QR code segno
    # makes of the same text: what a camera would read.
    uri = "otpauth://totp/X:y?secret=" + RFC_SECRET
    root = ET.fromstring(qr_svg(uri, scale=1))  # noqa: S314 - our own output
    d = root.find(f".//{SVG}path[@stroke]").get("d")
    expected = segno.make(uri, error="m", micro=False)
    size = expected.symbol_size()[0]
    drawn = [[0] * size for _ in range(size)]
    x = y = 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", d):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x) + int(a)):
                drawn[int(y)][column] = 1
            x += float(a)
    assert [[int(bool(m)) for m in row] for row in expected.matrix_iter(border=4)] == drawn
    assert expected.error == "M"


def test_qr_svg_scale_and_bounds():
    small = ET.fromstring(qr_svg("otpauth://totp/x", scale=2))  # noqa: S314
    large = ET.fromstring(qr_svg("otpauth://totp/x", scale=8))  # noqa: S314
    assert int(large.get("width")) == 4 * int(small.get("width"))
    for uri, scale in (("", 4), ("x" * 1001, 4), ("x", 0), ("x", 21)):
        with pytest.raises(InvalidInput):
            qr_svg(uri, scale=scale)


# Sealed secrets


def test_a_sealed_secret_opens_for_its_account_only():
    secrets_ = TotpSecrets(KEY)
    secret = new_secret()
    sealed = secrets_.seal(secret, account_id="account-a")
    assert secret not in sealed
    assert secret[:8] not in sealed
    assert secrets_.open(sealed, account_id="account-a") == secret
    with pytest.raises(InvalidSecondFactor) as caught:
        secrets_.open(sealed, account_id="account-b")
    assert "not authentic" in caught.value.detail


def test_a_fallback_key_opens_sealed_secrets_and_never_seals():
    secret = new_secret()
    old = TotpSecrets(OTHER_KEY)
    rotated = TotpSecrets(KEY, [OTHER_KEY])
    assert rotated.open(old.seal(secret, account_id="a"), account_id="a") == secret
    with pytest.raises(InvalidSecondFactor):
        old.open(rotated.seal(secret, account_id="a"), account_id="a")


def flip_last(sealed):
    return sealed[:-1] + ("A" if sealed[-1] != "A" else "B")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(flip_last, id="tampered"),
        pytest.param(lambda s: s[:-6], id="truncated"),
        pytest.param(lambda s: s[3:], id="no-version"),
        pytest.param(lambda _: None, id="none"),
        pytest.param(lambda s: s + "A" * 500, id="huge"),
        pytest.param(lambda _: new_secret(), id="a-raw-secret"),
    ],
)
def test_a_damaged_sealed_secret_is_invalid_second_factor(mangle):
    secrets_ = TotpSecrets(KEY)
    with pytest.raises(InvalidSecondFactor) as caught:
        secrets_.open(mangle(secrets_.seal(new_secret(), account_id="a")), account_id="a")
    assert caught.value.code == "invalid_second_factor"
    assert caught.value.detail.startswith("TOTP secret ")


def test_sealed_secrets_and_flow_states_use_unrelated_keys():
    flow = FlowSealer(KEY).seal(
        new_flow_state(intent="sign_in", provider="google", redirect_uri="https://a.example/cb")
    )
    with pytest.raises(InvalidSecondFactor):
        TotpSecrets(KEY).open(flow, account_id="a")


def test_only_a_totp_secret_is_sealed():
    with pytest.raises(InvalidInput):
        TotpSecrets(KEY).seal("hunter2", account_id="a")


# Recovery codes

RECOVERY = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}")


def test_recovery_codes_are_ten_distinct_80_bit_codes():
    codes = new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(RECOVERY.fullmatch(code) for code in codes)  # 16 x 5 bits
    seen = {character for _ in range(20) for code in new_recovery_codes() for character in code}
    assert seen == set("0123456789abcdefghjkmnpqrstvwxyz-")  # the whole alphabet, no i l o u


def test_recovery_code_count():
    assert len(new_recovery_codes(3)) == 3
    for count in (0, 101):
        with pytest.raises(InvalidInput):
            new_recovery_codes(count)


def test_recovery_codes_normalise_and_hash_whatever_the_typing():
    code = new_recovery_codes(1)[0]
    compact = code.replace("-", "")
    variants = [code, code.upper(), compact, f"  {code[:9]} {code[10:]}  ", code.replace("-", " ")]
    assert {normalize_recovery_code(v) for v in variants} == {compact}
    assert {recovery_code_hash(v) for v in variants} == {
        hashlib.sha256(f"bpart_auth/recovery_code\x00{compact}".encode()).hexdigest()
    }


def test_misread_letters_are_taken_for_digits():
    assert normalize_recovery_code("O0Il-abcd-efgh-jkmn") == "0011abcdefghjkmn"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(None, id="none"),
        pytest.param(1234, id="int"),
        pytest.param(b"abcd-efgh-jkmn-pqrs", id="bytes"),
        pytest.param("", id="empty"),
        pytest.param("abcd-efgh-jkmn-pqr", id="short"),
        pytest.param("abcd-efgh-jkmn-pqrst", id="long"),
        pytest.param("abcd-efgh-jkmn-pqru", id="letter-u"),
        pytest.param("abcd-efgh-jkmn-pqr!", id="punctuation"),
        pytest.param("\u0430bcd-efgh-jkmn-pqrs", id="cyrillic-a"),
        pytest.param("\uff41bcd-efgh-jkmn-pqrs", id="fullwidth-a"),
        pytest.param("abcd-efgh-jkmn-pqrs" + " " * 50, id="padded-past-the-bound"),
        pytest.param("a" * 1_000_000, id="huge"),
    ],
)
def test_what_cannot_be_a_recovery_code(text):
    assert normalize_recovery_code(text) is None
    with pytest.raises(InvalidSecondFactor):
        recovery_code_hash(text)


@given(st.one_of(st.text(max_size=80), st.none(), st.integers(), st.binary(max_size=30)))
def test_normalising_any_input_returns_a_code_or_none(text):
    result = normalize_recovery_code(text)
    assert result is None or re.fullmatch(r"[0-9a-hjkmnp-tv-z]{16}", result)


# Packaging


def test_import_bpart_auth_imports_no_mfa_dependency():
    script = "import sys, bpart_auth; print({'pyotp', 'segno', 'webauthn'} & set(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "set()"
