"""Email addresses are normalised here and nowhere else."""

from __future__ import annotations

import re
import unicodedata

import idna

from bpart_auth.errors import InvalidEmail

MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 section 4.5.3.1.1
MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit (256) less the angle brackets

# A plain LDH label (letters, digits, inner hyphens, no "--" in positions 3-4, so
# never an A-label): IDNA would return it unchanged, and `idna.encode` costs ~11 us
# on the sign-in path. Anything else goes through IDNA.
_PLAIN_LABEL = re.compile(r"(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _ascii_domain(domain: str) -> str:
    labels = domain.split(".")
    if all(_PLAIN_LABEL.fullmatch(label) for label in labels):
        return domain
    return idna.encode(domain, uts46=True).decode("ascii")


def normalize_email(raw: str) -> str:
    """Return the one spelling of an email address that bpart_auth stores and compares.

    Strips surrounding white space, applies Unicode NFC, lowercases, and encodes the
    domain with IDNA 2008 (UTS 46 mapping), so `Ann@Bücher.example` and
    `ann@xn--bcher-kva.example` are the same address.

    Args:
        raw: The address as typed or as a provider sent it.

    Returns:
        The normalised address.

    Raises:
        InvalidEmail: Empty, no `@`, an empty or over-long part, white space or
            control characters inside, or a domain IDNA refuses.

    Examples:
        >>> normalize_email("  Ann.Smith@Example.COM ")
        'ann.smith@example.com'
        >>> normalize_email("ann@Bücher.example")
        'ann@xn--bcher-kva.example'
        >>> try:
        ...     normalize_email("ann@")
        ... except InvalidEmail as error:
        ...     print(error.code, "-", error)
        invalid_email - Please enter a valid email address.
    """
    if not isinstance(raw, str):
        raise InvalidEmail(detail=f"expected str, got {type(raw).__name__}")
    text = unicodedata.normalize("NFC", raw.strip()).lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "@" in domain:
        raise InvalidEmail(detail="an email address needs a local part, one '@' and a domain")
    # ASCII fast path: printable ASCII without a space has no white space and no
    # control character; only other text needs the per-character look.
    plain = text.isascii() and text.isprintable() and " " not in text
    if not plain and any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in text):
        raise InvalidEmail(detail="white space or control characters inside the address")
    if len(local.encode()) > MAX_LOCAL_PART_LENGTH:
        raise InvalidEmail(detail=f"local part over {MAX_LOCAL_PART_LENGTH} bytes")
    try:
        ascii_domain = _ascii_domain(domain)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidEmail(detail=f"domain refused by IDNA: {exc}") from exc
    address = f"{local}@{ascii_domain}"
    if len(address.encode()) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(detail=f"address over {MAX_EMAIL_LENGTH} bytes")
    return address
