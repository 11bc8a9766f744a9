"""Passwords: argon2id hashing and verification, rehash, dummy verify, the policy."""

from __future__ import annotations

import hashlib
import importlib.resources
import unicodedata

import argon2
import pytest
from argon2.exceptions import Argon2Error, InvalidHashError

from bpart_auth import (
    ConfigurationError,
    InvalidInput,
    PasswordRejected,
    UnsupportedPasswordHash,
)
from bpart_auth._weak_passwords import common_passwords
from bpart_auth.passwords import (
    CHEAP_FOR_TESTS,
    RFC_9106_LOW_MEMORY,
    Argon2Parameters,
    PasswordHasher,
    PasswordPolicy,
    Verification,
    normalize_password,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def hasher():
    return PasswordHasher(CHEAP_FOR_TESTS)


def _stored_parameters(password_hash):
    return argon2.extract_parameters(password_hash)


# Hashing and verifying


def test_hash_then_verify(hasher):
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$")
    assert hasher.verify(password=PASSWORD, password_hash=stored) == Verification(
        ok=True, needs_rehash=False
    )


def test_wrong_password_does_not_verify(hasher):
    stored = hasher.hash(PASSWORD)
    result = hasher.verify(password=PASSWORD.upper(), password_hash=stored)
    assert result == Verification(ok=False, needs_rehash=False)
    assert not result


def test_each_hash_has_its_own_salt(hasher):
    first, second = hasher.hash(PASSWORD), hasher.hash(PASSWORD)
    assert first != second
    assert hasher.verify(password=PASSWORD, password_hash=first).ok
    assert hasher.verify(password=PASSWORD, password_hash=second).ok


def test_hash_encodes_the_configured_parameters():
    parameters = Argon2Parameters(time_cost=2, memory_cost=16, parallelism=2, hash_len=16)
    stored = PasswordHasher(parameters).hash(PASSWORD)
    assert _stored_parameters(stored) == argon2.Parameters(
        type=argon2.Type.ID,
        version=19,
        salt_len=16,
        hash_len=16,
        time_cost=2,
        memory_cost=16,
        parallelism=2,
    )


def test_the_default_parameters_hash_and_verify():
    hasher = PasswordHasher()
    assert hasher.parameters == RFC_9106_LOW_MEMORY
    stored = hasher.hash(PASSWORD)
    assert "$m=65536,t=3,p=4$" in stored
    assert hasher.verify(password=PASSWORD, password_hash=stored) == Verification(
        ok=True, needs_rehash=False
    )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        pytest.param(RFC_9106_LOW_MEMORY, argon2.profiles.RFC_9106_LOW_MEMORY, id="rfc-9106-low"),
        pytest.param(CHEAP_FOR_TESTS, argon2.profiles.CHEAPEST, id="cheapest"),
    ],
)
def test_profiles_match_argon2_cffi(ours, theirs):
    assert (ours.time_cost, ours.memory_cost, ours.parallelism) == (
        theirs.time_cost,
        theirs.memory_cost,
        theirs.parallelism,
    )
    assert (ours.hash_len, ours.salt_len) == (theirs.hash_len, theirs.salt_len)


# Normalisation: the same password always verifies, nothing is truncated


@pytest.mark.parametrize(
    ("typed_at_sign_up", "typed_at_sign_in"),
    [
        pytest.param(
            "Cr\u00e8me br\u00fbl\u00e9e, s'il vous pla\u00eet",
            "Cre\u0300me bru\u0302le\u0301e, s'il vous plai\u0302t",
            id="composed-then-decomposed",
        ),
        pytest.param(
            "Cre\u0300me bru\u0302le\u0301e, s'il vous plai\u0302t",
            "Cr\u00e8me br\u00fbl\u00e9e, s'il vous pla\u00eet",
            id="decomposed-then-composed",
        ),
        pytest.param(
            "\u212bngstr\u00f6m units are tiny",
            "\u00c5ngstro\u0308m units are tiny",
            id="angstrom-sign",
        ),
    ],
)
def test_equivalent_spellings_verify(hasher, typed_at_sign_up, typed_at_sign_in):
    assert typed_at_sign_up != typed_at_sign_in
    stored = hasher.hash(typed_at_sign_up)
    assert hasher.verify(password=typed_at_sign_in, password_hash=stored).ok


