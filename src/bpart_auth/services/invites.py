"""Invitations: `auth.invites`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

from bpart_auth import errors
from bpart_auth._events import AuthEvent
from bpart_auth._input import MAX_TOKEN_INPUT, text_problem
from bpart_auth._tokens import new_token, token_hash
from bpart_auth.store._checks import refuse_unusable_invite

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from bpart_auth._events import Events
    from bpart_auth.models import Account, FlowStart, Invite, ProviderName
    from bpart_auth.passwords import PasswordHasher, PasswordPolicy
    from bpart_auth.services.flows import FlowService
    from bpart_auth.services.sessions import Session, SessionService
    from bpart_auth.store.base import AccountStore

__all__ = ["InviteService"]

DEFAULT_INVITE_LIFETIME: Final = timedelta(days=7)


class InviteService:
    """Invite managers by email; they accept with a password, Google or Microsoft.

    Reach it as `auth.invites`. Tokens have 256 bits of entropy and only their
    SHA-256 is stored; accepting creates the account and consumes the invitation in
    one transaction, once.
    """

    def __init__(
        self,
        *,
        store: AccountStore,
        flows: FlowService,
        policy: PasswordPolicy,
        hasher: PasswordHasher,
        events: Events,
        clock: Callable[[], datetime],
        sessions: SessionService,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._flows = flows
        self._policy = policy
        self._hasher = hasher
        self._events = events
        self._clock = clock

    def create(
        self,
        email: str,
        *,
        invited_by: str | None = None,
        expires_in: timedelta = DEFAULT_INVITE_LIFETIME,
        data: Mapping[str, str] | None = None,
    ) -> tuple[Invite, str]:
        """Invite someone: the invitation, and the token to put in the email's link.

        Any pending invitation for the same email is revoked.

        Args:
            email: Whom to invite.
            invited_by: The inviting account's id (for the record), or None.
            expires_in: How long the link works (7 days by default).
            data: A few strings for the app (a role, a team), kept on the invitation.

        Raises:
            EmailAlreadyRegistered: An account has this email already.
            InvalidEmail: The email is malformed.
            AccountNotFound: `invited_by` names no account.
            AccountDisabled: `invited_by` is disabled: it invites no one.
        """
        token = new_token()
        now = self._clock()
        invite = self._store.create_invite(
            email=email,
            invited_by=invited_by,
            token_hash=token_hash(token, purpose="invite"),
            expires_at=now + expires_in,
            data=data or {},
            now=now,
        )
        inviter = None if invited_by is None else self._store.get_account(invited_by)
        self._events.emit(AuthEvent(kind="invite_created", account=inviter, invite=invite))
        return invite, token

    def resend(
        self, invite_id: str, *, expires_in: timedelta = DEFAULT_INVITE_LIFETIME
    ) -> tuple[Invite, str]:
        """A new token (and expiry) for a pending or expired invitation; the old one dies.

        Raises:
            InviteAlreadyUsed: It was accepted.
            InviteRevoked: It was revoked.
            InvalidInvite: No invitation has this id.
        """
        token = new_token()
        now = self._clock()
        invite = self._store.renew_invite(
            invite_id,
            token_hash=token_hash(token, purpose="invite"),
            expires_at=now + expires_in,
            now=now,
        )
        return invite, token

    def revoke(self, invite_id: str) -> Invite:
        """Revoke a pending invitation; its link stops working."""
        return self._store.revoke_invite(invite_id, now=self._clock())

    def pending(self) -> Sequence[Invite]:
        """Invitations neither accepted, revoked nor expired, oldest first."""
        return self._store.list_pending_invites(now=self._clock())

    def check(self, token: str) -> Invite:
        """The invitation a token opens, if it can still be accepted (for the accept page).

        The token is bounded before it is hashed: anything but a str of at most 128
        characters that UTF-8 can encode is an unknown token. `accept_with_password`
        and `begin_accept` check their token here first.

        Raises:
            InvalidInvite: Unknown, forged or malformed token.
            InviteExpired: Too old.
            InviteAlreadyUsed: Accepted already.
            InviteRevoked: Revoked, replaced by a newer invitation, or its inviter
                was disabled (the invitations an account sent die with it).
        """
        problem = text_problem(token, limit=MAX_TOKEN_INPUT)
        if problem is not None:
            raise errors.InvalidInvite(detail=f"invitation token: {problem}")
        invite = self._store.find_invite(token_hash(token, purpose="invite"))
        if invite is None:
            raise errors.InvalidInvite
        refuse_unusable_invite(invite, self._clock())
        return invite

    def accept_with_password(self, token: str, *, password: str, name: str = "") -> Account:
        """Accept an invitation by choosing a password: the new account.

        Raises:
            InvalidInvite: The token is unknown, expired, used or revoked (a subclass
                says which; `InviteRevoked` too when the inviter was disabled).
            PasswordRejected: The password breaks the policy.
            EmailAlreadyRegistered: The email got an account meanwhile.
        """
        invite = self.check(token)
        password_hash = self._hasher.hash(self._policy.check(password, email=invite.email))
        hashed = token_hash(token, purpose="invite")
        account = self._store.accept_invite(
            token_hash=hashed,
            name=name,
            password_hash=password_hash,
            identity=None,
            identity_email=None,
            now=self._clock(),
        )
        accepted = self._store.find_invite(hashed) or invite
        self._events.emit(
            AuthEvent(kind="invite_accepted", account=account, invite=accepted, method="password")
        )
        return account

    def begin_accept(
        self,
        provider: ProviderName,
        token: str,
        *,
        session: Session | None = None,
        redirect_uri: str | None = None,
        return_to: str | None = None,
    ) -> FlowStart:
        """Start accepting an invitation by registering with Google or Microsoft.

        Redirect the browser to `start.url`; then `auth.complete(...)` returns an
        outcome of kind `"registered"` (and, with `session=`, signs the new account
        in to a fresh session).

        Args:
            provider: A configured provider's name (`"google"`, `"microsoft"`...).
            token: The invitation token from the link.
            session: The app's session: the flow is kept there (see
                `Auth.begin_sign_in`); without it, keep `start.sealed_flow` yourself.
            redirect_uri: Your callback URL; by default the one given to `Auth`.
            return_to: A same-site path to come back to afterwards (on the outcome).

        Raises:
            InvalidInvite: The token cannot be accepted (a subclass says why).
            ConfigurationError: The provider is not configured, or no `redirect_uri`
                was given here or to `Auth`.
        """
        self.check(token)
        start = self._flows.begin(
            provider,
            intent="accept_invite",
            redirect_uri=redirect_uri,
            return_to=return_to,
            invite_token_hash=token_hash(token, purpose="invite"),
        )
        if session is not None:
            self._sessions.keep_flow(session, start)
        return start
