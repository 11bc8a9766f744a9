"""Passwords: argon2id hashing, the password policy, and enumeration-safe verification.

A new password goes through `PasswordPolicy.check` (which returns the normalised
password), then `PasswordHasher.hash`; the hash is what the store keeps. At sign-in,
`PasswordHasher.verify` checks a password against the stored hash and says whether the
hash should be replaced because the configured parameters changed. For an unknown
email, `PasswordHasher.verify_dummy` spends the same time, so the answer's timing does
not reveal which emails have accounts.

Passwords are normalised with Unicode NFKC (`normalize_password`) before they are
hashed, verified or measured, as NIST SP 800-63B-4 (section 3.1.1.2) recommends: a
password typed with a precomposed "é" on one keyboard and "e" + combining accent on
another is the same password. Nothing is ever truncated.

Examples:
    >>> policy = PasswordPolicy()
    >>> hasher = PasswordHasher(parameters=CHEAP_FOR_TESTS)
    >>> stored = hasher.hash(policy.check("correct horse battery staple"))
    >>> hasher.verify(password="correct horse battery staple", password_hash=stored)
    Verification(ok=True, needs_rehash=False)
"""

from __future__ import annotations

import contextlib
import re
import secrets
import unicodedata
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final, TypeVar

import argon2
import idna
from argon2.exceptions import (
    HashingError,
    InvalidHashError,
    VerificationError,
    VerifyMismatchError,
)