def test_fullwidth_letters_are_their_ascii_letters(hasher):
    stored = hasher.hash("Anns fullwidth passphrase")
    fullwidth = "\uff21\uff4e\uff4e\uff53 fullwidth passphrase"
    assert hasher.verify(password=fullwidth, password_hash=stored).ok


def test_a_long_password_is_not_truncated(hasher):
    password = "a" * 99 + "b" + "c" * 100  # 200 characters
    policy = PasswordPolicy()
    assert policy.check(password) == password
    stored = hasher.hash(policy.check(password))
    assert hasher.verify(password=password, password_hash=stored).ok
    differs_at_100 = "a" * 99 + "X" + "c" * 100
    assert not hasher.verify(password=differs_at_100, password_hash=stored).ok
    assert not hasher.verify(password=password[:-1], password_hash=stored).ok


def test_normalize_password_is_nfkc_and_idempotent():
    assert normalize_password("\ufb01sh") == "fish"
    once = normalize_password("Cre\u0300me \u2460")
    assert once == "Cr\u00e8me 1"
    assert normalize_password(once) == once


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"bytes password", id="bytes"),
        pytest.param(None, id="none"),
        pytest.param("lone \ud800 surrogate", id="lone-surrogate"),
        pytest.param("x" * 1025, id="over-1024-characters"),
        pytest.param("a" + "\u0301" * 600 + "\u0316" * 600, id="over-long-combining-marks"),
    ],
)
def test_a_password_that_is_not_text_is_invalid_input(hasher, bad):
    stored = hasher.hash(PASSWORD)
    for attempt in (
        lambda: hasher.hash(bad),
        lambda: hasher.verify(password=bad, password_hash=stored),
        lambda: hasher.verify_dummy(bad),
    ):
        with pytest.raises(InvalidInput) as caught:
            attempt()
        assert caught.value.code == "invalid_input"
        assert caught.value.field == "password"


# Rehash


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"time_cost": 2}, id="time_cost"),
        pytest.param({"memory_cost": 16}, id="memory_cost"),
        pytest.param({"parallelism": 2, "memory_cost": 16}, id="parallelism"),
        pytest.param({"hash_len": 32}, id="hash_len"),
        pytest.param({"salt_len": 16}, id="salt_len"),
    ],
)
def test_rehash_needed_when_the_parameters_changed(changed):
    stored = PasswordHasher(CHEAP_FOR_TESTS).hash(PASSWORD)
    fields = {
        "time_cost": 1,
        "memory_cost": 8,
        "parallelism": 1,
        "hash_len": 4,
        "salt_len": 8,
    } | changed
    newer = PasswordHasher(Argon2Parameters(**fields))
    assert newer.verify(password=PASSWORD, password_hash=stored) == Verification(
        ok=True, needs_rehash=True
    )
    rehashed = newer.hash(PASSWORD)
    assert newer.verify(password=PASSWORD, password_hash=rehashed) == Verification(
        ok=True, needs_rehash=False
    )


def test_no_rehash_with_equal_parameters(hasher):
    stored = hasher.hash(PASSWORD)
    same = PasswordHasher(
        Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1, hash_len=4, salt_len=8)
    )
    assert same.verify(password=PASSWORD, password_hash=stored).needs_rehash is False


