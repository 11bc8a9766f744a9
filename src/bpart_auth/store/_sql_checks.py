"""Input checks `SQLStore` runs on top of `_checks`, before the database sees a value.

A bad value must be a typed error, never a half-written transaction nor a driver
exception: PostgreSQL refuses NUL characters and over-long `varchar`s, and no
driver can encode a lone surrogate. Lookups by a key that could never have been
stored answer "not found" without a query.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bpart_auth.errors import InvalidInput
from bpart_auth.store._checks import check_identity, check_text
from bpart_auth.store._schema import ID_LENGTH, PROVIDER_LENGTH, TOKEN_HASH_LENGTH
from bpart_auth.store.base import MAX_TEXT_LENGTH

if TYPE_CHECKING:
    from bpart_auth.models import Identity


def checked(value: object, field: str, limit: int) -> str:
    """A str of at most `limit` characters that every driver can store."""
    return check_text(value, field=field, limit=limit)


def fits(value: object, limit: int) -> bool:
    """Whether a lookup key could have been stored at all (`checked`, without raising)."""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def id_shaped(value: object) -> bool:
    """Our ids are `uuid4` strings; anything longer or non-ASCII names no row."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= ID_LENGTH
        and value.isascii()
        and "\x00" not in value
    )


def identity_fits(identity: Identity) -> bool:
    """Whether an identity could have been linked at all."""
    return (
        fits(identity.provider, PROVIDER_LENGTH)
        and fits(identity.issuer, MAX_TEXT_LENGTH)
        and fits(identity.subject, MAX_TEXT_LENGTH)
    )


def check_identity_columns(identity: Identity) -> None:
    """`check_identity`, and a provider name and text that fit the columns."""
    check_identity(identity)
    checked(identity.provider, "provider", PROVIDER_LENGTH)


def password_hash(value: str | None) -> str | None:
    """A password hash, or None."""
    return None if value is None else checked(value, "password_hash", MAX_TEXT_LENGTH)


def identity_email(value: str | None) -> str | None:
    """The email a provider reported for an identity (display only), or None."""
    return None if value is None else checked(value, "identity_email", MAX_TEXT_LENGTH)


def token_hash(value: str) -> str:
    """An invite or reset token hash to store."""
    return checked(value, "token_hash", TOKEN_HASH_LENGTH)


def utc(value: object, field: str) -> datetime:
    """A timezone-aware datetime, in UTC; a naive one would be silently misread."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInput(field=field, detail=f"{field} must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)
