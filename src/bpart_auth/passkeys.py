"""Passkeys (WebAuthn): registration and authentication primitives over py_webauthn.

Needs the `mfa` extra (`webauthn`). `import bpart_auth` does not import this module.

The ceremony, for either registration or authentication:

1. `registration_options` / `authentication_options` give the options JSON for the
   browser's `navigator.credentials.create()` / `.get()` and the challenge. The caller
   keeps the challenge sealed in the session, for one use, with an expiry.
2. The browser answers with a credential in its JSON shape (`toJSON()`); the caller
   passes it, with the challenge, to `verify_registration` / `verify_authentication`.

Every failure of a browser's answer raises `InvalidSecondFactor` with a `detail`;
answers are bounded (`MAX_RESPONSE_CHARS`) before any parsing.

Choices, after py_webauthn's and the WebAuthn spec's guidance:

- Discoverable credentials (resident key) are **required**: a passkey is one, and only
  a discoverable credential can sign in without a user name (`allow=None`). Security
  keys without resident-key support cannot register; that is the price of one kind of
  passkey that works in both roles.
- User verification is **"preferred"** in the options: the browser asks for a PIN or
  biometric where the authenticator can do one, and a key without one still works as a
  second factor. The server decides with `require_user_verification`: pass True where
  the passkey is the whole sign-in (passwordless), False where it follows a password.
- The sign counter: when the stored or the new count is non-zero, the new one must be
  greater (WebAuthn L3 section 7.2 step 22); otherwise the assertion is refused as the
  sign of a cloned authenticator. Synced passkeys always say 0 and pass.
- Attestation "none": we do not trust authenticator makers' certificates.

Examples:
    >>> from bpart_auth.testing import SoftAuthenticator
    >>> rp = RelyingParty("example.com", "Example", ["https://example.com"])
    >>> phone = SoftAuthenticator(origin="https://example.com", rp_id="example.com")
    >>> options, challenge = registration_options(
    ...     rp, user_id=b"account-1", user_name="ann@example.com", display_name="Ann"
    ... )
    >>> passkey = verify_registration(
    ...     rp, phone.create(options), challenge=challenge, require_user_verification=True
    ... )
    >>> options, challenge = authentication_options(rp, allow=None)
    >>> answer = phone.get(options)
    >>> credential_id_of(answer) == passkey.credential_id
    True
    >>> verify_authentication(
    ...     rp, answer, challenge=challenge, credential=passkey, require_user_verification=True
    ... )
    (1, b'account-1')
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from bpart_auth.errors import ConfigurationError, InvalidInput, InvalidSecondFactor

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "MAX_RESPONSE_CHARS",
    "PasskeyCredential",
    "RelyingParty",
    "authentication_options",
    "credential_id_of",
    "registration_options",
    "verify_authentication",
    "verify_registration",
]

MAX_RESPONSE_CHARS: Final = 64 * 1024
"""Most characters of a browser's answer (as JSON) looked at; real ones are a few KB."""

MAX_CREDENTIAL_ID_BYTES: Final = 1023
"""Longest credential id (WebAuthn L3, section 4 "Credential ID"): 1364 base64url chars."""

MAX_USER_ID_BYTES: Final = 64
"""Longest user handle (WebAuthn L3, section 5.4.3)."""

CHALLENGE_BYTES: Final = 32
"""Random bytes of each challenge (the spec asks for at least 16)."""

TIMEOUT_MS: Final = 300_000
"""The browser's time for the ceremony (a hint); the caller's sealed challenge expires too."""

_PASSKEY_MESSAGE: Final = "That passkey didn't work. Try again, or use another way to sign in."
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_DOMAIN_LENGTH: Final = 253
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

DeviceType = Literal["single_device", "multi_device"]