def test_an_argon2_1_0_hash_verifies_and_needs_rehash(hasher):
    stored = argon2.low_level.hash_secret(
        PASSWORD.encode(),
        b"saltsalt",
        time_cost=1,
        memory_cost=8,
        parallelism=1,
        hash_len=4,
        type=argon2.Type.ID,
        version=16,
    ).decode()
    assert stored.startswith("$argon2id$v=16$")
    assert hasher.verify(password=PASSWORD, password_hash=stored) == Verification(
        ok=True, needs_rehash=True
    )
    assert not hasher.verify(password="wrong", password_hash=stored)


def test_a_wrong_password_never_asks_for_a_rehash(hasher):
    stored = hasher.hash(PASSWORD)
    newer = PasswordHasher(Argon2Parameters(time_cost=2, memory_cost=8, parallelism=1))
    assert newer.verify(password="wrong", password_hash=stored) == Verification(ok=False)


# Unsupported hashes


def _argon2(kind):
    other = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=kind)
    return other.hash(PASSWORD)


_ARGON2ID = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", id="bcrypt"),
        pytest.param(
            "pbkdf2_sha256$870000$c2FsdHNhbHQ$"
            + hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), b"salt", 1).hex(),
            id="pbkdf2_sha256",
        ),
        pytest.param(_argon2(argon2.Type.I), id="argon2i"),
        pytest.param(_argon2(argon2.Type.D), id="argon2d"),
        pytest.param("", id="empty"),
        pytest.param("not a hash at all", id="garbage"),
        pytest.param("$argon2id$", id="argon2id-prefix-only"),
        pytest.param(_ARGON2ID.replace("m=8", "m=eight"), id="argon2id-bad-parameters"),
        pytest.param(_ARGON2ID.replace("aGFzaA", "!!!!"), id="argon2id-bad-base64"),
        pytest.param(_ARGON2ID.replace("$v=19", "$v=99"), id="argon2id-unknown-version"),
    ],
)
def test_unsupported_hashes_are_refused(hasher, stored):
    with pytest.raises(UnsupportedPasswordHash) as caught:
        hasher.verify(password=PASSWORD, password_hash=stored)
    assert caught.value.code == "unsupported_password_hash"
    assert caught.value.detail
    assert not stored or stored not in caught.value.detail  # never echoed
    cause = caught.value.__cause__
    assert cause is None or isinstance(cause, (Argon2Error, InvalidHashError))


def test_a_hash_that_is_not_a_string_is_refused(hasher):
    with pytest.raises(UnsupportedPasswordHash):
        hasher.verify(password=PASSWORD, password_hash=None)


# The dummy verify


def test_verify_dummy_fails_like_a_wrong_password(hasher):
    stored = hasher.hash(PASSWORD)
    wrong = hasher.verify(password="not the password", password_hash=stored)
    assert hasher.verify_dummy(PASSWORD) == wrong == Verification(ok=False)
    assert not hasher.verify_dummy("")


def test_the_dummy_hash_has_the_configured_parameters():
    parameters = Argon2Parameters(time_cost=2, memory_cost=32, parallelism=2, hash_len=16)
    hasher = PasswordHasher(parameters)
    dummy = hasher._dummy_hash  # made at construction, not on first use
    assert _stored_parameters(dummy) == _stored_parameters(hasher.hash(PASSWORD))
    hasher.verify_dummy(PASSWORD)
    assert hasher._dummy_hash is dummy


@pytest.fixture
def argon2_calls(monkeypatch):
    """Record argon2-cffi's hash and verify calls; the real methods still run."""
    calls = []
    real_hash, real_verify = argon2.PasswordHasher.hash, argon2.PasswordHasher.verify

    def spying_hash(self, password, *args, **kwargs):
        calls.append("hash")
        return real_hash(self, password, *args, **kwargs)

    def spying_verify(self, password_hash, password):
        calls.append("verify")
        return real_verify(self, password_hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", spying_hash)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", spying_verify)
    return calls


