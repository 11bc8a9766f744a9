r"""Bounds on request-derived values, checked before any other work on them.

Every value that comes from a request (a form field, a query parameter, a link's
token) is checked here first: its type, then its length in code points (a cheap
`len`), then that UTF-8 can encode it (no lone surrogates). Only then does any
normalisation, hashing, regular expression or IDNA run on it. Unicode normalisation
of a crafted string costs time quadratic in its length, so an unbounded field would
let one request hold a worker (and the GIL) for seconds.

The limits are on the raw value as received, so they sit well above what a valid
value can be once normalised; each caller maps a refusal to its own typed error
(an over-long password at sign-in is simply a wrong password).

Examples:
    >>> text_problem("ann@example.com", limit=MAX_EMAIL_INPUT) is None
    True
    >>> text_problem("a" * 10_000, limit=MAX_EMAIL_INPUT)
    'longer than 512 characters'
    >>> text_problem("\ud800", limit=10)
    'not valid Unicode (a lone surrogate)'
    >>> text_problem(["a list"], limit=10)
    'expected str, got list'
"""

from __future__ import annotations

from typing import Final

MAX_EMAIL_INPUT: Final = 512
"""Characters of an email address as typed (254 once normalised, RFC 5321)."""

MAX_PASSWORD_INPUT: Final = 1024
"""Characters of a password as typed; `PasswordPolicy.max_length` is at most this."""

MAX_TOKEN_INPUT: Final = 128
"""Characters of an invitation or reset token as brought back (ours have 43)."""

MAX_CALLBACK_VALUE: Final = 16 * 1024
"""Characters of one callback query parameter (Entra's codes run to a few KB)."""


def text_problem(value: object, *, limit: int) -> str | None:
    """Why `value` is not a bounded, encodable str; None when it is one.

    Args:
        value: The request-derived value, of any type.
        limit: The most code points it may have.

    Returns:
        None for a `str` of at most `limit` code points that UTF-8 can encode;
        otherwise a short reason for `detail` (it never echoes the value).
    """
    if not isinstance(value, str):
        return f"expected str, got {type(value).__name__}"
    if len(value) > limit:
        return f"longer than {limit} characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "not valid Unicode (a lone surrogate)"
    return None
