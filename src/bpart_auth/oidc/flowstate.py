"""The sealed state carried from `begin_*` to `complete`, and the checks on what it holds.

A redirect flow (sign-in, linking, accepting an invitation) starts in one request and
ends in another, possibly on another app instance. What the callback must know (the
intent, the OAuth `state`, the OIDC `nonce`, the PKCE verifier, where to go next) is
put in a `FlowState`, sealed by `FlowSealer` into an opaque string the app keeps in
its session, and opened again at the callback.

Sealing (by `_secretbox.SecretBox`) is authenticated encryption: AES-256-GCM with a
random 96-bit nonce, under a key derived from the app's secret with HKDF-SHA256 for
this purpose only (`info=b"bpart_auth flow state v1"`). So the secret itself never
keys anything, and other purposes derive other, unrelated keys from the same secret.
The sealed form is
`v1.` followed by base64url (no padding) of nonce, ciphertext and tag; the version
is also the associated data, so a blob can never be read as another version.

`secret_key` seals and opens; `fallback_secret_keys` only open, so a key can be
rotated without breaking flows already under way (a fallback never seals: compare
Flask 3.1.0, CVE-2025-47278).

Examples:
    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    >>> sealer = FlowSealer("an app secret of at least 32 bytes!", clock=lambda: now)
    >>> state = new_flow_state(intent="sign_in", provider="google",
    ...                        redirect_uri="https://app.example/callback",
    ...                        return_to="/profile", now=now)
    >>> sealed = sealer.seal(state)
    >>> sealed.startswith("v1.")
    True
    >>> sealer.open(sealed) == state
    True
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final, Literal, get_args
from urllib.parse import unquote

from bpart_auth._secretbox import MIN_SECRET_KEY_BYTES, SecretBox
from bpart_auth.errors import ConfigurationError, InvalidFlowState, InvalidInput, InvalidReturnTo
from bpart_auth.models import _ReadOnlyMapping

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "DEFAULT_LIFETIME",
    "MIN_SECRET_KEY_BYTES",
    "FlowIntent",
    "FlowSealer",
    "FlowState",
    "check_return_to",
    "code_challenge",
    "new_flow_state",
]

FlowIntent = Literal["sign_in", "link", "accept_invite"]
"""What a redirect flow was started for."""

DEFAULT_LIFETIME: Final = timedelta(minutes=10)
"""How long a flow state is accepted after it was issued, unless told otherwise."""

MAX_RETURN_TO_LENGTH: Final = 2000
"""Longest `return_to` accepted, in characters."""

_INTENTS: Final = frozenset(get_args(FlowIntent))
_VERSION: Final = "v1"
_ASSOCIATED_DATA: Final = b"bpart_auth flow state " + _VERSION.encode()
_KEY_INFO: Final = b"bpart_auth flow state " + _VERSION.encode()
# A sealed state lives in the app's session, often a cookie (~4 KB for everything):
# refuse to make big ones, and refuse to even decode anything longer than we make.
_MAX_PLAINTEXT_BYTES: Final = 6000
# Clocks of app instances differ a little: a state issued by a neighbour whose clock
# runs ahead is still fine, one from further in the future is not ours.
_FUTURE_LEEWAY: Final = timedelta(seconds=60)
_MIN_STATE_LENGTH: Final = 22  # 128 bits in base64url
_RANDOM_BYTES: Final = 32  # state, nonce and code verifier: 256 bits each
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)

# RFC 7636 section 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
_CODE_VERIFIER: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_PRINTABLE_ASCII: Final = re.compile(r"[\x21-\x7e]*")

# The payload's JSON keys: short, since the sealed state rides in a cookie.
_FIELDS: Final = (
    ("i", "intent"),
    ("p", "provider"),
    ("s", "state"),
    ("n", "nonce"),
    ("v", "code_verifier"),
    ("r", "redirect_uri"),
    ("t", "return_to"),
    ("a", "account_id"),
    ("h", "invite_token_hash"),
)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _is_code_verifier(value: object) -> bool:
    return isinstance(value, str) and _CODE_VERIFIER.fullmatch(value) is not None


def _is_text_mapping(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_positive(lifetime: object) -> bool:
    return isinstance(lifetime, timedelta) and lifetime > timedelta(0)


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field=name, detail=f"FlowState.{name} must be a non-empty str")


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowState:
    """What a redirect flow must remember between its start and its callback.

    Usually made by `new_flow_state`, then sealed by `FlowSealer.seal`.

    Attributes:
        intent: `"sign_in"`, `"link"` or `"accept_invite"`.
        provider: The provider's name (`"google"`, `"microsoft"`).
        state: The random OAuth `state` sent to the provider (at least 128 bits;
            22 base64url characters or more). Also the key that makes the flow
            single-use.
        nonce: The OIDC `nonce` the ID token must carry.
        code_verifier: The PKCE verifier (RFC 7636: 43-128 characters of
            `A-Z a-z 0-9 - . _ ~`). Secret; not shown in `repr`.
        redirect_uri: The callback URL given to the provider.
        return_to: A same-site path to send the user to afterwards, or None.
        account_id: The account being linked (`"link"` only, and required there).
        invite_token_hash: The hash of the invitation token being accepted
            (`"accept_invite"` only, and required there).
        extra: A few strings a provider needs back at its callback. Keep it small:
            the sealed state must fit in a session cookie. Not shown in `repr`.
        issued_at: When the flow started (timezone-aware).
        expires_at: When the flow stops being accepted (after `issued_at`).

    Raises:
        InvalidInput: A field is empty, of the wrong type, or inconsistent with
            `intent`; a naive datetime; a bad code verifier.
        InvalidReturnTo: `return_to` is not a same-site path (see `check_return_to`).
    """

    intent: FlowIntent
    provider: str
    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    redirect_uri: str
    return_to: str | None = None
    account_id: str | None = None
    invite_token_hash: str | None = None
    extra: Mapping[str, str] = field(default_factory=_ReadOnlyMapping, repr=False, hash=False)
    issued_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.intent not in _INTENTS:
            raise InvalidInput(field="intent", detail=f"unknown intent {self.intent!r}")
        for name in ("provider", "state", "nonce", "redirect_uri"):
            _require_text(name, getattr(self, name))
        if len(self.state) < _MIN_STATE_LENGTH:
            raise InvalidInput(field="state", detail="state must carry at least 128 bits")
        if not _is_code_verifier(self.code_verifier):
            raise InvalidInput(field="code_verifier", detail="not an RFC 7636 code verifier")
        check_return_to(self.return_to)
        self._check_intent_fields()
        for name in ("issued_at", "expires_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise InvalidInput(field=name, detail=f"{name} must be a timezone-aware datetime")
        if self.expires_at <= self.issued_at:
            raise InvalidInput(field="expires_at", detail="expires_at must be after issued_at")
        if not _is_text_mapping(self.extra):
            raise InvalidInput(field="extra", detail="extra must map str to str")
        object.__setattr__(self, "extra", _ReadOnlyMapping(self.extra))

    def _check_intent_fields(self) -> None:
        needed = {"link": "account_id", "accept_invite": "invite_token_hash"}.get(self.intent)
        for name in ("account_id", "invite_token_hash"):
            value = getattr(self, name)
            if name == needed:
                _require_text(name, value)
            elif value is not None:
                raise InvalidInput(field=name, detail=f"{name} is only for another intent")


def new_flow_state(
    *,
    intent: FlowIntent,
    provider: str,
    redirect_uri: str,
    return_to: str | None = None,
    account_id: str | None = None,
    invite_token_hash: str | None = None,
    extra: Mapping[str, str] | None = None,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> FlowState:
    """Start a flow: fresh random `state`, `nonce` and PKCE `code_verifier`.

    Each random value has 256 bits from `secrets`.

    Args:
        intent: What the flow is for.
        provider: The provider's name.
        redirect_uri: The callback URL.
        return_to: A same-site path to return to afterwards, or None.
        account_id: The account being linked (intent `"link"`).
        invite_token_hash: The hash of the invitation token (intent `"accept_invite"`).
        extra: A few strings the provider needs back at its callback.
        now: The current time (timezone-aware); the system clock by default.
        lifetime: How long the flow may take.

    Returns:
        The new, unsealed `FlowState`.

    Raises:
        InvalidInput: See `FlowState`; or a lifetime that is not positive.
        InvalidReturnTo: `return_to` is not a same-site path.

    Examples:
        >>> state = new_flow_state(intent="link", provider="microsoft", account_id="a1",
        ...                        redirect_uri="https://app.example/callback")
        >>> len(state.state), len(state.code_verifier), state.expires_at - state.issued_at
        (43, 43, datetime.timedelta(seconds=600))
    """
    if not _is_positive(lifetime):
        raise InvalidInput(field="lifetime", detail="lifetime must be a positive timedelta")
    issued_at = _utc_now() if now is None else now
    return FlowState(
        intent=intent,
        provider=provider,
        state=secrets.token_urlsafe(_RANDOM_BYTES),
        nonce=secrets.token_urlsafe(_RANDOM_BYTES),
        code_verifier=secrets.token_urlsafe(_RANDOM_BYTES),
        redirect_uri=redirect_uri,
        return_to=return_to,
        account_id=account_id,
        invite_token_hash=invite_token_hash,
        extra=extra or {},
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
    )


def code_challenge(verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier: BASE64URL(SHA256(verifier)), no padding.

    Args:
        verifier: An RFC 7636 code verifier.

    Returns:
        The challenge to send with the authorization request.

    Raises:
        InvalidInput: `verifier` is not 43-128 characters of the unreserved set.

    Examples:
        The example of RFC 7636, appendix B:

        >>> code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    if not _is_code_verifier(verifier):
        raise InvalidInput(field="code_verifier", detail="not an RFC 7636 code verifier")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _refuse_return_to(reason: str) -> InvalidReturnTo:
    return InvalidReturnTo(detail=f"return_to refused: {reason}")


def _is_hidden(character: str) -> bool:
    # Browsers drop tab and newlines anywhere in a URL (WHATWG URL parser), and other
    # control or space characters are no part of a path anyone means to return to.
    return unicodedata.category(character) == "Cc" or (character.isspace() and character != " ")


def check_return_to(value: str | None) -> str | None:
    r"""Accept only a same-site relative path to send the user back to after a flow.

    Rules, so no value can lead the browser to another site (an open redirect):

    - it starts with exactly one `/` (so it has no scheme and no host), and is at
      most 2000 characters of printable ASCII (percent-encode anything else; no
      whitespace, no control characters);
    - it has no backslash anywhere (browsers read `/\host` as `//host`);
    - decoded once (`%XX`), it still does not start with `//` or `/\` and holds no
      backslash, control character or whitespace other than a plain space, so
      `/%2F%2Fevil.example` and `/%09/evil.example` are refused too.

    Args:
        value: The path, or None for "no preference".

    Returns:
        The value unchanged, or None.

    Raises:
        InvalidReturnTo: The value breaks a rule; `detail` says which.

    Examples:
        >>> check_return_to("/profile?tab=security#linked")
        '/profile?tab=security#linked'
        >>> try:
        ...     check_return_to("/%2F%2Fevil.example")
        ... except InvalidReturnTo as error:
        ...     error.detail
        'return_to refused: starts with // once decoded'
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refuse_return_to("not a str")
    _check_raw_return_to(value)
    _check_decoded_return_to(unquote(value))
    return value


def _check_raw_return_to(value: str) -> None:
    if len(value) > MAX_RETURN_TO_LENGTH:
        raise _refuse_return_to(f"longer than {MAX_RETURN_TO_LENGTH} characters")
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise _refuse_return_to("whitespace, a control character or non-ASCII text")
    if "\\" in value:
        raise _refuse_return_to("a backslash")
    if not value.startswith("/"):
        raise _refuse_return_to("not a path starting with /")
    if value.startswith("//"):
        raise _refuse_return_to("starts with // (another host)")


def _check_decoded_return_to(decoded: str) -> None:
    if decoded.startswith("//"):
        raise _refuse_return_to("starts with // once decoded")
    if "\\" in decoded:
        raise _refuse_return_to("a backslash once decoded")
    if any(_is_hidden(character) for character in decoded):
        raise _refuse_return_to("a control or whitespace character once decoded")


def _timestamp(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _to_json(state: FlowState) -> bytes:
    payload: dict[str, Any] = {short: getattr(state, name) for short, name in _FIELDS}
    payload["x"] = dict(state.extra)
    payload["ia"] = _timestamp(state.issued_at)
    payload["ea"] = _timestamp(state.expires_at)
    return json.dumps(payload, separators=(",", ":")).encode()


def _from_json(plaintext: bytes) -> FlowState:
    payload = json.loads(plaintext)
    if not isinstance(payload, dict) or set(payload) != {s for s, _ in _FIELDS} | {
        "x",
        "ia",
        "ea",
    }:
        raise ValueError("unexpected fields")
    times = (payload["ia"], payload["ea"])
    if not all(type(moment) is int for moment in times):
        raise TypeError("times must be integers")
    extra = payload["x"]
    if not isinstance(extra, dict):
        raise TypeError("extra must be an object")
    return FlowState(
        **{name: payload[short] for short, name in _FIELDS},
        extra=extra,
        issued_at=_EPOCH + times[0] * _MICROSECOND,
        expires_at=_EPOCH + times[1] * _MICROSECOND,
    )


class FlowSealer:
    """Seals `FlowState` into an opaque, tamper-proof, expiring string, and opens it.

    Args:
        secret_key: The app's secret: at least 32 bytes (UTF-8 for a str). Seals
            and opens. Never used directly: an AES-256 key is derived from it with
            HKDF-SHA256 for flow state only.
        fallback_secret_keys: Older secrets that still open states sealed before a
            key rotation, and never seal. Drop them after one `lifetime`.
        lifetime: The longest a sealed state is accepted after its `issued_at`,
            whatever its `expires_at` says.
        clock: Returns the current timezone-aware time.

    Raises:
        ConfigurationError: A key shorter than 32 bytes or of the wrong type, or a
            lifetime that is not positive.

    Examples:
        >>> old = FlowSealer("the secret we used until yesterday!")
        >>> new = FlowSealer("the secret we use from today on :-)",
        ...                  fallback_secret_keys=["the secret we used until yesterday!"])
        >>> state = new_flow_state(intent="sign_in", provider="google",
        ...                        redirect_uri="https://app.example/callback")
        >>> new.open(old.seal(state)) == state
        True
        >>> try:
        ...     old.open(new.seal(state))  # new seals with its newest key only
        ... except InvalidFlowState as error:
        ...     error.code
        'invalid_flow_state'
    """

    __slots__ = ("_box", "_clock", "lifetime")

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        fallback_secret_keys: Sequence[str | bytes] = (),
        lifetime: timedelta = DEFAULT_LIFETIME,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if isinstance(fallback_secret_keys, (str, bytes)):
            raise ConfigurationError(
                detail="fallback_secret_keys must be a list of keys, not a single key"
            )
        if not _is_positive(lifetime):
            raise ConfigurationError(detail="lifetime must be a positive timedelta")
        if not callable(clock):
            raise ConfigurationError(detail="clock must be a callable returning a datetime")
        self._box = SecretBox(
            secret_key,
            fallback_secret_keys=fallback_secret_keys,
            purpose=_KEY_INFO,
            error=InvalidFlowState,
            noun="flow state",
            max_plaintext_bytes=_MAX_PLAINTEXT_BYTES,
        )
        self.lifetime = lifetime
        self._clock = clock

    def seal(self, state: FlowState) -> str:
        """Encrypt and authenticate a flow state under `secret_key`.

        Args:
            state: The state to seal.

        Returns:
            `v1.` and URL-safe base64 text, safe in a cookie, a URL or a form.

        Raises:
            InvalidInput: Not a `FlowState`, or one too big for a session cookie
                (its fields, `extra` and `return_to` above all, over about 6000 bytes).
        """
        if not isinstance(state, FlowState):
            raise InvalidInput(detail="FlowSealer.seal takes a FlowState")
        plaintext = _to_json(state)
        if len(plaintext) > _MAX_PLAINTEXT_BYTES:
            raise InvalidInput(
                field="extra", detail=f"the flow state is over {_MAX_PLAINTEXT_BYTES} bytes"
            )
        return self._box.seal(plaintext, associated=_ASSOCIATED_DATA)

    def open(self, sealed: str) -> FlowState:
        """Decrypt, authenticate and check the expiry of a sealed flow state.

        Args:
            sealed: What `seal` returned, as the app got it back.

        Returns:
            The flow state.

        Raises:
            InvalidFlowState: For anything else: not a string, garbage, another
                version, truncated, tampered with, sealed under an unknown key,
                expired, or issued in the future; `detail` says which.
        """
        state = self._unseal(sealed)
        now = self._clock()
        if now >= min(state.expires_at, state.issued_at + self.lifetime):
            raise InvalidFlowState(detail="flow state expired")
        if state.issued_at > now + _FUTURE_LEEWAY:
            raise InvalidFlowState(detail="flow state issued in the future")
        return state

    def _unseal(self, sealed: object) -> FlowState:
        plaintext = self._box.open(sealed, associated=_ASSOCIATED_DATA)
        try:
            return _from_json(plaintext)
        except (ValueError, TypeError, KeyError, OverflowError, InvalidInput) as exc:
            # Authentic, so sealed by us: a payload we cannot read is from a newer
            # or older release sharing the key.
            raise InvalidFlowState(detail="flow state payload unreadable") from exc
