"""`Auth`: the one object an app holds."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth._events import AuthEvent, EventKind, Events
from bpart_auth._secretbox import SecretBox
from bpart_auth._single_use import MemoryGuard, SingleUseGuard, StoreGuard
from bpart_auth._throttle import Throttle
from bpart_auth.models import SignInMethods
from bpart_auth.oidc.flowstate import DEFAULT_LIFETIME, FlowSealer
from bpart_auth.passwords import (
    RFC_9106_LOW_MEMORY,
    Argon2Parameters,
    PasswordHasher,
    PasswordPolicy,
)
from bpart_auth.services.flows import FlowService, FlowSettings, callback_parameters
from bpart_auth.services.invites import InviteService
from bpart_auth.services.passwords import PasswordService
from bpart_auth.services.second_factors import (
    SecondFactorGate,
    SecondFactorPolicy,
    SecondFactorService,
)
from bpart_auth.services.sessions import SessionService
from bpart_auth.store.base import SecondFactorRecords

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from bpart_auth.models import Account, FlowStart, Outcome, ProviderName
    from bpart_auth.providers.base import Provider
    from bpart_auth.services.sessions import Session
    from bpart_auth.store.base import AccountStore


_PENDING_PURPOSE: Final = b"bpart_auth pending sign-in v1"
# Lowercase and URL-safe; 50 characters fit the SQL store's provider column.
_PROVIDER_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")
_NEXT_STEP_MESSAGES: Final = {
    "second_factor": "One more step: confirm it's you with your authenticator app or passkey.",
    "enrol_second_factor": "This site requires a second factor: set one up to finish signing in.",
}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Auth:
    """Sign-in for an admin back office: the facade an app calls from its routes.

    Args:
        store: Where accounts live (`MemoryStore`, `SQLStore`, or your own).
        secret_key: Seals the flow state of redirect flows (at least 32 bytes).
            Needed when `providers` are given.
        fallback_secret_keys: Older secret keys: they still open flow states sealed
            before a rotation, and never seal.
        providers: The identity providers (`GoogleProvider`, `MicrosoftProvider`, or
            a third party's `Provider`). Each name is unique, lowercase and URL-safe:
            `[a-z0-9][a-z0-9_.-]*`, at most 50 characters.
        redirect_uri: The app's callback URL, as registered with the providers
            (`"https://app.example/auth/callback"`): what `begin_sign_in`,
            `begin_link` and `invites.begin_accept` use when given none. Its
            origin is the app's, for `sessions.cross_origin_refused`. Pin it in
            the configuration rather than build it from a request's `Host` header.
        single_use: Refuses a replayed callback. By default the store itself when
            it can (`SQLStore`, `MemoryStore`: shared by every app instance on the
            same database), else this process's memory.
        flow_lifetime: How long a redirect flow may take (10 minutes by default).
        invite_email_must_match: Providers whose email must equal the invited
            email when an invitation is accepted with them. By default Google
            only, whose email must also be verified. With `"microsoft"`, the
            Microsoft account's `email` claim must equal the invited address: a
            consistency check, not proof of ownership (Entra verifies no email;
            the invitation token is the proof).
        password_policy: Rules for new passwords; NIST SP 800-63B-4 defaults.
        password_hashing: argon2id parameters; RFC 9106's low-memory profile by
            default. Tests may pass `CHEAP_FOR_TESTS`. Building an `Auth` runs one
            hash with them: the dummy hash that unknown-email sign-ins verify.
        throttle: Limits on failed sign-ins. By default (5 per account, 50 per
            address, in 15 minutes) counted by the store when it can keep them
            (`SQLStore`, through its `throttle_backend()`: every app instance on
            the same database shares the limits), else in this process's memory
            (`MemoryStore`). Pass one for other limits, or on Redis.
        second_factor: How second factors are used (`SecondFactorPolicy`): optional
            by default, on any store that keeps them (`MemoryStore`, `SQLStore`);
            `SecondFactorPolicy(required=True)` to require one, `relying_party=` for
            passkeys. Needs `secret_key` (TOTP secrets are sealed under a key derived
            from it) and the `mfa` extra to enrol.
        clock: Returns the current time (timezone-aware); for tests.

    Examples:
        >>> from bpart_auth import Auth, MemoryStore
        >>> from bpart_auth.testing import CHEAP_FOR_TESTS
        >>> auth = Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS)
        >>> admin = auth.create_account(email="Boss@Example.com",
        ...                             password="correct horse battery staple")
        >>> auth.passwords.sign_in("boss@example.com",
        ...                        "correct horse battery staple") == admin
        True
    """

    def __init__(
        self,
        store: AccountStore,
        *,
        secret_key: str | bytes | None = None,
        fallback_secret_keys: Sequence[str | bytes] = (),
        providers: Sequence[Provider] = (),
        redirect_uri: str | None = None,
        single_use: SingleUseGuard | None = None,
        flow_lifetime: timedelta = DEFAULT_LIFETIME,
        invite_email_must_match: Collection[str] = ("google",),
        password_policy: PasswordPolicy | None = None,
        password_hashing: Argon2Parameters = RFC_9106_LOW_MEMORY,
        throttle: Throttle | None = None,
        second_factor: SecondFactorPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._clock = clock
        self.sessions = SessionService(store=store, redirect_uri=redirect_uri, clock=clock)
        """The app's session: stamps and the cross-origin check (`SessionService`)."""
        providers_by_name = _index_providers(providers)
        sealer = None
        if secret_key is not None:
            sealer = FlowSealer(
                secret_key,
                fallback_secret_keys=fallback_secret_keys,
                lifetime=flow_lifetime,
                clock=clock,
            )
        elif providers_by_name:
            raise errors.ConfigurationError(
                detail="Auth: providers need a secret_key to seal the flow state"
            )
        if single_use is None:
            single_use = (
                StoreGuard(store, clock=clock)  # type: ignore[arg-type]  # checked by hasattr
                if hasattr(store, "consume_once")
                else MemoryGuard(clock=clock)
            )
        self._events = Events()
        self._policy = password_policy if password_policy is not None else PasswordPolicy()
        self._hasher = PasswordHasher(password_hashing)
        self._flows = FlowService(
            store=store,
            providers=providers_by_name,
            settings=FlowSettings(
                sealer=sealer,
                single_use=single_use,
                lifetime=flow_lifetime,
                invite_email_must_match=frozenset(invite_email_must_match),
                clock=clock,
                redirect_uri=redirect_uri,
            ),
            events=self._events,
        )
        throttle = throttle if throttle is not None else _default_throttle(store)
        self.passwords = PasswordService(
            store=store,
            policy=self._policy,
            hasher=self._hasher,
            throttle=throttle,
            clock=clock,
            events=self._events,
        )
        """Password sign-in, change and reset (`PasswordService`)."""
        self.invites = InviteService(
            store=store,
            flows=self._flows,
            policy=self._policy,
            hasher=self._hasher,
            events=self._events,
            clock=clock,
            sessions=self.sessions,
        )
        """Invitations (`InviteService`)."""
        self._second_factors = _second_factors(
            store,
            policy=second_factor,
            secret_key=secret_key,
            fallback_secret_keys=fallback_secret_keys,
            sessions=self.sessions,
            single_use=single_use,
            throttle=throttle,
            events=self._events,
            clock=clock,
        )

    @property
    def second_factors(self) -> SecondFactorService:
        """Authenticator apps, recovery codes and passkeys (`SecondFactorService`).

        Raises:
            ConfigurationError: This `Auth` has no `secret_key`, or its store keeps no
                second factors (it does not implement `SecondFactorRecords`).
        """
        if self._second_factors is None:
            raise errors.ConfigurationError(
                detail="second factors need Auth(secret_key=...) and a store that keeps them"
            )
        return self._second_factors

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The configured providers' names, in the order given (for login pages).

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> Auth(MemoryStore()).provider_names
            ()
        """
        return self._flows.provider_names

    @property
    def password_hashing(self) -> Argon2Parameters:
        """The argon2id parameters of new password hashes (`password_hashing=`).

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> from bpart_auth.testing import CHEAP_FOR_TESTS
            >>> Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS).password_hashing.memory_cost
            8
        """
        return self._hasher.parameters

    # Accounts

    def create_account(self, *, email: str, password: str | None = None, name: str = "") -> Account:
        """Create an account directly: the first admin, or from a script.

        Args:
            email: The account's email; normalised, unique case-insensitively, and
                validated by the store (email-validator) before it is written.
            password: Checked against the password policy and hashed; None creates
                an account that signs in only with a linked identity.
            name: Display name: at most 200 characters, no control, bidi-override or
                other invisible format characters.

        Returns:
            The new account.

        Raises:
            InvalidEmail: The email is malformed, or refused on write (a trailing dot,
                a quoted local part, a domain literal...); `detail` says why.
            InvalidInput: The name is too long or holds a refused character.
            PasswordRejected: The password breaks the policy (a subclass says how).
            EmailAlreadyRegistered: An account has this email already.
        """
        address = normalize_email(email)
        password_hash = None
        if password is not None:
            password_hash = self._hasher.hash(self._policy.check(password, email=address))
        return self._store.create_account(
            email=address, name=name, password_hash=password_hash, now=self._clock()
        )

    def get_account(self, account_id: str) -> Account:
        """The account with this id; apps call it on each request to check `disabled`.

        Raises:
            AccountNotFound: No account has this id.
        """
        account = self._store.get_account(account_id)
        if account is None:
            raise errors.AccountNotFound
        return account

    def disable_account(self, account_id: str) -> Account:
        """Disable an account: it can do nothing until enabled again.

        A disabled account signs in by no method (`AccountDisabled`), gets no reset
        token, changes no password, links nothing and invites no one, and
        `sessions.account` ends its sessions. In the same transaction its reset
        tokens are deleted and the invitations it sent that are still open are
        revoked. Its password and linked identities are kept; it may still be
        unlinked (removing a way in), for instance before enabling it again.

        Raises:
            AccountNotFound: No account has this id.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> boss = auth.create_account(email="boss@example.com")
            >>> invite, token = auth.invites.create("ann@example.com", invited_by=boss.id)
            >>> auth.disable_account(boss.id).disabled
            True
            >>> auth.invites.pending()  # its invitation died with it
            []
        """
        return self._store.update_account(account_id, disabled=True, now=self._clock())

    def enable_account(self, account_id: str) -> Account:
        """Enable a disabled account again: it signs in as before.

        Its password and linked identities work again. What disabling killed stays
        dead: reset tokens and the invitations it had sent (send new ones).

        Raises:
            AccountNotFound: No account has this id.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> ann = auth.create_account(email="ann@example.com")
            >>> auth.disable_account(ann.id).disabled, auth.enable_account(ann.id).disabled
            (True, False)
        """
        return self._store.update_account(account_id, disabled=False)

    # Redirect flows

    def begin_sign_in(
        self,
        provider: ProviderName,
        *,
        session: Session | None = None,
        redirect_uri: str | None = None,
        return_to: str | None = None,
    ) -> FlowStart:
        """Start signing in with a provider: redirect the browser to `start.url`.

        With `session=` (the app's session), the flow is kept there under its OAuth
        `state`, so each tab can finish its own flow; `complete(params,
        session=session)` finds it. Without, keep `start.sealed_flow` yourself.

        Args:
            provider: A configured provider's name (`"google"`, `"microsoft"`...).
            session: The app's session (any mutable mapping).
            redirect_uri: Your callback URL, registered with the provider; by
                default the one given to `Auth`.
            return_to: A same-site path to come back to afterwards (on the outcome).

        Returns:
            The URL to redirect to, the OAuth `state` and the sealed flow.

        Raises:
            ConfigurationError: The provider is not configured, or no `redirect_uri`
                was given here or to `Auth`.
            InvalidReturnTo: `return_to` is not a same-site relative path.
            ProviderUnavailable: The provider's discovery document could not be read.
        """
        start = self._flows.begin(
            provider, intent="sign_in", redirect_uri=redirect_uri, return_to=return_to
        )
        if session is not None:
            self.sessions.keep_flow(session, start)
        return start

    def begin_link(
        self,
        provider: ProviderName,
        *,
        session: Session | None = None,
        account_id: str | None = None,
        redirect_uri: str | None = None,
        return_to: str | None = None,
    ) -> FlowStart:
        """Start linking a provider to a signed-in account (from the profile page).

        Then `complete` returns an outcome of kind `"linked"` with a message for the
        app's notification. The account id is sealed into the flow: the flow can
        complete for that account only.

        Args:
            provider: A configured provider's name (`"google"`, `"microsoft"`...).
            session: The app's session: the account is the one signed in to it, and
                the flow is kept in it (see `begin_sign_in`).
            account_id: Without `session=`: the signed-in account.
            redirect_uri: Your callback URL; by default the one given to `Auth`.
            return_to: A same-site path to come back to afterwards (on the outcome).

        Raises:
            SignInRequired: `session` is signed in to no account (or it has ended).
            AccountNotFound: No account has this id.
            AccountDisabled: The account is disabled.
            ConfigurationError: The provider is not configured, no `redirect_uri`
                was given here or to `Auth`, neither `session` nor `account_id` was
                given, or `account_id` is not the session's account.
        """
        if session is not None:
            signed_in = self.sessions.current(session)
            if signed_in is None:
                raise errors.SignInRequired
            if account_id is not None and account_id != signed_in.id:
                raise errors.ConfigurationError(
                    detail="begin_link: account_id is not the session's account"
                )
            account = signed_in
        elif account_id is None:
            raise errors.ConfigurationError(detail="begin_link needs session= or account_id=")
        else:
            account = self.get_account(account_id)
        if account.disabled:
            raise errors.AccountDisabled
        start = self._flows.begin(
            provider,
            intent="link",
            redirect_uri=redirect_uri,
            return_to=return_to,
            account_id=account.id,
        )
        if session is not None:
            self.sessions.keep_flow(session, start)
        return start

    def complete(
        self,
        params: Mapping[str, str],
        *,
        session: Session | None = None,
        sealed_flow: str | None = None,
        signed_in_account_id: str | None = None,
    ) -> Outcome:
        """Finish any redirect flow (sign-in, link, invitation), from the callback request.

        With `session=`, the flow is the one `begin_*` kept in that session for the
        callback's `state` (a flow begun in another session is refused), and the
        session is updated: a sign-in or a registration signs the account in to a
        fresh session (`sessions.sign_in`), a link keeps the session signed in
        (`sessions.refresh`), and a link flow completes only while the session is
        signed in to the account that began it. Without `session=`, give the
        `sealed_flow` you kept, and `signed_in_account_id`; then sign in yourself.

        Args:
            params: The callback's query parameters.
            session: The app's session, given to `begin_*` too.
            sealed_flow: Without `session=`: `start.sealed_flow`, as you kept it.
            signed_in_account_id: Without `session=`: the account signed in to this
                session, if any. A link flow then completes only for that account.

        Returns:
            What happened: `outcome.kind` is `"signed_in"`, `"linked"` or
            `"registered"`, with the account, the identity, a message for the user
            and `return_to`.

        Raises:
            ConfigurationError: Both `session` and `sealed_flow` were given.
            InvalidFlowState: The flow is missing (not in this session), tampered
                with, expired, used before, or does not match the callback (another
                flow or provider); or `params` is not a mapping, or a parameter the
                protocol reads is not a str of at most 16384 characters (a list,
                None, a number).
            ConsentDeclined: The user declined at the provider.
            AdminConsentRequired: The user's organization must approve the app.
            ProviderError: The provider refused (a subclass says how).
            IdentityNotLinked: (sign-in) No account has this identity.
            EmailNotVerified: The provider did not verify the email that had to match.
            AccountDisabled: The account is disabled.
            IdentityAlreadyLinked: (link, invitation) Another account has the identity.
            InvalidInvite: (invitation) It can no longer be accepted; a subclass,
                `InviteEmailMismatch`, when the provider's email must be the invited
                one and is not.
        """
        if session is None:
            return self._flows.complete(
                sealed_flow,
                params,
                signed_in_account_id=signed_in_account_id,
            )
        if sealed_flow is not None or signed_in_account_id is not None:
            raise errors.ConfigurationError(
                detail="complete: with session=, the session holds the flow and the account"
            )
        clean = callback_parameters(params)
        sealed = self.sessions.take_flow(session, clean.get("state"))
        outcome = self._flows.complete(
            sealed if sealed is not None else "",
            clean,
            # A link completes only for the account this session is signed in to.
            signed_in_account_id=self.sessions.signed_in_account_id(session) or "",
        )
        if outcome.kind == "linked":
            self.sessions.refresh(session, outcome.account)
            return outcome
        step = self.sessions.sign_in(session, outcome.account, provider_mfa=outcome.provider_mfa)
        if step == "signed_in":
            return outcome
        return dataclasses.replace(outcome, step=step, message=_NEXT_STEP_MESSAGES[step])

    def unlink(self, account_id: str, provider: ProviderName) -> Account:
        """Remove the account's identity of a provider: the account as it is now.

        Unlinking changes the account's credentials (`credentials_changed_at`),
        which ends its other sessions; call `auth.sessions.refresh(session, account)`
        with the returned account to keep the user's own session. When no identity of the
        provider was linked, nothing changes and the account is returned as it was.
        The `unlinked` event carries the identity removed. It works on a disabled
        account too: it only removes a way in (say, a compromised identity before
        the account is enabled again).

        Raises:
            LastSignInMethod: It is the account's only way to sign in.
            AccountNotFound: No account has this id.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> ann = auth.create_account(email="ann@example.com", password=None)
            >>> auth.unlink(ann.id, "microsoft") == ann  # nothing was linked
            True
        """
        removed = self._store.unlink_identity(
            account_id=account_id, provider=provider, now=self._clock()
        )
        account = self.get_account(account_id)
        if removed is not None:
            self._events.emit(
                AuthEvent(kind="unlinked", account=account, identity=removed.identity)
            )
        return account

    def sign_in_methods(self, account_id: str) -> SignInMethods:
        """What an account can sign in with, for the profile page.

        Raises:
            AccountNotFound: No account has this id.
        """
        account = self.get_account(account_id)
        return SignInMethods(
            password=account.has_password,
            identities=tuple(self._store.list_identities(account_id)),
        )

    def on(self, event: EventKind, callback: Callable[[AuthEvent], object]) -> None:
        """Call `callback(event)` after every event of a kind, to audit or send emails.

        Kinds: `signed_in`, `linked`, `unlinked`, `invite_created`,
        `invite_accepted`, `password_changed`, `second_factor_added`,
        `second_factor_removed`, `recovery_codes_created`, `recovery_code_used`. A
        failing callback does not undo the change; its exception is logged on the
        `bpart_auth.events` logger.

        Raises:
            ConfigurationError: An unknown kind, or a callback that is not callable.
        """
        self._events.on(event, callback)


def _default_throttle(store: AccountStore) -> Throttle:
    """On the store when it keeps throttle state (`SQLStore`), like the single-use guard."""
    shared_backend = getattr(store, "throttle_backend", None)
    if callable(shared_backend):
        return Throttle(backend=shared_backend())
    return Throttle()


def _index_providers(providers: Sequence[Provider]) -> dict[str, Provider]:
    index: dict[str, Provider] = {}
    for provider in providers:
        name = provider.name
        # Names go in URLs (`/login/<provider>`) and the store's provider column.
        if _PROVIDER_NAME.fullmatch(name) is None:
            raise errors.ConfigurationError(
                detail=f"Auth: a provider's name must match {_PROVIDER_NAME.pattern}, not {name!r}"
            )
        if name in index:
            raise errors.ConfigurationError(detail=f"Auth: two providers named {provider.name!r}")
        index[provider.name] = provider
    return index


def _second_factors(
    store: AccountStore,
    *,
    policy: SecondFactorPolicy | None,
    secret_key: str | bytes | None,
    fallback_secret_keys: Sequence[str | bytes],
    sessions: SessionService,
    single_use: SingleUseGuard,
    throttle: Throttle,
    events: Events,
    clock: Callable[[], datetime],
) -> SecondFactorService | None:
    """The second-factor service, and the sign-in step in `sessions`, where they can be.

    The step is installed on every store that keeps factors, configured or not, so an
    account with a factor never signs in on its first factor alone.
    """
    keeps_factors = isinstance(store, SecondFactorRecords)
    if policy is not None and not keeps_factors:
        raise errors.ConfigurationError(
            detail="Auth: second_factor= needs a store that implements SecondFactorRecords"
        )
    if policy is not None and secret_key is None:
        raise errors.ConfigurationError(detail="Auth: second_factor= needs a secret_key")
    if not keeps_factors:
        return None
    policy = policy if policy is not None else SecondFactorPolicy()
    box = None
    if secret_key is not None:
        box = SecretBox(
            secret_key,
            fallback_secret_keys=fallback_secret_keys,
            purpose=_PENDING_PURPOSE,
            error=errors.SignInRequired,
            noun="pending sign-in",
        )
    gate = SecondFactorGate(store=store, policy=policy, box=box, single_use=single_use, clock=clock)
    sessions._gate = gate  # noqa: SLF001 - the sign-in step, installed once here
    if secret_key is None or box is None:
        return None
    return SecondFactorService(
        store=store,
        gate=gate,
        sessions=sessions,
        totp_key=(secret_key, tuple(fallback_secret_keys)),
        box=box,
        policy=policy,
        single_use=single_use,
        throttle=throttle,
        events=events,
        clock=clock,
    )
