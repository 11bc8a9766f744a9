"""The values bpart_auth hands to an app: frozen, slotted, compared by value.

Every datetime is timezone-aware UTC. Secrets never appear in a `repr`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from bpart_auth._email import display_email
from bpart_auth.errors import InvalidInput

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "Account",
    "FlowStart",
    "Identity",
    "Invite",
    "InviteStatus",
    "LinkedIdentity",
    "Outcome",
    "OutcomeKind",
    "ProviderName",
    "SecondFactor",
    "SecondFactorKind",
    "SignInMethods",
    "SignInStep",
    "VerifiedIdentity",
]

ProviderName: TypeAlias = str
"""A provider's name: `"google"`, `"microsoft"`, or a third-party `Provider`'s own."""

OutcomeKind = Literal["signed_in", "linked", "registered"]

SignInStep = Literal["signed_in", "second_factor", "enrol_second_factor"]
"""What a first factor led to: signed in, or a second step pending in the session."""
"""What a completed redirect flow did."""

InviteStatus = Literal["pending", "accepted", "revoked", "expired"]
"""Where an invitation stands at a given moment."""


_Value = TypeVar("_Value")


class _ReadOnlyMapping(Mapping[str, _Value]):
    """A copied, read-only mapping that, unlike `MappingProxyType`, pickles."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, _Value] | None = None) -> None:
        self._items = dict(items or {})

    def __getitem__(self, key: str) -> _Value:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise InvalidInput(field=name, detail=f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A person who can sign in to the back office.

    Attributes:
        id: Opaque, stable identifier chosen by the store.
        email: Normalised email address; unique case-insensitively. Its domain is
            in IDNA form (`ann@xn--bcher-kva.example`): compare and send mail with
            it, and show `display_email` to people.
        created_at: When the account was created.
        credentials_changed_at: Last change of password or linked identities, or
            the moment the account was disabled: every session stamped before it
            ends (`auth.sessions.account`).
        name: Display name; may be empty.
        has_password: True when the account can sign in with a password. The
            password's hash is not on the account (so not in a `repr`,
            `dataclasses.asdict`, a pickle or an event): only the store keeps it.
        disabled: A disabled account signs in by no method.

    Examples:
        >>> from datetime import datetime, timezone
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> ann = Account(id="a1", email="ann@example.com", created_at=now,
        ...               credentials_changed_at=now, has_password=True)
        >>> ann.has_password, ann.enabled
        (True, True)
        >>> Account(id="a2", email="zoe@xn--bcher-kva.example", created_at=now,
        ...         credentials_changed_at=now).display_email
        'zoe@bücher.example'
    """

    id: str
    email: str
    created_at: datetime
    credentials_changed_at: datetime
    name: str = ""
    has_password: bool = False
    disabled: bool = False

    def __post_init__(self) -> None:
        _require_aware("created_at", self.created_at)
        _require_aware("credentials_changed_at", self.credentials_changed_at)

    @property
    def display_email(self) -> str:
        """The email as people read it: the domain in Unicode (`ann@bücher.example`).

        For pages and messages only; look up and compare with `email`.
        """
        return display_email(self.email)

    @property
    def enabled(self) -> bool:
        """True unless the account is disabled."""
        return not self.disabled


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a provider says a person is: the key an account is linked by.

    Identity is (provider, issuer, subject), never an email address.

    Attributes:
        provider: The provider's name: `"google"`, `"microsoft"`, or a third-party
            `Provider`'s.
        issuer: Google: its issuer; Microsoft: the tenant id (`tid`); another
            provider: its issuer.
        subject: Google: `sub`; Microsoft: the object id (`oid`).

    Examples:
        >>> a = Identity("microsoft", "72f988bf-86f1-41af-91ab-2d7cd011db47", "oid-1")
        >>> a == Identity("microsoft", "72f988bf-86f1-41af-91ab-2d7cd011db47", "oid-1")
        True
        >>> len({a, a})
        1
    """

    provider: ProviderName
    issuer: str
    subject: str

    def __post_init__(self) -> None:
        # One combined test on the hot path (identities are lookup keys); find the
        # culprit only on failure.
        if "" in (self.provider, self.issuer, self.subject):
            empty = next(n for n in ("provider", "issuer", "subject") if not getattr(self, n))
            raise InvalidInput(field=empty, detail=f"Identity.{empty} must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkedIdentity:
    """An identity as linked to an account: what a profile page lists.

    Attributes:
        account_id: The account it signs in to.
        identity: The (provider, issuer, subject) key.
        email: The email the provider reported when it was linked, for display
            only (never used to find the account).
        linked_at: When it was linked.
    """

    account_id: str
    identity: Identity
    email: str | None
    linked_at: datetime

    def __post_init__(self) -> None:
        _require_aware("linked_at", self.linked_at)


SecondFactorKind = Literal["totp", "passkey"]
"""A second factor's kind: an authenticator app (TOTP, RFC 6238) or a passkey (WebAuthn)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondFactor:
    """A second factor of an account: what a profile page lists (never its secret).

    Attributes:
        id: The store's id for it.
        account_id: The account it belongs to.
        kind: `"totp"` (an authenticator app) or `"passkey"`.
        name: The name the user gave it ("Phone", "YubiKey 5"), at most 200 characters.
        created_at: When it was added.
        last_used_at: When it last passed a sign-in, or None.
    """

    id: str
    account_id: str
    kind: SecondFactorKind
    name: str
    created_at: datetime
    last_used_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware("created_at", self.created_at)
        if self.last_used_at is not None:
            _require_aware("last_used_at", self.last_used_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedIdentity:
    """What a provider vouches for after a fully validated ID token.

    Attributes:
        identity: The (provider, issuer, subject) key.
        email: The email claim, if any. Only trusted when `email_verified`.
        email_verified: Whether the provider verified `email`.
        name: Display name from the token, may be empty.
        tenant_id: Microsoft `tid`; None for Google.
        hosted_domain: Google Workspace `hd`; None otherwise.
        claims: All validated claims, read-only, excluded from comparison.
    """

    identity: Identity
    email: str | None = None
    email_verified: bool = False
    name: str = ""
    tenant_id: str | None = None
    hosted_domain: str | None = None
    claims: Mapping[str, Any] = field(
        default_factory=_ReadOnlyMapping, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", _ReadOnlyMapping(self.claims))


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """An invitation for a manager to join, by email.

    The token that accepts it is handed out once, at creation; only its hash is
    stored, so it is not part of this value.

    Attributes:
        id: Opaque, stable identifier chosen by the store.
        email: Normalised email address the invitation was sent to, its domain
            in IDNA form; send the mail to it and show `display_email` to people.
        invited_by: Id of the inviting account, or None (scripts).
        created_at: When it was created (or last resent).
        expires_at: After this moment it can no longer be accepted.
        accepted_at: When it was accepted, or None.
        revoked_at: When it was revoked, or None.
        account_id: The account created by accepting it, or None.
        data: Free-form strings the app attached (a role, a team), read-only.

    Examples:
        >>> from datetime import datetime, timedelta, timezone
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> invite = Invite(id="i1", email="ann@example.com", invited_by=None,
        ...                 created_at=now, expires_at=now + timedelta(days=7))
        >>> invite.status(now), invite.status(now + timedelta(days=8))
        ('pending', 'expired')
        >>> Invite(id="i2", email="bob@xn--mnchen-3ya.de", invited_by=None,
        ...        created_at=now, expires_at=now).display_email
        'bob@münchen.de'
    """

    id: str
    email: str
    invited_by: str | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None
    account_id: str | None = None
    data: Mapping[str, str] = field(default_factory=_ReadOnlyMapping, hash=False)

    def __post_init__(self) -> None:
        for name in ("created_at", "expires_at", "accepted_at", "revoked_at"):
            _require_aware(name, getattr(self, name))
        object.__setattr__(self, "data", _ReadOnlyMapping(self.data))

    @property
    def display_email(self) -> str:
        """The email as people read it: the domain in Unicode (`bob@münchen.de`).

        For pages and messages only; send the invitation to `email`.
        """
        return display_email(self.email)

    def status(self, now: datetime) -> InviteStatus:
        """Where the invitation stands at `now`.

        Args:
            now: A timezone-aware moment, usually the current time.

        Returns:
            `"accepted"` or `"revoked"` once either happened, else `"expired"`
            when `now` is at or past `expires_at`, else `"pending"`.
        """
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "pending"


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStart:
    """The start of a redirect flow (`begin_sign_in`, `begin_link`, `begin_accept`).

    Redirect the browser to `url`. With `session=`, `begin_*` has kept the flow in
    the app's session already; without, keep `sealed_flow` yourself and give it back
    to `Auth.complete(params, sealed_flow=...)`.

    Attributes:
        url: The provider's authorization URL.
        state: The OAuth `state` of this flow: public, random, in `url`; the callback
            brings it back as its `state` parameter. Not a secret and not enough to
            complete the flow.
        sealed_flow: The sealed, opaque flow state (encrypted, authenticated): what
            `complete` needs besides the callback. Not in `repr`.
        expires_at: After this moment `complete` refuses the flow.
    """

    url: str
    state: str
    sealed_flow: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What `Auth.complete` did.

    Attributes:
        kind: `"signed_in"`, `"linked"` or `"registered"`.
        account: The account signed in, linked to, or created.
        identity: The provider identity involved.
        message: A sentence fit for the app's notification
            ("Your Microsoft account is now linked.").
        return_to: The same-site path given to `begin_*`, or None.
        step: With `complete(..., session=...)`: `"signed_in"`, or, when the account
            has a second factor (or must enrol one), `"second_factor"` /
            `"enrol_second_factor"`: the session holds a pending sign-in, send the
            user to that step (`auth.second_factors`).
        provider_mfa: The provider's ID token says it did multi-factor
            authentication (`amr` holds `"mfa"`).
    """

    kind: OutcomeKind
    account: Account
    identity: Identity
    message: str
    return_to: str | None = None
    step: SignInStep = "signed_in"
    provider_mfa: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInMethods:
    """What an account can sign in with: what a profile page shows.

    Attributes:
        password: Whether the account has a password.
        identities: The linked provider identities, oldest first.
    """

    password: bool
    identities: tuple[LinkedIdentity, ...]

    @property
    def providers(self) -> frozenset[str]:
        """The names of the linked providers."""
        return frozenset(link.identity.provider for link in self.identities)

    def can_unlink(self, provider: str) -> bool:
        """Whether unlinking this provider leaves another way to sign in."""
        if provider not in self.providers:
            return False
        return self.password or len(self.identities) > 1
