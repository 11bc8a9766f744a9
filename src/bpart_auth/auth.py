"""`Auth`: the one object an app holds."""

from __future__ import annotations

import dataclasses
import hmac
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth._single_use import MemoryGuard, SingleUseGuard, StoreGuard
from bpart_auth.flowstate import DEFAULT_LIFETIME, FlowSealer, new_flow_state
from bpart_auth.models import FlowStart, Outcome
from bpart_auth.passwords import (
    RFC_9106_LOW_MEMORY,
    Argon2Parameters,
    PasswordHasher,
    PasswordPolicy,
)
from bpart_auth.services.passwords import PasswordService
from bpart_auth.services.signin import sign_in_with_identity

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from bpart_auth._throttle import Throttle
    from bpart_auth.flowstate import FlowIntent, FlowState
    from bpart_auth.models import Account, ProviderName
    from bpart_auth.providers.base import Provider
    from bpart_auth.store.base import AccountStore

_FLOW_STATE: Final = "flow_state"
_PROVIDER_NAMES: Final = {"google": "Google", "microsoft": "Microsoft"}


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
        providers: The identity providers (`GoogleProvider`, `MicrosoftProvider`).
        single_use: Refuses a replayed callback. By default the store itself when
            it can (`SQLStore`, `MemoryStore`: shared by every app instance on the
            same database), else this process's memory.
        flow_lifetime: How long a redirect flow may take (10 minutes by default).
        password_policy: Rules for new passwords; NIST SP 800-63B-4 defaults.
        password_hashing: argon2id parameters; RFC 9106's low-memory profile by
            default. Tests may pass `CHEAP_FOR_TESTS`.
        throttle: Limits on failed sign-ins; in-process by default. Pass one on
            Redis or the SQL store when several app instances run.
        clock: Returns the current time (timezone-aware); for tests.

    Examples:
        >>> from bpart_auth import Auth, MemoryStore
        >>> from bpart_auth.testing import CHEAP_FOR_TESTS
        >>> auth = Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS)
        >>> admin = auth.create_account(email="Boss@Example.com",
        ...                             password="correct horse battery staple")
        >>> auth.sign_in_with_password("boss@example.com",
        ...                            "correct horse battery staple") == admin
        True
    """

    def __init__(
        self,
        store: AccountStore,
        *,
        secret_key: str | bytes | None = None,
        fallback_secret_keys: Sequence[str | bytes] = (),
        providers: Sequence[Provider] = (),
        single_use: SingleUseGuard | None = None,
        flow_lifetime: timedelta = DEFAULT_LIFETIME,
        password_policy: PasswordPolicy | None = None,
        password_hashing: Argon2Parameters = RFC_9106_LOW_MEMORY,
        throttle: Throttle | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._clock = clock
        self._providers = _index_providers(providers)
        self._sealer = None
        if secret_key is not None:
            self._sealer = FlowSealer(
                secret_key,
                fallback_secret_keys=fallback_secret_keys,
                lifetime=flow_lifetime,
                clock=clock,
            )
        elif self._providers:
            raise errors.ConfigurationError(
                detail="Auth: providers need a secret_key to seal the flow state"
            )
        self._flow_lifetime = flow_lifetime
        if single_use is None:
            single_use = (
                StoreGuard(store, clock=clock)  # type: ignore[arg-type]  # checked by hasattr
                if hasattr(store, "consume_once")
                else MemoryGuard(clock=clock)
            )
        self._single_use = single_use
        self._policy = password_policy if password_policy is not None else PasswordPolicy()
        self._hasher = PasswordHasher(password_hashing)
        self.passwords = PasswordService(
            store=store, policy=self._policy, hasher=self._hasher, throttle=throttle, clock=clock
        )
        """Password sign-in, change and reset (`PasswordService`)."""

    # Accounts

    def create_account(self, *, email: str, password: str | None = None, name: str = "") -> Account:
        """Create an account directly: the first admin, or from a script.

        Args:
            email: The account's email; normalised, unique case-insensitively.
            password: Checked against the password policy and hashed; None creates
                an account that signs in only with a linked identity.
            name: Display name.

        Returns:
            The new account.

        Raises:
            InvalidEmail: The email is malformed.
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
        """Disable an account: it signs in by no method until enabled again.

        Raises:
            AccountNotFound: No account has this id.
        """
        return self._store.update_account(account_id, disabled=True)

    def enable_account(self, account_id: str) -> Account:
        """Enable a disabled account again.

        Raises:
            AccountNotFound: No account has this id.
        """
        return self._store.update_account(account_id, disabled=False)

    # Passwords

    def sign_in_with_password(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> Account:
        """Sign in with email and password (see `PasswordService.sign_in`)."""
        return self.passwords.sign_in(email, password, client_address=client_address)

    # Redirect flows

    def begin_sign_in(
        self, provider: ProviderName, *, redirect_uri: str, return_to: str | None = None
    ) -> FlowStart:
        """Start signing in with a provider.

        Store `start.state` in the user's session, then redirect to `start.url`.
        The provider sends the browser back to `redirect_uri`; hand that request's
        query parameters to `complete`.

        Args:
            provider: `"google"` or `"microsoft"`, as configured.
            redirect_uri: Your callback URL, registered with the provider.
            return_to: A same-site path to come back to afterwards (on the outcome).

        Returns:
            The URL to redirect to and the sealed state to keep.

        Raises:
            ConfigurationError: The provider is not configured.
            InvalidReturnTo: `return_to` is not a same-site relative path.
            ProviderUnavailable: The provider's discovery document could not be read.
        """
        return self._begin(
            provider, intent="sign_in", redirect_uri=redirect_uri, return_to=return_to
        )

    def complete(self, *, state: str, params: Mapping[str, str]) -> Outcome:
        """Finish any redirect flow, from the callback request.

        Args:
            state: The sealed state `begin_*` returned (from the session; pop it).
            params: The callback's query (or form) parameters.

        Returns:
            What happened: `outcome.kind` is `"signed_in"` (for now), with the
            account, the identity, a message for the user and `return_to`.

        Raises:
            InvalidFlowState: The state is missing, tampered with, expired, used
                before, or does not match the callback (another flow or provider).
            ConsentDeclined: The user declined at the provider.
            ProviderError: The provider refused (a subclass says how).
            IdentityNotLinked: No account has this identity.
            EmailNotVerified: The provider did not verify the matching email.
            AccountDisabled: The account is disabled.
        """
        flow = self._open(state, params)
        provider = self._providers[flow.provider]  # _open checked it is configured
        verified = provider.complete(flow, params)
        account = sign_in_with_identity(self._store, provider, verified, clock=self._clock)
        name = _PROVIDER_NAMES.get(provider.name, provider.name)
        return Outcome(
            kind="signed_in",
            account=account,
            identity=verified.identity,
            message=f"You are signed in with {name}.",
            return_to=flow.return_to,
        )

    def _begin(
        self,
        provider_name: str,
        *,
        intent: FlowIntent,
        redirect_uri: str,
        return_to: str | None,
    ) -> FlowStart:
        provider = self._providers.get(provider_name)
        if provider is None or self._sealer is None:
            raise errors.ConfigurationError(detail=f"Auth: no provider {provider_name!r}")
        flow = new_flow_state(
            intent=intent,
            provider=provider.name,
            redirect_uri=redirect_uri,
            return_to=return_to,
            now=self._clock(),
            lifetime=self._flow_lifetime,
        )
        url, extra = provider.authorization_url(flow)
        if extra:
            flow = dataclasses.replace(flow, extra=extra)
        return FlowStart(url=url, state=self._sealer.seal(flow), expires_at=flow.expires_at)

    def _open(self, sealed: str, params: Mapping[str, str]) -> FlowState:
        """Open the sealed state and check it belongs to this callback, once."""
        if self._sealer is None:
            raise errors.InvalidFlowState(detail="Auth has no secret_key")
        flow = self._sealer.open(sealed)
        if flow.provider not in self._providers:
            raise errors.InvalidFlowState(detail=f"no provider {flow.provider!r} configured")
        returned = params.get("state")
        if not isinstance(returned, str) or not hmac.compare_digest(
            returned.encode("utf-8", "surrogatepass"), flow.state.encode()
        ):
            raise errors.InvalidFlowState(detail="the callback's state is not this flow's")
        if not self._single_use.consume(
            purpose=_FLOW_STATE, key=flow.state, expires_at=flow.expires_at
        ):
            raise errors.InvalidFlowState(detail="this flow was completed already")
        return flow


def _index_providers(providers: Sequence[Provider]) -> dict[str, Provider]:
    index: dict[str, Provider] = {}
    for provider in providers:
        if provider.name in index:
            raise errors.ConfigurationError(detail=f"Auth: two providers named {provider.name!r}")
        index[provider.name] = provider
    return index