def test_building_a_hasher_makes_the_dummy_and_verify_dummy_only_verifies(argon2_calls):
    hasher = PasswordHasher(CHEAP_FOR_TESTS)
    assert argon2_calls == ["hash"]
    argon2_calls.clear()
    for _ in range(3):
        assert hasher.verify_dummy(PASSWORD) == Verification(ok=False)
    assert argon2_calls == ["verify"] * 3


def test_hashers_do_not_share_a_dummy():
    first, second = PasswordHasher(CHEAP_FOR_TESTS), PasswordHasher(CHEAP_FOR_TESTS)
    first.verify_dummy(PASSWORD)
    second.verify_dummy(PASSWORD)
    assert first._dummy_hash != second._dummy_hash


# Parameters


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        pytest.param({"time_cost": 0}, "time_cost", id="time-cost-zero"),
        pytest.param({"time_cost": 101}, "time_cost", id="time-cost-huge"),
        pytest.param({"memory_cost": 7}, "memory_cost", id="memory-under-8-kib"),
        pytest.param({"memory_cost": 4 * 1024 * 1024 + 1}, "memory_cost", id="memory-over-4-gib"),
        pytest.param({"parallelism": 4}, "per lane", id="memory-under-8-kib-per-lane"),
        pytest.param({"parallelism": 0}, "parallelism", id="parallelism-zero"),
        pytest.param({"hash_len": 3}, "hash_len", id="hash-len-3"),
        pytest.param({"salt_len": 7}, "salt_len", id="salt-len-7"),
        pytest.param({"time_cost": True}, "int", id="bool"),
        pytest.param({"memory_cost": 8.0}, "int", id="float"),
        pytest.param({"memory_cost": "64MiB"}, "int", id="str"),
    ],
)
def test_absurd_parameters_are_refused(fields, mentions):
    values = {"time_cost": 1, "memory_cost": 8, "parallelism": 1, "hash_len": 4, "salt_len": 8}
    with pytest.raises(ConfigurationError) as caught:
        Argon2Parameters(**(values | fields))
    assert caught.value.code == "configuration_error"
    assert mentions in caught.value.detail


def test_the_hasher_wants_parameters():
    with pytest.raises(ConfigurationError):
        PasswordHasher(argon2.profiles.RFC_9106_LOW_MEMORY)


# The policy


EMAIL = "maximilian.mustermann@example.com"


@pytest.mark.parametrize(
    ("password", "email", "code"),
    [
        pytest.param("fourteen chars", None, "password_too_short", id="too-short"),
        pytest.param("e\u0301" * 14, None, "password_too_short", id="too-short-after-nfkc"),
        pytest.param("x" * 257, None, "password_too_long", id="too-long"),
        pytest.param("QwertyuiopASDFGHJKL", None, "password_too_common", id="common"),
        pytest.param(
            "\uff51\uff57\uff45\uff52\uff54\uff59\uff55\uff49\uff4f\uff50asdfghjkl",
            None,
            "password_too_common",
            id="common-fullwidth",
        ),
        pytest.param(EMAIL, EMAIL, "password_matches_email", id="email"),
        pytest.param(EMAIL.upper(), EMAIL, "password_matches_email", id="email-different-case"),
        pytest.param(f"  {EMAIL} ", EMAIL, "password_matches_email", id="email-with-spaces"),
        pytest.param(EMAIL, f" {EMAIL.title()} ", "password_matches_email", id="email-as-typed"),
        pytest.param("Maximilian.Mustermann", EMAIL, "password_matches_email", id="local-part"),
        pytest.param(
            "ann.lee.smith@b\u00fccher.example",
            "ann.lee.smith@xn--bcher-kva.example",
            "password_matches_email",
            id="email-unicode-domain",
        ),
        pytest.param(None, None, "password_rejected", id="not-a-string"),
        pytest.param(b"a bytes password", None, "password_rejected", id="bytes"),
        pytest.param("lone surrogate \ud800 here", None, "password_rejected", id="surrogate"),
        pytest.param("x" * 1025, None, "password_too_long", id="over-the-input-bound"),
        pytest.param(
            "a" + "\u0301" * 100_000 + "\u0316" * 100_000,
            None,
            "password_too_long",
            id="pathological-nfkc-input",
        ),
        pytest.param("\ud800" * 2000, None, "password_too_long", id="over-long-and-surrogates"),
    ],
)
def test_policy_violations(password, email, code):
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy().check(password, email=email)
    assert caught.value.code == code
    assert caught.value.field == "password"