def _refused(detail: str) -> InvalidSecondFactor:
    return InvalidSecondFactor(_PASSKEY_MESSAGE, detail=detail)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    """Strict base64url (no padding, nothing outside the alphabet); ValueError else."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def _host_problem(host: str) -> str | None:
    if host in _LOOPBACK_HOSTS:
        return None
    if len(host) > _MAX_DOMAIN_LENGTH or not all(
        _LABEL.fullmatch(label) for label in host.split(".")
    ):
        return "not a lowercase ASCII domain name (use the IDNA A-label form)"
    return None


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """This site as WebAuthn sees it: its RP id, its name, and the origins it serves.

    Args:
        rp_id: The domain passkeys are bound to ("example.com"); each origin's host must
            be it or a subdomain of it. A passkey made for one RP id never works for
            another, so choose the widest domain the app will ever serve from.
        rp_name: Shown by some authenticators ("Example back office").
        origins: Each origin the browser may report, as it serializes them:
            "https://admin.example.com", "https://example.com:8443". https only,
            except http://localhost and http://127.0.0.1 for development (browsers
            refuse an IP address as RP id, so use localhost with a real browser).

    Raises:
        ConfigurationError: With a `detail` naming what to fix.

    Examples:
        >>> RelyingParty("example.com", "Example", ["https://admin.example.com"]).origins
        ('https://admin.example.com',)
        >>> RelyingParty("example.com", "Example", ["https://example.org"])
        Traceback (most recent call last):
        ...
        bpart_auth.errors.ConfigurationError: Sign-in is not set up correctly here. ...
    """

    rp_id: str
    rp_name: str
    origins: Sequence[str]

    def __post_init__(self) -> None:
        if _host_problem(self.rp_id):
            raise ConfigurationError(detail=f"RelyingParty rp_id {self.rp_id!r} is not a domain")
        if not self.rp_name.strip():
            raise ConfigurationError(detail="RelyingParty rp_name must be a non-empty str")
        if isinstance(self.origins, str) or not self.origins:
            raise ConfigurationError(detail="RelyingParty origins must be a non-empty list of str")
        origins = tuple(self.origins)
        for origin in origins:
            self._check_origin(origin)
        object.__setattr__(self, "origins", origins)

    def _check_origin(self, origin: object) -> None:
        if not isinstance(origin, str):
            raise ConfigurationError(detail=f"RelyingParty origin {origin!r} is not a str")
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(detail=f"RelyingParty origin {origin!r}: {exc}") from exc
        host = parts.hostname or ""
        default_port = {"https": 443, "http": 80}.get(parts.scheme)
        serialized = f"{parts.scheme}://{host}" + (
            f":{port}" if port is not None and port != default_port else ""
        )
        if origin != serialized or parts.username is not None:
            raise ConfigurationError(
                detail=f"RelyingParty origin {origin!r} is not an origin as browsers write "
                f"it (scheme://host[:port], lowercase, no path): {serialized!r}?"
            )
        if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK_HOSTS):
            raise ConfigurationError(
                detail=f"RelyingParty origin {origin!r}: passkeys need https "
                "(http only for localhost and 127.0.0.1)"
            )
        if host != self.rp_id and not (
            # A proper suffix must be a registrable domain, never a public suffix; without
            # the Public Suffix List we refuse at least a single label ("com").
            "." in self.rp_id and _is_domain(host) and host.endswith("." + self.rp_id)
        ):
            raise ConfigurationError(
                detail=f"RelyingParty rp_id {self.rp_id!r} is not the host of origin "
                f"{origin!r} nor a registrable suffix of it"
            )


def _is_domain(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyCredential:
    r"""A registered passkey: what verifying its assertions needs.

    Attributes:
        credential_id: The credential id, base64url without padding (the store's
            `lookup_key`).
        public_key: The credential public key, COSE-encoded.
        sign_count: The authenticator's signature counter at its last use (0 for
            authenticators without one, as synced passkeys).
        transports: How the browser may reach it ("internal", "hybrid", "usb", ...).
        backed_up: Whether it was backed up (synced) when registered.
        device_type: "multi_device" when it may be synced, else "single_device".
        user_verified: Whether the authenticator verified the user at registration.

    Examples:
        >>> passkey = PasskeyCredential(credential_id="AAEC", public_key=b"\\xa1", sign_count=3)
        >>> PasskeyCredential.from_secret(passkey.to_secret()) == passkey
        True
    """

    credential_id: str
    public_key: bytes = field(repr=False)
    sign_count: int
    transports: tuple[str, ...] = ()
    backed_up: bool = False
    device_type: DeviceType = "single_device"
    user_verified: bool = False

    def to_secret(self) -> str:
        """This passkey as the JSON the store keeps in `SecondFactorRecord.secret`."""
        return json.dumps(
            {
                "v": 1,
                "credential_id": self.credential_id,
                "public_key": _b64url(self.public_key),
                "sign_count": self.sign_count,
                "transports": list(self.transports),
                "backed_up": self.backed_up,
                "device_type": self.device_type,
                "user_verified": self.user_verified,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_secret(cls, secret: str) -> PasskeyCredential:
        """The passkey `to_secret` wrote.

        Raises:
            InvalidSecondFactor: The stored text is not one (a damaged row).
        """
        try:
            return _decode_secret(cls, json.loads(secret))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise _refused(f"stored passkey is damaged: {exc}") from exc

    def with_sign_count(self, sign_count: int) -> PasskeyCredential:
        """This passkey after an assertion that reported `sign_count`."""
        return dataclasses.replace(self, sign_count=sign_count)


def _decode_secret(cls: type[PasskeyCredential], data: object) -> PasskeyCredential:
    if not isinstance(data, dict) or data.get("v") != 1:
        raise ValueError("not a version 1 passkey secret")
    credential_id = data["credential_id"]
    sign_count = data["sign_count"]
    transports = data["transports"]
    device_type = data["device_type"]
    flags = (data["backed_up"], data["user_verified"])
    if not (
        isinstance(credential_id, str)
        and type(sign_count) is int
        and 0 <= sign_count < 2**32
        and isinstance(transports, list)
        and all(isinstance(item, str) for item in transports)
        and device_type in ("single_device", "multi_device")
        and all(type(flag) is bool for flag in flags)
    ):
        raise ValueError("a field has the wrong type")
    return cls(
        credential_id=credential_id,
        public_key=_unb64url(data["public_key"]),
        sign_count=sign_count,
        transports=tuple(transports),
        backed_up=flags[0],
        device_type=device_type,
        user_verified=flags[1],
    )


def registration_options(
    rp: RelyingParty,
    *,
    user_id: bytes,
    user_name: str,
    display_name: str,
    exclude: Sequence[str] = (),
) -> tuple[str, bytes]:
    """Options for `navigator.credentials.create()`, and the challenge to keep.

    Args:
        rp: This site.
        user_id: The user handle, 1 to 64 bytes, that the passkey will give back at
            each passwordless sign-in: random or opaque, never an email (it is not
            secret, but it is stored on the authenticator).
        user_name: What the authenticator lists the passkey under (the email).
        display_name: The person's name, shown beside it.
        exclude: Credential ids (base64url) the account already has, so the same
            authenticator is not registered twice.

    Returns:
        The options as JSON (for `PublicKeyCredential.parseCreationOptionsFromJSON`),
        and the challenge: keep it sealed, for one `verify_registration`.

    Raises:
        InvalidInput: A `user_id` of the wrong length, an empty name, a bad id in
            `exclude`.
    """
    if not 1 <= len(user_id) <= MAX_USER_ID_BYTES:
        raise InvalidInput(field="user_id", detail="user_id must be 1 to 64 bytes")
    if not user_name or not display_name:
        raise InvalidInput(field="user_name", detail="user_name and display_name are required")
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.rp_name,
        user_id=user_id,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(exclude, "exclude"),
    )
    return options_to_json(options), challenge


def _descriptors(credential_ids: Sequence[str], name: str) -> list[PublicKeyCredentialDescriptor]:
    try:
        return [PublicKeyCredentialDescriptor(id=_unb64url(item)) for item in credential_ids]
    except (ValueError, TypeError) as exc:
        raise InvalidInput(field=name, detail=f"{name} holds a non-base64url id") from exc


def _parse(response: str | Mapping[str, Any]) -> dict[str, Any]:
    """The browser's answer as a plain dict, bounded before parsing."""
    try:
        text = response if isinstance(response, str) else json.dumps(response)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _refused("the answer is not JSON data") from exc
    if len(text) > MAX_RESPONSE_CHARS:
        raise _refused(f"the answer is not a str of at most {MAX_RESPONSE_CHARS} characters")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _refused("the answer is not valid JSON") from exc
    if not isinstance(data, dict):
        raise _refused("the answer is not a JSON object")
    return data


