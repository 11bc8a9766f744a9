"""Redirect flows: start one for an intent, and finish it at the one callback."""

from __future__ import annotations

import dataclasses
import hmac
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth._events import AuthEvent
from bpart_auth._input import MAX_CALLBACK_VALUE, text_problem
from bpart_auth.errors import provider_display_name
from bpart_auth.models import FlowStart, Outcome
from bpart_auth.oidc.flowstate import new_flow_state
from bpart_auth.services.signin import sign_in_with_identity
from bpart_auth.store._checks import clean_name

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from datetime import datetime, timedelta

    from bpart_auth._events import Events
    from bpart_auth._single_use import SingleUseGuard
    from bpart_auth.models import Account, VerifiedIdentity
    from bpart_auth.oidc.flowstate import FlowIntent, FlowSealer, FlowState
    from bpart_auth.providers.base import Provider
    from bpart_auth.store.base import AccountStore

_FLOW_STATE: Final = "flow_state"
_MAX_PROVIDER_NAME: Final = 64  # "google", "microsoft", a third party's short name
# Every callback parameter a provider, msal or this module reads (RFC 6749 4.1.2 and
# 4.1.2.1, RFC 9207 `iss`, Entra's `error_subcode` and admin-consent redirect). No
# other parameter is ever looked at, so no other needs checking.
CALLBACK_PARAMETERS: Final = (
    "state",
    "code",
    "error",
    "error_description",
    "error_subcode",
    "iss",
    "admin_consent",
    "tenant",
)
_GUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def callback_parameters(params: object) -> dict[str, str]:
    """The parameters of a callback the protocol uses, each a bounded str; nothing else.

    Args:
        params: The callback's query parameters, as the app got them.

    Returns:
        A new dict of just `CALLBACK_PARAMETERS` that are present.

    Raises:
        InvalidFlowState: `params` is not a mapping, or one of those parameters is
            not a str of at most `MAX_CALLBACK_VALUE` characters that UTF-8 can
            encode (a list, None, a number, a lone surrogate...).

    Examples:
        >>> callback_parameters({"state": "s", "code": "c", "authuser": ["0", "1"]})
        {'state': 's', 'code': 'c'}
    """
    if not isinstance(params, Mapping):
        raise errors.InvalidFlowState(
            detail=f"callback parameters must be a mapping, got {type(params).__name__}"
        )
    clean: dict[str, str] = {}
    for name in CALLBACK_PARAMETERS:
        if name not in params:
            continue
        value = params[name]
        problem = text_problem(value, limit=MAX_CALLBACK_VALUE)
        if problem is not None:
            raise errors.InvalidFlowState(detail=f"callback parameter {name}: {problem}")
        clean[name] = value
    return clean


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FlowSettings:
    """How flows behave; fixed when `Auth` is built."""

    sealer: FlowSealer | None
    single_use: SingleUseGuard
    lifetime: timedelta
    invite_email_must_match: Collection[str]
    clock: Callable[[], datetime]
    redirect_uri: str | None = None