@pytest.mark.parametrize(
    ("password", "email"),
    [
        pytest.param("exactly fifteen", None, id="exactly-min"),
        pytest.param(
            "".join(hashlib.sha256(bytes([index])).hexdigest() for index in range(4)),
            None,
            id="exactly-max",
        ),
        pytest.param(
            "\U0001f511\U0001f408\U0001f335\U0001f6b2\U0001f3bb\u2615\U0001f344\U0001f308"
            "\U0001f994\U0001f3b2\U0001f9ed\U0001fa81\U0001f419\U0001f6f6\U0001f349",
            None,
            id="emoji",
        ),
        pytest.param(
            "\u65e5\u672c\u8a9e\u306e\u30d1\u30b9\u30ef\u30fc\u30c9\u3082\u4f7f\u3048"
            "\u307e\u3059\u3088",
            None,
            id="japanese",
        ),
        pytest.param("ann likes long passphrases", "ann@example.com", id="contains-local"),
        pytest.param("Tr0ub4dor&3 but longer", "ann@example.com", id="composition-free"),
        # An email the app passes as typed is bounded before NFKC, like any input:
        # one that is no usable address matches no password.
        pytest.param(
            "correct horse battery staple",
            "a" + "\u0301" * 500_000 + "\u0316" * 500_000 + "@example.com",
            id="email-nfkc-bomb",
        ),
        pytest.param("correct horse battery staple", "ann\ud800@example.com", id="email-surrogate"),
    ],
)
def test_policy_accepts(password, email):
    assert PasswordPolicy().check(password, email=email) == normalize_password(password)


def test_an_over_long_password_names_the_policy_maximum():
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy(max_length=100).check("x" * 5000)
    assert caught.value.code == "password_too_long"
    assert caught.value.max_length == 100
    assert str(caught.value) == "Your password must be at most 100 characters long."


def test_the_largest_maximum_is_the_input_bound():
    policy = PasswordPolicy(max_length=1024)
    longest = "".join(hashlib.sha256(bytes([index])).hexdigest() for index in range(16))
    assert len(longest) == 1024
    assert policy.check(longest) == longest
    with pytest.raises(PasswordRejected) as caught:
        policy.check(longest + "!")
    assert caught.value.code == "password_too_long"


