"""Input checks every store runs before it writes, so bad input never half-writes."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Final

from bpart_auth import errors
from bpart_auth._email import validate_new_email
from bpart_auth.errors import InvalidInput
from bpart_auth.store.base import MAX_NAME_LENGTH, MAX_SECRET_LENGTH, MAX_TEXT_LENGTH

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from bpart_auth.models import Identity, Invite, SecondFactorKind

MAX_INVITE_DATA_ITEMS = 50

MAX_LOOKUP_KEY_LENGTH: Final = 1364
"""A WebAuthn credential id is at most 1023 bytes: 1364 base64url characters."""

MAX_RECOVERY_CODES: Final = 100
"""More recovery codes than any policy hands out (ours: 10) are refused."""

_FACTOR_KINDS: Final = frozenset({"totp", "passkey"})
_HEX: Final = frozenset("0123456789abcdef")


def clean_email(email: str) -> str:
    """The form to store of an email being written: `validate_new_email` (`InvalidEmail`).

    For writes only; a lookup takes `normalize_email`, so rows stored before the
    validator existed are still found.
    """
    return validate_new_email(email)


def check_text(value: object, *, field: str, limit: int) -> str:
    """A str of at most `limit` characters that every driver can store.

    Refuses non-strings, over-long values, NUL characters (PostgreSQL refuses them)
    and lone surrogates (no driver can encode them) with `InvalidInput(field=...)`.
    """
    if not isinstance(value, str):
        raise InvalidInput(field=field, detail=f"{field} must be a str")
    if len(value) > limit:
        raise InvalidInput(
            f"Please use at most {limit} characters.",
            field=field,
            detail=f"{field} is {len(value)} characters, the limit is {limit}",
        )
    if "\x00" in value:
        raise InvalidInput(field=field, detail=f"{field} contains a NUL character")
    return encodable(value, field)


def encodable(value: str, field: str) -> str:
    """Refuse lone surrogates, which no database driver can encode."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise InvalidInput(
                field=field, detail=f"{field} is not valid Unicode (a lone surrogate)"
            ) from exc
    return value


# Characters a display name may not hold. A name is shown to other people (an
# admin's list, an audit log), so nothing in it may hide or reorder text:
# - Cc: control characters (NUL, tab, newline, escape sequences);
# - Cf: invisible format characters, among them the bidi embeddings, overrides and
#   isolates U+202A-U+202E and U+2066-U+2069 that reorder what follows (Trojan
#   Source, CVE-2021-42574), the marks U+200E, U+200F and U+061C, the zero-width
#   space, word joiner, soft hyphen, byte-order mark and the tag characters;
# - Zl, Zp: the line and paragraph separators U+2028 and U+2029;
# - Cs: lone surrogates, which no database driver can encode.
# Two Cf stay allowed: ZWNJ (U+200C) and ZWJ (U+200D) shape words in Persian and
# Indic scripts and join emoji sequences.
_REFUSED_IN_NAMES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_ALLOWED_FORMAT: Final = frozenset({"\u200c", "\u200d"})


def _refused_in_name(character: str) -> bool:
    return unicodedata.category(character) in _REFUSED_IN_NAMES and character not in _ALLOWED_FORMAT


def check_name(name: str) -> str:
    r"""A display name as typed: at most `MAX_NAME_LENGTH` characters, none hidden.

    The length is checked first, before any look at the characters; then control
    characters, bidi overrides and isolates, other invisible format characters
    (ZWJ and ZWNJ are allowed) and line separators are refused. The name is kept
    as given otherwise (no trimming, no normalisation).

    Raises:
        InvalidInput: `field` is `"name"`; `detail` names the first refused
            character by code point.

    Examples:
        >>> check_name("Zoë Ardern")
        'Zoë Ardern'
        >>> try:
        ...     check_name("Ann\u202eSmith")
        ... except InvalidInput as error:
        ...     print(error.field, "-", error.detail)
        name - name holds U+202E (Cf), which is not allowed in names
    """
    name = check_text(name, field="name", limit=MAX_NAME_LENGTH)
    # Printable ASCII has none of them; only other text needs the per-character look.
    if name.isascii() and name.isprintable():
        return name
    for character in name:
        if _refused_in_name(character):
            raise InvalidInput(
                "Please use only visible characters in the name.",
                field="name",
                detail=f"name holds U+{ord(character):04X} "
                f"({unicodedata.category(character)}), which is not allowed in names",
            )
    return name


