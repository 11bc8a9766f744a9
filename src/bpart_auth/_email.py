"""Email addresses are normalised, validated and shown here and nowhere else.

Three functions, one per job:

- `normalize_email` gives the one spelling bpart_auth stores and compares: the key
  of every lookup (sign-in, password reset, `find_account_by_email`). It is fast and
  lenient, so an address stored by an older version is still found.
- `validate_new_email` is for writes (a new account, a changed email, a new
  invitation): `normalize_email`, then `email-validator` on the result, so what is
  stored is exactly what passed the validator, and is its own lookup key.
- `display_email` turns a stored address back into what a person reads: the domain
  in Unicode (`ann@bücher.example`), not punycode.

Every request-derived address is bounded (type, length, encoding) before any
strip, Unicode normalisation or IDNA work: normalising a crafted string costs time
quadratic in its length.
"""

from __future__ import annotations

import re
import unicodedata

import idna
from email_validator import EmailNotValidError, validate_email

from bpart_auth._input import MAX_EMAIL_INPUT, text_problem
from bpart_auth.errors import InvalidEmail

__all__ = ["display_email", "normalize_email", "validate_new_email"]

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

    Refuses a non-str, more than 512 characters or a lone surrogate before any other
    work. Then strips surrounding white space, applies Unicode NFC, lowercases, and
    encodes the domain with IDNA 2008 (UTS 46 mapping), so `Ann@Bücher.example` and
    `ann@xn--bcher-kva.example` are the same address.

    This is the lookup key, not a validation: `validate_new_email` decides what may
    be written.

    Args:
        raw: The address as typed or as a provider sent it.

    Returns:
        The normalised address.

    Raises:
        InvalidEmail: Not a str, over 512 characters as given, a lone surrogate,
            empty, no `@`, an empty or over-long part, white space or control
            characters inside, or a domain IDNA refuses.

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
    problem = text_problem(raw, limit=MAX_EMAIL_INPUT)
    if problem is not None:
        raise InvalidEmail(detail=f"email {problem}")
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


def validate_new_email(raw: str) -> str:
    """The form to store of an address about to be written, once `email-validator` agrees.

    Stores call it on every write of an email (a new account, a changed email, a new
    invitation, an account made from an invitation). It returns `normalize_email(raw)`,
    after `email_validator.validate_email` has accepted that very string, so the
    stored form passed the validator and is also the key every lookup computes.

    The validator runs without DNS (`check_deliverability=False`) and refuses quoted
    local parts (`"ann"@...`), domain literals (`ann@[192.0.2.1]`), display names
    (`Ann <ann@...>`), comments, a trailing dot, and domains that cannot receive
    mail from the Internet (`localhost`, `.test`, `.local`, one label). An
    internationalised local part (`josé@...`, SMTPUTF8) is accepted: people have
    them, `normalize_email` always accepted them, and the validator still refuses
    the unsafe characters (invisible, bidirectional, control) in them.

    Args:
        raw: The address as typed or as the app has it.

    Returns:
        The normalised address, exactly as `normalize_email` gives it.

    Raises:
        InvalidEmail: Everything `normalize_email` refuses, and every address the
            validator refuses; `detail` carries the validator's reason.

    Examples:
        >>> validate_new_email("Ann@Bücher.example")
        'ann@xn--bcher-kva.example'
        >>> try:
        ...     validate_new_email("ann@example.com.")
        ... except InvalidEmail as error:
        ...     print(error.code, "-", error.detail)
        invalid_email - email refused: An email address cannot end with a period.
    """
    address = normalize_email(raw)
    try:
        # Every option given, so a module-level default an app changes in
        # email_validator cannot loosen what bpart_auth stores.
        validate_email(
            address,
            allow_smtputf8=True,
            allow_empty_local=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            check_deliverability=False,
            test_environment=False,
            globally_deliverable=True,
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(detail=f"email refused: {exc}") from exc
    return address


def display_email(address: str) -> str:
    """A stored address as a person reads it: the domain in Unicode, not punycode.

    For showing only: compare and look up with the stored form. An address whose
    domain has no IDNA label (`xn--`) comes back unchanged, as does one whose domain
    does not decode (a row written by something else).

    Args:
        address: An address as stored (`normalize_email`'s form).

    Returns:
        The same address with its domain decoded from IDNA.

    Examples:
        >>> display_email("ann@xn--bcher-kva.example")
        'ann@bücher.example'
        >>> display_email("ann@example.com")
        'ann@example.com'
    """
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain:
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError):
        return address
