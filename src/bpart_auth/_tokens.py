"""Single-use tokens handed to users (invitations, password resets), hashed at rest."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

TokenPurpose = Literal["invite", "password_reset"]

TOKEN_BYTES = 32  # 256 bits of entropy


def new_token() -> str:
    """A fresh URL-safe token with 256 bits of entropy (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str, *, purpose: TokenPurpose) -> str:
    """The SHA-256 stored in place of a token, separated by purpose.

    The purpose prefix means a reset token can never open an invitation, and the
    other way round, even if one leaked into the other's table. Lookups are by this
    hash in the store's unique index, so the raw token is never compared at all.

    A token brought back by a user is bounded at the entry point first
    (`text_problem(token, limit=MAX_TOKEN_INPUT)`): this function trusts it to be a
    short str that UTF-8 can encode.

    Examples:
        >>> token_hash("abc", purpose="invite") != token_hash("abc", purpose="password_reset")
        True
        >>> len(token_hash("abc", purpose="invite"))
        64
    """
    return hashlib.sha256(f"bpart_auth/{purpose}\x00{token}".encode()).hexdigest()