from bpart_auth._input import MAX_EMAIL_INPUT, MAX_PASSWORD_INPUT, text_problem
from bpart_auth._pwned import PwnedPasswords
from bpart_auth._weak_passwords import is_common, too_simple
from bpart_auth.errors import (
    AuthError,
    ConfigurationError,
    InvalidInput,
    PasswordMatchesEmail,
    PasswordRejected,
    PasswordTooCommon,
    PasswordTooLong,
    PasswordTooShort,
    PasswordTooSimple,
    UnsupportedPasswordHash,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Executor

__all__ = [
    "CHEAP_FOR_TESTS",
    "RFC_9106_LOW_MEMORY",
    "Argon2Parameters",
    "PasswordHasher",
    "PasswordPolicy",
    "Verification",
    "normalize_password",
]

# Bounds on Argon2Parameters. The lower ones are libargon2's own (ARGON2_MIN_*; memory
# must be at least 8 KiB per lane); the upper ones only catch a typo (a cost given in
# bytes instead of KiB, an extra zero) before it turns every sign-in into a denial of
# service.
_TIME_COST = (1, 100)
_MEMORY_COST = (8, 4 * 1024 * 1024)  # KiB: 8 KiB .. 4 GiB (RFC 9106's first choice is 2)
_MEMORY_PER_LANE = 8
_PARALLELISM = (1, 255)
_HASH_LEN = (4, 1024)
_SALT_LEN = (8, 1024)

_ARGON2ID_PREFIX: Final = "$argon2id$"
_ARGON2_VERSION: Final = 19  # 0x13, the only version RFC 9106 specifies
# 0x10 (Argon2 1.0) hashes still verify, and then need a rehash; libargon2 would
# quietly treat any other number as a mismatch instead of an unusable hash.
_VERIFIABLE_VERSIONS: Final = frozenset({16, _ARGON2_VERSION})

# NIST SP 800-63B-4, section 3.1.1.2: at least 15 characters for a single-factor
# password, at least 8 when it is one factor of several; accept at least 64.
_NIST_MIN_LENGTH: Final = 8
_NIST_MAX_LENGTH_FLOOR: Final = 64


def _check_range(name: str, value: object, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(detail=f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigurationError(detail=f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Argon2Parameters:
    """The cost of one argon2id hash; a named set of them is a profile.

    Changing the parameters of a running deployment is safe: existing hashes still
    verify (argon2 reads their parameters from the hash), and `PasswordHasher.verify`
    reports `needs_rehash` so the caller can store a new hash at the next sign-in.

    Attributes:
        time_cost: Number of passes over memory (argon2 `t`).
        memory_cost: Memory used, in KiB (argon2 `m`); at least 8 per lane.
        parallelism: Number of lanes (argon2 `p`); it changes the hash value.
        hash_len: Length of the raw hash, in bytes.
        salt_len: Length of the random salt, in bytes.

    Raises:
        ConfigurationError: A value is not an int or is outside what libargon2
            accepts or what is sane (for example a memory cost over 4 GiB); `detail`
            says which.

    Examples:
        >>> RFC_9106_LOW_MEMORY.memory_cost // 1024  # MiB
        64
        >>> try:
        ...     Argon2Parameters(time_cost=0, memory_cost=65536, parallelism=4)
        ... except ConfigurationError as error:
        ...     error.detail
        'time_cost must be between 1 and 100, got 0'
    """

    time_cost: int
    memory_cost: int
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16

    def __post_init__(self) -> None:
        _check_range("time_cost", self.time_cost, _TIME_COST)
        _check_range("memory_cost", self.memory_cost, _MEMORY_COST)
        _check_range("parallelism", self.parallelism, _PARALLELISM)
        _check_range("hash_len", self.hash_len, _HASH_LEN)
        _check_range("salt_len", self.salt_len, _SALT_LEN)
        if self.memory_cost < _MEMORY_PER_LANE * self.parallelism:
            raise ConfigurationError(
                detail=f"memory_cost must be at least {_MEMORY_PER_LANE} KiB per lane "
                f"({_MEMORY_PER_LANE * self.parallelism} for parallelism={self.parallelism}), "
                f"got {self.memory_cost}"
            )


def _argon2id(parameters: Argon2Parameters) -> argon2.Parameters:
    return argon2.Parameters(
        type=argon2.Type.ID,
        version=_ARGON2_VERSION,
        salt_len=parameters.salt_len,
        hash_len=parameters.hash_len,
        time_cost=parameters.time_cost,
        memory_cost=parameters.memory_cost,
        parallelism=parameters.parallelism,
    )


RFC_9106_LOW_MEMORY: Final = Argon2Parameters(
    time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16
)
"""RFC 9106's second recommended option (t=3, 64 MiB, p=4), the default.

The same values as `argon2.profiles.RFC_9106_LOW_MEMORY` in argon2-cffi.
"""

CHEAP_FOR_TESTS: Final = Argon2Parameters(
    time_cost=1, memory_cost=8, parallelism=1, hash_len=4, salt_len=8
)
"""The cheapest argon2id parameters libargon2 accepts. For tests only, never production.

The same values as `argon2.profiles.CHEAPEST` in argon2-cffi: a hash takes
microseconds, so it protects nothing.
"""


def normalize_password(password: str) -> str:
    r"""Return the one form of a password that is measured, hashed and verified.

    Applies Unicode NFKC (NIST SP 800-63B-4, section 3.1.1.2), so the same password
    typed on different keyboards or systems verifies. Nothing is stripped or
    truncated; NFKC is idempotent, so normalising twice changes nothing.

    The raw value is bounded first (`MAX_PASSWORD_INPUT`, 1024 code points): NFKC of
    a crafted string costs time quadratic in its length, so nothing longer is ever
    normalised.

    Args:
        password: The password as typed.

    Returns:
        The NFKC form of `password`.

    Raises:
        InvalidInput: `password` is not a `str`, is longer than 1024 code points as
            typed, or holds a lone surrogate (which no keyboard produces and UTF-8
            cannot encode); `field` is `"password"`.

    Examples:
        >>> normalize_password("cafe\u0301") == normalize_password("caf\u00e9") == "caf\u00e9"
        True
        >>> normalize_password("\ufb01sh")  # the "fi" ligature becomes two letters
        'fish'
    """
    problem = text_problem(password, limit=MAX_PASSWORD_INPUT)
    if problem is not None:
        raise InvalidInput(field="password", detail=problem)
    # NFKC keeps a string encodable: it never makes a lone surrogate.
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """The outcome of checking a password against a stored hash.

    It is truthy exactly when the password matched, so `if hasher.verify(...):`
    reads (and behaves) as expected.

    Attributes:
        ok: True when the password matches the hash.
        needs_rehash: True when the password matched and the hash was made with
            other parameters than the hasher's: hash the password again and store
            the new hash. Always False when `ok` is False.

    Examples:
        >>> bool(Verification(ok=False))
        False
    """

    ok: bool
    needs_rehash: bool = False

    def __bool__(self) -> bool:
        return self.ok


_FAILED: Final = Verification(ok=False)


def _scheme(password_hash: str) -> str:
    """Name the scheme of an unsupported hash for `detail`, never echoing the hash.

    A plain-text password left in a legacy column must not reach the logs, so only
    an identifier-like prefix before a `$` is named.
    """
    head, dollar, _rest = password_hash.lstrip("$").partition("$")
    if dollar and re.fullmatch(r"[A-Za-z0-9_-]{1,20}", head):
        return repr(head)
    return "unrecognised"


_R = TypeVar("_R")
_ARGON2_THREADS: ContextVar[Executor | None] = ContextVar("bpart_auth_argon2_threads", default=None)


@contextlib.contextmanager
def argon2_runs_on(threads: Executor) -> Iterator[None]:
    """While this is open, this context's argon2 computations run on `threads`.

    The calling thread waits for each one; everything around them (the store, the
    events) stays on the calling thread. `AsyncAuth` uses it to run argon2 on
    threads of a lower CPU priority. Internal: not part of the public API.
    """
    token = _ARGON2_THREADS.set(threads)
    try:
        yield
    finally:
        _ARGON2_THREADS.reset(token)


def _argon2(computation: Callable[[], _R]) -> _R:
    """Run one argon2 computation here, or on the threads `argon2_runs_on` gave."""
    threads = _ARGON2_THREADS.get()
    if threads is None:
        return computation()
    return threads.submit(computation).result()


class PasswordHasher:
    """Hashes and verifies passwords with argon2id (via argon2-cffi).

    Only argon2id hashes are accepted: bcrypt, PBKDF2, argon2i, argon2d and anything
    else raise `UnsupportedPasswordHash`, which tells the user to reset their
    password. Errors of argon2-cffi never escape; they are the `__cause__` of ours.

    Building one costs one hash: the dummy hash that `verify_dummy` checks against
    is made here, so no sign-in ever pays for it.

    Args:
        parameters: The argon2id cost of new hashes. Defaults to
            `RFC_9106_LOW_MEMORY`; tests use `CHEAP_FOR_TESTS`.

    Examples:
        >>> hasher = PasswordHasher(parameters=CHEAP_FOR_TESTS)
        >>> stored = hasher.hash("correct horse battery staple")
        >>> stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
        True
        >>> bool(hasher.verify(password="correct horse battery staple", password_hash=stored))
        True
        >>> bool(hasher.verify(password="Correct horse battery staple", password_hash=stored))
        False
    """

    __slots__ = ("_dummy_hash", "_hasher", "_parameters")

    def __init__(self, parameters: Argon2Parameters = RFC_9106_LOW_MEMORY) -> None:
        if not isinstance(parameters, Argon2Parameters):
            raise ConfigurationError(
                detail=f"parameters must be Argon2Parameters, got {type(parameters).__name__}"
            )
        self._parameters = parameters
        self._hasher = argon2.PasswordHasher.from_parameters(_argon2id(parameters))
        # Made now, not on first use: otherwise the first unknown-email sign-in of a
        # process would also pay for a hash and take twice as long as a wrong password.
        self._dummy_hash = self.hash(secrets.token_urlsafe(32))

    @property
    def parameters(self) -> Argon2Parameters:
        """The argon2id parameters of new hashes."""
        return self._parameters

    def __repr__(self) -> str:
        return f"PasswordHasher(parameters={self._parameters!r})"

    def hash(self, password: str) -> str:
        """Hash a password (after `normalize_password`) with a fresh random salt.

        Check a new password with `PasswordPolicy.check` first; `hash` accepts any
        string.

        Args:
            password: The password.

        Returns:
            The encoded argon2id hash (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).

        Raises:
            InvalidInput: `password` is not a string, is over-long (more than
                1024 characters as typed) or holds a lone surrogate.
            AuthError: argon2 failed (for example, it could not allocate the memory).

        Examples:
            >>> hasher = PasswordHasher(parameters=CHEAP_FOR_TESTS)
            >>> hasher.hash("same") == hasher.hash("same")  # a new salt every time
            False
        """
        normalized = normalize_password(password)
        try:
            return _argon2(partial(self._hasher.hash, normalized))
        except HashingError as exc:
            raise AuthError(detail=f"argon2 could not hash: {exc}") from exc

    def verify(self, *, password: str, password_hash: str) -> Verification:
        """Check a password against a stored hash.

        The hash's own parameters are used, so hashes made under older parameters
        still verify; `needs_rehash` then says to store `hash(password)` instead.

        Args:
            password: The password as typed (it is normalised here).
            password_hash: The stored argon2id hash.

        Returns:
            `Verification(ok=True, needs_rehash=...)` on a match, otherwise
            `Verification(ok=False)`.

        Raises:
            UnsupportedPasswordHash: The hash is not a well-formed argon2id hash.
            InvalidInput: `password` is not a string, is over-long (more than
                1024 characters as typed) or holds a lone surrogate.

        Examples:
            >>> old = PasswordHasher(parameters=CHEAP_FOR_TESTS).hash("s3cret s3cret s3cret")
            >>> stronger = Argon2Parameters(time_cost=2, memory_cost=8, parallelism=1)
            >>> PasswordHasher(parameters=stronger).verify(
            ...     password="s3cret s3cret s3cret", password_hash=old
            ... )
            Verification(ok=True, needs_rehash=True)
        """
        if self._matches(normalize_password(password), password_hash):
            return Verification(
                ok=True, needs_rehash=self._hasher.check_needs_rehash(password_hash)
            )
        return _FAILED

    def verify_dummy(self, password: str) -> Verification:
        """Spend the time of one failed `verify`, for a sign-in with an unknown email.

        Runs exactly one argon2id verification, with this hasher's parameters,
        against a hash of a random secret made when the hasher was built (so never
        a hash here). The result is always a failure, whatever the password.

        The timing matches `verify` for hashes made with the current parameters; a
        stored hash with other parameters takes their time until it is rehashed.

        Args:
            password: The password as typed.

        Returns:
            `Verification(ok=False)`, always.

        Raises:
            InvalidInput: `password` is not a string, is over-long or holds a lone
                surrogate (as `verify` would).

        Examples:
            >>> PasswordHasher(parameters=CHEAP_FOR_TESTS).verify_dummy("anything at all")
            Verification(ok=False, needs_rehash=False)
        """
        self._matches(normalize_password(password), self._dummy_hash)
        return _FAILED

    def _matches(self, normalized: str, password_hash: str) -> bool:
        """Run one argon2id verification: the single path of `verify` and `verify_dummy`."""
        if not isinstance(password_hash, str):
            raise UnsupportedPasswordHash(
                detail=f"expected str, got {type(password_hash).__name__}"
            )
        if not password_hash.startswith(_ARGON2ID_PREFIX):
            raise UnsupportedPasswordHash(
                detail=f"not an argon2id hash (scheme {_scheme(password_hash)})"
            )
        try:
            version = argon2.extract_parameters(password_hash).version
        except InvalidHashError as exc:
            raise UnsupportedPasswordHash(detail="malformed argon2id hash") from exc
        if version not in _VERIFIABLE_VERSIONS:
            raise UnsupportedPasswordHash(detail=f"argon2id version {version} is unknown")
        try:
            return _argon2(partial(self._hasher.verify, password_hash, normalized))
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError) as exc:
            raise UnsupportedPasswordHash(detail=f"malformed argon2id hash: {exc}") from exc


def _email_forms(email: str) -> set[str]:
    """The address and its local part, folded as passwords are, in Unicode and ASCII form.

    No forms for an address that is not a bounded, encodable str (an app may hand
    `PasswordPolicy.check` the email as typed): it is never normalised, and no
    password can be such an address anyway.
    """
    if text_problem(email, limit=MAX_EMAIL_INPUT) is not None:
        return set()
    address = unicodedata.normalize("NFKC", email.strip()).casefold()
    local, at, domain = address.rpartition("@")
    forms = {address}
    if at and local:
        forms.add(local)
        # Also the Unicode form of a punycode domain, as a person would type it.
        with contextlib.suppress(idna.IDNAError, UnicodeError):
            forms.add(f"{local}@{idna.decode(domain)}".casefold())
    forms.discard("")
    return forms


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordPolicy:
    """Which new passwords are accepted, after NIST SP 800-63B-4 (section 3.1.1.2).

    Length is counted in Unicode code points after NFKC. There are no composition
    rules (no "one digit, one symbol"), no expiry, and nothing is truncated. Refused,
    in this order: passwords that are too short or too long, the account's email
    address (compared case-insensitively) or its local part alone, passwords on the
    built-in list of common passwords (or one of them typed twice or more), passwords
    that are too simple (only white space; one character over half of it; one string
    typed three times or more; keyboard, alphabet or digit runs over half of it),
    whatever the `blocklist` hook refuses, and, when `breached` is set, passwords
    found in data breaches.

    The local part is refused whatever its length: one shorter than `min_length`
    fails the length check first, so in effect it matters only when it is long
    (`maximilian.mustermann` for `maximilian.mustermann@example.com`).

    Attributes:
        min_length: At least 8 (NIST: 15 when the password is the only factor,
            the default; 8 when it is one factor of several).
        max_length: At least 64 (NIST: accept at least 64) and at most 1024
            (`MAX_PASSWORD_INPUT`, the bound on any password as typed). The default,
            256, is generous and still bounds the work of one hash.
        blocklist: Called with the normalised password; True refuses it
            (`PasswordTooCommon`). Plug in your own list here. Its exceptions
            propagate unchanged.
        builtin_blocklist: Also refuse the 16,000 common passwords of 8 or more
            characters shipped with bpart_auth (compared case-insensitively, after
            NFKC; read from the package on first use). On by default.
        breached: A `PwnedPasswords` check, run last (it asks a web service), or
            None, the default: no request ever leaves the process.

    Raises:
        ConfigurationError: `min_length` under 8, `max_length` under 64, under
            `min_length` or over 1024, or a value of the wrong type.

    Examples:
        >>> policy = PasswordPolicy(min_length=8, blocklist=lambda p: "acme" in p.lower())
        >>> try:
        ...     policy.check("ACME rocks 2026!")
        ... except PasswordTooCommon as error:
        ...     error.code
        'password_too_common'
    """

    min_length: int = 15
    max_length: int = 256
    blocklist: Callable[[str], bool] | None = None
    builtin_blocklist: bool = True
    breached: PwnedPasswords | None = None

    def __post_init__(self) -> None:
        for name in ("min_length", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(detail=f"{name} must be an int, got {value!r}")
        if self.min_length < _NIST_MIN_LENGTH:
            raise ConfigurationError(
                detail=f"min_length must be at least {_NIST_MIN_LENGTH} "
                f"(NIST SP 800-63B-4), got {self.min_length}"
            )
        if self.max_length < max(_NIST_MAX_LENGTH_FLOOR, self.min_length):
            raise ConfigurationError(
                detail=f"max_length must be at least {_NIST_MAX_LENGTH_FLOOR} "
                f"(NIST SP 800-63B-4) and at least min_length, got {self.max_length}"
            )
        if self.max_length > MAX_PASSWORD_INPUT:
            raise ConfigurationError(
                detail=f"max_length must be at most {MAX_PASSWORD_INPUT} (the bound on a "
                f"password as typed), got {self.max_length}"
            )
        if self.blocklist is not None and not callable(self.blocklist):
            raise ConfigurationError(detail="blocklist must be a callable or None")
        if not isinstance(self.builtin_blocklist, bool):
            raise ConfigurationError(detail="builtin_blocklist must be a bool")
        if self.breached is not None and not isinstance(self.breached, PwnedPasswords):
            raise ConfigurationError(detail="breached must be a PwnedPasswords or None")

    def check(self, password: str, *, email: str | None = None) -> str:
        """Check a new password and return the form to hash.

        Args:
            password: The new password as typed.
            email: The account's email address, to refuse it as a password.

        Returns:
            The normalised (NFKC) password; pass it to `PasswordHasher.hash`.

        Raises:
            PasswordTooShort: Fewer than `min_length` characters.
            PasswordTooLong: More than `max_length` characters, or more than 1024
                as typed (checked before any normalisation).
            PasswordMatchesEmail: The email address, or its local part.
            PasswordTooCommon: On the built-in list or refused by `blocklist`.
            PasswordTooSimple: Only white space, mostly one character, a repeated
                string, or keyboard, alphabet or digit sequences.
            PasswordBreached: Found in data breaches (only with `breached`).
            PasswordCheckUnavailable: The breach service could not answer and
                `breached` is set to refuse then.
            PasswordRejected: Not a string, or holds a lone surrogate.

        Examples:
            >>> policy = PasswordPolicy()
            >>> policy.check("correct horse battery staple")
            'correct horse battery staple'
            >>> for candidate in [
            ...     "short",
            ...     "Qwertyuiopasdfghjkl",
            ...     "Ann.Lee.Smith@example.com",
            ...     "abcdefghijklmnop",
            ...     "yes" * 5,
            ... ]:
            ...     try:
            ...         policy.check(candidate, email="ann.lee.smith@example.com")
            ...     except PasswordRejected as error:
            ...         print(error.code)
            password_too_short
            password_too_common
            password_matches_email
            password_too_common
            password_too_simple
        """
        try:
            normalized = normalize_password(password)
        except InvalidInput as exc:
            typed: object = password  # from a request: any type at run time
            if isinstance(typed, str) and len(typed) > MAX_PASSWORD_INPUT:
                raise PasswordTooLong(max_length=self.max_length) from exc
            raise PasswordRejected(detail=exc.detail) from exc
        length = len(normalized)
        if length < self.min_length:
            raise PasswordTooShort(min_length=self.min_length)
        if length > self.max_length:
            raise PasswordTooLong(max_length=self.max_length)
        folded = normalized.casefold()
        if email is not None and folded.strip() in _email_forms(email):
            raise PasswordMatchesEmail
        if self.builtin_blocklist and is_common(folded):
            raise PasswordTooCommon(detail="on the built-in list of common passwords")
        simple = too_simple(folded)
        if simple is not None:
            raise PasswordTooSimple(detail=simple)
        if self.blocklist is not None and self.blocklist(normalized):
            raise PasswordTooCommon(detail="refused by the blocklist hook")
        if self.breached is not None:
            self.breached.check(normalized)
        return normalized