class FlowService:
    """Starts flows (`sign_in`, `link`, `accept_invite`) and completes them."""

    def __init__(
        self,
        *,
        store: AccountStore,
        providers: Mapping[str, Provider],
        settings: FlowSettings,
        events: Events,
    ) -> None:
        self._store = store
        self._providers = providers
        self._settings = settings
        self._events = events

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The configured providers' names."""
        return tuple(self._providers)

    def begin(
        self,
        provider_name: str,
        *,
        intent: FlowIntent,
        redirect_uri: str | None,
        return_to: str | None,
        account_id: str | None = None,
        invite_token_hash: str | None = None,
    ) -> FlowStart:
        """Seal a new flow and build the provider's URL.

        `redirect_uri` None means the one configured on `Auth`.
        """
        # The name often comes from the request's path (`/login/<provider>`).
        named = text_problem(provider_name, limit=_MAX_PROVIDER_NAME) is None
        provider = self._providers.get(provider_name) if named else None
        sealer = self._settings.sealer
        if provider is None or sealer is None:
            shown = repr(provider_name) if named else "of that name"
            raise errors.ConfigurationError(detail=f"Auth: no provider {shown}")
        if redirect_uri is None:
            redirect_uri = self._settings.redirect_uri
        if redirect_uri is None:
            raise errors.ConfigurationError(
                detail="Auth: no redirect_uri; pass one to begin_*, or set Auth(redirect_uri=...)"
            )
        flow = new_flow_state(
            intent=intent,
            provider=provider.name,
            redirect_uri=redirect_uri,
            return_to=return_to,
            account_id=account_id,
            invite_token_hash=invite_token_hash,
            now=self._settings.clock(),
            lifetime=self._settings.lifetime,
        )
        url, extra = provider.authorization_url(flow)
        if extra:
            flow = dataclasses.replace(flow, extra=extra)
        return FlowStart(
            url=url, state=flow.state, sealed_flow=sealer.seal(flow), expires_at=flow.expires_at
        )

    def complete(
        self, sealed: object, params: Mapping[str, str], *, signed_in_account_id: str | None
    ) -> Outcome:
        """Open the state, check it against the callback once, and act on its intent.

        The entry point of `Auth.complete`: `sealed` and `params` come from the
        request, so they are bounded here (`callback_parameters`) before anything
        else runs, and the providers get a clean `dict[str, str]`.
        """
        params = callback_parameters(params)
        problem = text_problem(sealed, limit=MAX_CALLBACK_VALUE)
        if problem is not None or not isinstance(sealed, str):
            raise errors.InvalidFlowState(detail=f"sealed_flow: {problem}")
        if "admin_consent" in params and "code" not in params and "microsoft" in self._providers:
            # Unsigned: anyone can make this URL, so only its shape is believed.
            tenant = params.get("tenant", "")
            raise errors.AdminConsentAnswered(
                tenant=tenant.lower() if _GUID.fullmatch(tenant) else None,
                granted=params["admin_consent"].strip().lower() == "true",
                detail=f"admin-consent redirect: {params.get('error', 'no error')[:200]}",
            )
        flow = self._open(sealed, params)
        try:
            return self._finish(flow, params, signed_in_account_id=signed_in_account_id)
        except errors.AuthError as error:
            # Where the user began, so an app can show the refusal there.
            error.return_to = flow.return_to
            raise

    def _finish(
        self, flow: FlowState, params: Mapping[str, str], *, signed_in_account_id: str | None
    ) -> Outcome:
        """Act on an opened flow's intent with the provider's answer."""
        if (
            flow.intent == "link"
            and signed_in_account_id is not None
            and signed_in_account_id != flow.account_id
        ):
            raise errors.InvalidFlowState(detail="this link flow is another account's")
        provider = self._providers[flow.provider]
        verified = provider.complete(flow, params)
        if flow.intent == "link":
            return self._link(flow, verified)
        if flow.intent == "accept_invite":
            return self._accept(flow, verified)
        account, linked_now = sign_in_with_identity(
            self._store, provider, verified, clock=self._settings.clock
        )
        if linked_now:
            self._events.emit(AuthEvent(kind="linked", account=account, identity=verified.identity))
        self._events.emit(
            AuthEvent(
                kind="signed_in",
                account=account,
                identity=verified.identity,
                method=provider.name,
            )
        )
        return Outcome(
            kind="signed_in",
            account=account,
            identity=verified.identity,
            message=f"You are signed in with {provider_display_name(provider.name)}.",
            return_to=flow.return_to,
            provider_mfa=_reports_mfa(verified),
        )

    def _link(self, flow: FlowState, verified: VerifiedIdentity) -> Outcome:
        account_id = flow.account_id or ""
        account = self._enabled(account_id)
        link = self._store.link_identity(
            account_id=account.id,
            identity=verified.identity,
            email=verified.email,
            now=self._settings.clock(),
        )
        account = self._store.get_account(account.id) or account  # the new credentials stamp
        self._events.emit(AuthEvent(kind="linked", account=account, identity=link.identity))
        name = provider_display_name(flow.provider)
        return Outcome(
            kind="linked",
            account=account,
            identity=link.identity,
            message=f"Your {name} account is now linked. You can sign in with {name} from now on.",
            return_to=flow.return_to,
        )

    def _accept(self, flow: FlowState, verified: VerifiedIdentity) -> Outcome:
        token_hash = flow.invite_token_hash or ""
        invite = self._store.find_invite(token_hash)
        if invite is None:
            raise errors.InvalidInvite
        if flow.provider in self._settings.invite_email_must_match:
            provider = self._providers[flow.provider]
            self._check_invited_email(invite.email, verified, vouches=provider.email_sign_in)
        account = self._store.accept_invite(
            token_hash=token_hash,
            name=clean_name(verified.name),  # the user cannot retype it: cleaned
            password_hash=None,
            identity=verified.identity,
            identity_email=verified.email,
            now=self._settings.clock(),
        )
        accepted = self._store.find_invite(token_hash) or invite
        self._events.emit(
            AuthEvent(
                kind="invite_accepted",
                account=account,
                identity=verified.identity,
                invite=accepted,
                method=flow.provider,
            )
        )
        return Outcome(
            kind="registered",
            account=account,
            identity=verified.identity,
            message=f"Welcome! Your account is ready; sign in with "
            f"{provider_display_name(flow.provider)} from now on.",
            return_to=flow.return_to,
            provider_mfa=_reports_mfa(verified),
        )

    @staticmethod
    def _check_invited_email(invited: str, verified: VerifiedIdentity, *, vouches: bool) -> None:
        """The provider account's email must be the invited one (`invite_email_must_match`).

        A provider that vouches for emails (Google: `email_sign_in`) must also say it
        verified it. One that never does (Microsoft: Entra's `email` is whatever a
        tenant admin typed) is held to the match alone: a consistency check that
        narrows who may use the invitation, whose token is the proof of the address.
        """
        provider = verified.identity.provider
        try:
            reported = normalize_email(verified.email or "")
        except errors.InvalidEmail:
            reported = None
        if reported != invited:
            raise errors.InviteEmailMismatch(provider=provider)
        if vouches and not verified.email_verified:
            raise errors.EmailNotVerified(provider=provider)

    def _enabled(self, account_id: str) -> Account:
        account = self._store.get_account(account_id)
        if account is None:
            raise errors.AccountNotFound
        if account.disabled:
            raise errors.AccountDisabled
        return account

    def _open(self, sealed: str, params: Mapping[str, str]) -> FlowState:
        """Open the sealed state and check it belongs to this callback, once."""
        sealer = self._settings.sealer
        if sealer is None:
            raise errors.InvalidFlowState(detail="Auth has no secret_key")
        flow = sealer.open(sealed)
        if flow.provider not in self._providers:
            raise errors.InvalidFlowState(detail=f"no provider {flow.provider!r} configured")
        returned = params.get("state")
        if returned is None or not hmac.compare_digest(returned.encode(), flow.state.encode()):
            raise errors.InvalidFlowState(detail="the callback's state is not this flow's")
        if not self._settings.single_use.consume(
            purpose=_FLOW_STATE, key=flow.state, expires_at=flow.expires_at
        ):
            raise errors.InvalidFlowState(detail="this flow was completed already")
        return flow


def _reports_mfa(verified: VerifiedIdentity) -> bool:
    """Whether the ID token's `amr` (RFC 8176) says the provider did multi-factor auth."""
    amr = verified.claims.get("amr")
    return isinstance(amr, (list, tuple)) and "mfa" in amr