def _checked_id(data: Mapping[str, Any]) -> str:
    credential_id = data.get("id")
    if not isinstance(credential_id, str) or data.get("rawId") != credential_id:
        raise _refused("the answer's id and rawId are missing or differ")
    try:
        raw = _unb64url(credential_id)
    except ValueError as exc:
        raise _refused("the credential id is not base64url") from exc
    if not 1 <= len(raw) <= MAX_CREDENTIAL_ID_BYTES:
        raise _refused("the credential id is empty or longer than 1023 bytes")
    return credential_id


def _check_same_origin(data: Mapping[str, Any]) -> None:
    # py_webauthn ignores clientDataJSON.crossOrigin; we never ask from inside a
    # third-party frame, so an answer made in one is refused (WebAuthn L3 7.1 step 10).
    try:
        response = data["response"]
        client_data = json.loads(_unb64url(response["clientDataJSON"]))
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise _refused("clientDataJSON is missing or malformed") from exc
    if not isinstance(client_data, dict) or client_data.get("crossOrigin", False) is not False:
        raise _refused("the ceremony ran in a cross-origin frame")


def verify_registration(
    rp: RelyingParty,
    response: str | Mapping[str, Any],
    *,
    challenge: bytes,
    require_user_verification: bool,
) -> PasskeyCredential:
    """Check the browser's answer to `registration_options`; the new passkey.

    Args:
        rp: This site.
        response: The credential from `navigator.credentials.create()`, in its JSON
            form (a str, or the dict a framework parsed).
        challenge: The challenge `registration_options` returned (from the session).
        require_user_verification: Refuse an authenticator that did not verify the
            user. True when the passkey will sign in alone.

    Returns:
        The passkey to store (`to_secret()`, under `credential_id`).

    Raises:
        InvalidSecondFactor: Malformed or oversized answer, wrong challenge, origin or
            RP id, no user presence, no user verification when required, an
            unsupported key; `detail` says which.
    """
    data = _parse(response)
    _checked_id(data)
    _check_same_origin(data)
    # py_webauthn parses untrusted bytes through json, cbor2, asn1 and cryptography;
    # its own exceptions do not cover every failure of those, so any exception from
    # this call means the answer was bad.
    try:
        credential = parse_registration_credential_json(data)
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_presence=True,
            require_user_verification=require_user_verification,
        )
    except Exception as exc:  # the library boundary, see above
        raise _refused(f"registration refused: {exc}") from exc
    transports = credential.response.transports or []
    return PasskeyCredential(
        credential_id=_b64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=tuple(transport.value for transport in transports),
        backed_up=verified.credential_backed_up,
        device_type="multi_device"
        if verified.credential_device_type.value == "multi_device"
        else "single_device",
        user_verified=verified.user_verified,
    )


