"""Input checks every store runs before it writes, so bad input never half-writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth.errors import InvalidInput
from bpart_auth.store.base import MAX_NAME_LENGTH, MAX_TEXT_LENGTH

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from bpart_auth.models import Identity, Invite

MAX_INVITE_DATA_ITEMS = 50


def clean_email(email: str) -> str:
    """`normalize_email`, the only spelling a store keeps (raises `InvalidEmail`)."""
    return normalize_email(email)


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


def check_name(name: str) -> str:
    """A display name: a str of at most `MAX_NAME_LENGTH` characters, no NUL."""
    return check_text(name, field="name", limit=MAX_NAME_LENGTH)


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