def clean_name(name: str) -> str:
    r"""A display name a provider sent, made storable: what `check_name` refuses dropped.

    The user cannot retype a name from an ID token, so instead of refusing it this
    drops the characters `check_name` refuses (white space among them becomes a
    space), trims the ends and cuts it to `MAX_NAME_LENGTH` characters. The input
    is cut to `MAX_TEXT_LENGTH` characters before any other work.

    Examples:
        >>> clean_name("Ann\u202e Smith\n(Contoso)")
        'Ann Smith (Contoso)'
        >>> len(clean_name("x" * 5000))
        200
    """
    kept = "".join(map(_kept_in_name, name[:MAX_TEXT_LENGTH]))
    return kept.strip()[:MAX_NAME_LENGTH].strip()


def _kept_in_name(character: str) -> str:
    if not _refused_in_name(character):
        return character
    return " " if character.isspace() else ""


def check_identity(identity: Identity) -> None:
    """Issuer and subject fit the store's columns."""
    check_text(identity.issuer, field="issuer", limit=MAX_TEXT_LENGTH)
    check_text(identity.subject, field="subject", limit=MAX_TEXT_LENGTH)


def disabling_needs_now() -> InvalidInput:
    """`update_account(disabled=True)` without `now`: the revoked invitations need a time."""
    return InvalidInput(
        field="now", detail="update_account(disabled=True) needs now= (revoked_at of invites)"
    )


def check_invite_data(data: Mapping[str, str]) -> dict[str, str]:
    """Invitation data: at most 50 str keys and values of bounded length."""
    if len(data) > MAX_INVITE_DATA_ITEMS:
        raise InvalidInput(field="data", detail=f"more than {MAX_INVITE_DATA_ITEMS} items")
    return {
        check_text(key, field="data", limit=MAX_TEXT_LENGTH): check_text(
            value, field="data", limit=MAX_TEXT_LENGTH
        )
        for key, value in data.items()
    }


def refuse_unusable_invite(invite: Invite, now: datetime, *, allow_expired: bool = False) -> None:
    """Raise the `InvalidInvite` subclass for an invitation that is not pending at `now`."""
    status = invite.status(now)
    if status == "accepted":
        raise errors.InviteAlreadyUsed
    if status == "revoked":
        raise errors.InviteRevoked
    if status == "expired" and not allow_expired:
        raise errors.InviteExpired


# Second factors


def check_factor_kind(kind: object) -> SecondFactorKind:
    """`"totp"` or `"passkey"`; anything else is `InvalidInput(field="kind")`."""
    if kind == "totp":
        return "totp"
    if kind == "passkey":
        return "passkey"
    raise InvalidInput(field="kind", detail=f"kind must be one of {sorted(_FACTOR_KINDS)}")


def check_secret(secret: object) -> str:
    """A factor's secret: a non-empty str of at most `MAX_SECRET_LENGTH` characters."""
    secret = check_text(secret, field="secret", limit=MAX_SECRET_LENGTH)
    if not secret:
        raise InvalidInput(field="secret", detail="secret is empty")
    return secret


def check_lookup_key(lookup_key: object) -> str | None:
    """A passkey's credential id (non-empty, at most 1364 characters), or None."""
    if lookup_key is None:
        return None
    lookup_key = check_text(lookup_key, field="lookup_key", limit=MAX_LOOKUP_KEY_LENGTH)
    if not lookup_key:
        raise InvalidInput(field="lookup_key", detail="lookup_key is empty")
    return lookup_key


def is_code_hash(value: object) -> bool:
    """Whether a value is a SHA-256 hex digest as we store them (64 lowercase hex)."""
    return isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value)  # noqa: PLR2004 - SHA-256


def check_code_hashes(code_hashes: Sequence[str]) -> list[str]:
    """Recovery code hashes: each 64 lowercase hex characters, no two alike, at most 100.

    `InvalidInput(field="code_hashes")` otherwise, naming the first bad one by position.
    """
    if isinstance(code_hashes, str):  # a str is a Sequence[str] too: one hash, not 64
        raise InvalidInput(field="code_hashes", detail="code_hashes must be a sequence of str")
    hashes = list(code_hashes)
    if len(hashes) > MAX_RECOVERY_CODES:
        raise InvalidInput(
            field="code_hashes", detail=f"more than {MAX_RECOVERY_CODES} recovery codes"
        )
    for position, value in enumerate(hashes):
        if not is_code_hash(value):
            raise InvalidInput(
                field="code_hashes",
                detail=f"code_hashes[{position}] is not 64 lowercase hex characters",
            )
    if len(set(hashes)) != len(hashes):
        raise InvalidInput(field="code_hashes", detail="code_hashes holds the same hash twice")
    return hashes