def authentication_options(rp: RelyingParty, *, allow: Sequence[str] | None) -> tuple[str, bytes]:
    """Options for `navigator.credentials.get()`, and the challenge to keep.

    Args:
        rp: This site.
        allow: The credential ids (base64url) of the account signing in (a second
            factor after its password); None for a passwordless sign-in, where the
            browser offers every discoverable passkey it has for this site.

    Returns:
        The options as JSON (for `PublicKeyCredential.parseRequestOptionsFromJSON`),
        and the challenge: keep it sealed, for one `verify_authentication`.

    Raises:
        InvalidInput: A bad id in `allow`, or an empty `allow` (it would mean
            "any passkey": pass None for that).
    """
    if allow is not None and not allow:
        raise InvalidInput(field="allow", detail="allow is empty; None means passwordless")
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allow or (), "allow"),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), challenge


def credential_id_of(response: str | Mapping[str, Any]) -> str | None:
    """The credential id a browser's answer claims, to find the passkey by; None if none.

    The answer is bounded and parsed, nothing is verified: look the passkey up by this
    id, then call `verify_authentication`.

    Examples:
        >>> credential_id_of('{"id": "AAEC", "rawId": "AAEC"}')
        'AAEC'
        >>> credential_id_of("[1, 2]") is None
        True
    """
    try:
        return _checked_id(_parse(response))
    except InvalidSecondFactor:
        return None


def verify_authentication(
    rp: RelyingParty,
    response: str | Mapping[str, Any],
    *,
    challenge: bytes,
    credential: PasskeyCredential,
    require_user_verification: bool,
) -> tuple[int, bytes | None]:
    """Check the browser's answer to `authentication_options` against a stored passkey.

    Args:
        rp: This site.
        response: The credential from `navigator.credentials.get()`, in JSON form.
        challenge: The challenge `authentication_options` returned (from the session).
        credential: The stored passkey found by `credential_id_of(response)`.
        require_user_verification: True for a passwordless sign-in.

    Returns:
        The new sign count (store it: `credential.with_sign_count(...)`), and the user
        handle the authenticator gave (always, for a discoverable passkey), else None.
        The caller checks the handle is the `user_id` of the passkey's account.

    Raises:
        InvalidSecondFactor: Malformed or oversized answer, another credential, wrong
            challenge, origin or RP id, bad signature, no user presence, no user
            verification when required, a sign counter that did not go up.
    """
    data = _parse(response)
    if _checked_id(data) != credential.credential_id:
        raise _refused("the answer is from another credential")
    _check_same_origin(data)
    try:
        parsed = parse_authentication_credential_json(data)
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=credential.public_key,
            # The counter rule is applied below, after the signature checked out, so
            # that a refusal for a counter always means a validly signed assertion.
            credential_current_sign_count=0,
            require_user_verification=require_user_verification,
        )
    except Exception as exc:  # the library boundary, see verify_registration
        raise _refused(f"authentication refused: {exc}") from exc
    new_count = verified.new_sign_count
    if (new_count or credential.sign_count) and new_count <= credential.sign_count:
        raise _refused(
            f"sign counter did not go up ({credential.sign_count} -> {new_count}): "
            "a cloned authenticator?"
        )
    user_handle = parsed.response.user_handle
    return new_count, user_handle or None