# Too simple: (password, which rule `detail` names). Checked with the built-in list off,
# so each row shows the rule itself (several are on the list too).
TOO_SIMPLE = [
    pytest.param(" " * 15, "white space", id="fifteen-spaces"),
    pytest.param("\t \n\u2003\u00a0" * 4, "white space", id="mixed-white-space"),
    pytest.param("\u200b" * 8 + "\u200d" * 8, "white space", id="zero-width-characters"),
    pytest.param("a" * 20, "one character", id="one-character"),
    pytest.param("AaAaAaAaAaAaAaAa", "one character", id="one-character-in-two-cases"),
    pytest.param("aaaaaaaaaab1234", "one character", id="mostly-one-character"),
    pytest.param("abcabcabcabcabc", "3 characters repeated", id="short-run-repeated"),
    pytest.param("wxyzwxyzwxyzwxyzw", "4 characters repeated", id="repeated-last-copy-cut-short"),
    pytest.param("horse horse horse ", "6 characters repeated", id="word-typed-three-times"),
    pytest.param("abcdefghijklmno", "sequences", id="alphabet"),
    pytest.param("onmlkjihgfedcba", "sequences", id="alphabet-backwards"),
    pytest.param("xyzabcdefghijkl", "sequences", id="alphabet-wrapping"),
    pytest.param("1234567890123456", "sequences", id="digits-wrapping"),
    pytest.param("9876543210987654", "sequences", id="digits-backwards"),
    pytest.param("qwertyuiopasdfg", "sequences", id="qwerty-rows-read-on"),
    pytest.param("gfdsapoiuytrewq", "sequences", id="qwerty-rows-backwards"),
    pytest.param("qwertzuiopasdfgh", "sequences", id="qwertz"),
    pytest.param("azertyuiopqsdfgh", "sequences", id="azerty"),
    pytest.param("1qaz2wsx3edc4rfv", "sequences", id="keyboard-columns"),
    pytest.param("qazwsxedcrfvtgb", "sequences", id="keyboard-columns-without-digits"),
    pytest.param("1q2w3e4r5t6y7u8i", "sequences", id="digit-and-letter-rows-in-turn"),
    pytest.param("!@#$%^&*()_+!@#$", "sequences", id="shifted-digit-row"),
    pytest.param("abcd1234qwerasdf", "sequences", id="several-runs"),
    pytest.param("abcdefgh my dog", "sequences", id="runs-over-half"),
    pytest.param(
        "\uff21\uff22\uff23\uff24\uff25\uff26\uff27\uff28\uff29\uff2a\uff2b\uff2c\uff2d"
        "\uff2e\uff2f",
        "sequences",
        id="fullwidth-alphabet",
    ),
]

# Real passphrases, and patterns just under a threshold, pass.
NOT_TOO_SIMPLE = [
    pytest.param("correct horse battery staple", id="xkcd-passphrase"),
    pytest.param("Tr0ub4dor&3 plus words", id="xkcd-password-plus-words"),
    pytest.param("Mississippi river boats", id="many-repeated-letters"),
    pytest.param("1000000 dollars please", id="many-zeros"),
    pytest.param("deer opposite pastry", id="short-runs-in-words"),
    pytest.param("qwerty lover 2024!", id="one-keyboard-run"),
    pytest.param("abcdefg my doggy", id="runs-under-half"),
    pytest.param("aaaaaaa bcdefghi", id="one-character-under-half"),
    pytest.param("correct horse correct horse", id="a-phrase-typed-twice"),
    pytest.param("cr\u00e8me br\u00fbl\u00e9e, s'il vous pla\u00eet", id="accents"),
]


@pytest.mark.parametrize(("password", "rule"), TOO_SIMPLE)
def test_too_simple_passwords_are_refused(password, rule):
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy(builtin_blocklist=False).check(password)
    assert caught.value.code == "password_too_simple"
    assert rule in caught.value.detail
    assert password not in caught.value.detail
    assert str(caught.value) == (
        "This password is too easy to guess. Please avoid repeated characters and "
        "keyboard or alphabet sequences."
    )


@pytest.mark.parametrize("password", NOT_TOO_SIMPLE)
def test_real_passphrases_are_not_too_simple(password):
    assert PasswordPolicy().check(password) == normalize_password(password)


@pytest.mark.parametrize(
    "password",
    ["qwertyuiopasdfghjkl", "aaaaaaaaaaaaaaa", "passwordpassword"],
)
def test_a_listed_pattern_is_reported_as_common(password):
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy().check(password)
    assert caught.value.code == "password_too_common"


def test_check_returns_the_normalised_password():
    assert PasswordPolicy().check("\ufb01ne passphrase, f\u0131ne") == "fine passphrase, f\u0131ne"


def test_min_length_down_to_8():
    policy = PasswordPolicy(min_length=8)
    assert policy.check("8 chars!") == "8 chars!"
    with pytest.raises(PasswordRejected) as caught:
        policy.check("7 chars")
    assert caught.value.code == "password_too_short"
    assert caught.value.min_length == 8


def test_the_builtin_list_can_be_turned_off():
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy(min_length=8).check("Password1")
    assert caught.value.code == "password_too_common"
    assert PasswordPolicy(min_length=8, builtin_blocklist=False).check("Password1") == "Password1"


def test_the_blocklist_hook_sees_the_normalised_password():
    seen = []

    def breached(password):
        seen.append(password)
        return password == "Breached passphrase 1"

    policy = PasswordPolicy(blocklist=breached)
    with pytest.raises(PasswordRejected) as caught:
        policy.check("\uff22reached passphrase 1")
    assert caught.value.code == "password_too_common"
    assert seen == ["Breached passphrase 1"]
    assert policy.check("a passphrase nobody has") == "a passphrase nobody has"


def test_the_blocklist_hook_runs_last():
    calls = []
    policy = PasswordPolicy(blocklist=lambda password: calls.append(password) or False)
    for refused in ("short", "qwertyuiopasdfghjkl"):
        with pytest.raises(PasswordRejected):
            policy.check(refused)
    assert calls == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"min_length": 7}, id="min-length-7"),
        pytest.param({"max_length": 63}, id="max-length-63"),
        pytest.param({"max_length": 1025}, id="max-length-over-the-input-bound"),
        pytest.param({"min_length": 100, "max_length": 99}, id="min-over-max"),
        pytest.param({"min_length": True}, id="min-length-bool"),
        pytest.param({"max_length": "256"}, id="max-length-str"),
        pytest.param({"blocklist": {"password"}}, id="blocklist-not-callable"),
        pytest.param({"builtin_blocklist": "yes"}, id="builtin-blocklist-str"),
    ],
)
def test_policy_configuration_refused(fields):
    with pytest.raises(ConfigurationError) as caught:
        PasswordPolicy(**fields)
    assert caught.value.code == "configuration_error"
    assert caught.value.detail


def _shipped_list():
    return (
        importlib.resources.files("bpart_auth")
        .joinpath("_common_passwords.txt")
        .read_text(encoding="utf-8")
    )


def test_the_builtin_list_is_big_folded_and_long_enough_to_matter():
    entries = [
        line
        for line in _shipped_list().splitlines()
        if line and line != "#" and not line.startswith("# ")
    ]
    assert len(entries) >= 10_000
    assert len(set(entries)) == len(entries)
    assert all(entry == unicodedata.normalize("NFKC", entry).casefold() for entry in entries)
    assert all(entry == entry.strip() for entry in entries)
    assert all(len(entry) >= 8 for entry in entries)  # shorter ones are too short anyway
    assert common_passwords() == frozenset(entries)


def test_the_builtin_list_names_its_sources_and_licences():
    header = "\n".join(line for line in _shipped_list().splitlines()[:80] if line.startswith("#"))
    for needed in (
        "Royce Williams",
        "Django",
        "BSD 3-Clause",
        "Copyright (c) Django Software Foundation and individual contributors.",
        "zxcvbn",
        "MIT License",
        "Copyright (c) 2012-2016 Dan Wheeler and Dropbox, Inc.",
        "Copyright (c) 2016 Daniel Wolf",
    ):
        assert needed in header


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("password1", id="from-our-list"),
        pytest.param("#1stunna", id="starts-with-a-hash"),
        pytest.param("Friend Of Emily", id="with-spaces-and-capitals"),
        pytest.param("\uff53\uff55\uff4e\uff53\uff48\uff49\uff4e\uff45", id="fullwidth"),
        pytest.param("  sunshine1 ", id="surrounding-spaces"),
        pytest.param("SunshineSunshine", id="a-listed-one-twice"),
        pytest.param("Pakistan", id="from-django"),
        pytest.param("freepass", id="from-zxcvbn"),
    ],
)
def test_the_builtin_list_refuses(password):
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy(min_length=8).check(password)
    assert caught.value.code == "password_too_common"
