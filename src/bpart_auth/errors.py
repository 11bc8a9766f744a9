"""The one exception tree of bpart_auth.

Every failure a caller can meet is an `AuthError`. Each class has a stable,
machine-readable `code` (never renamed once released) and `str(error)` is a message
fit to show an end user. Details meant for developers and logs live in attributes
(`detail`, `provider_code`, `description`, ...), never in the message.

Each class's `default_message` is its end-user message template: `str(error)` is
that template with its `{placeholders}` filled from the error's attributes of the
same name (`{provider}` with the provider's display name, "Microsoft"), so an app can
keep a translation table keyed by `code` (`bpart-auth errors` prints it).

```text
AuthError                          auth_error
├── ConfigurationError             configuration_error
├── StoreUnavailable               store_unavailable
├── InvalidInput                   invalid_input
│   ├── InvalidEmail               invalid_email
│   ├── InvalidReturnTo            invalid_return_to
│   └── PasswordRejected           password_rejected
│       ├── PasswordTooShort       password_too_short
│       ├── PasswordTooLong        password_too_long
│       ├── PasswordTooCommon      password_too_common
│       ├── PasswordTooSimple      password_too_simple
│       ├── PasswordBreached       password_breached
│       └── PasswordMatchesEmail   password_matches_email
├── PasswordCheckUnavailable       password_check_unavailable
├── AccountNotFound                account_not_found
├── EmailAlreadyRegistered         email_taken
├── IdentityAlreadyLinked          identity_already_linked
├── ProviderAlreadyLinked          provider_already_linked
├── LastSignInMethod               last_sign_in_method
├── InvalidCredentials             invalid_credentials
├── AccountDisabled                account_disabled
├── TooManyAttempts                too_many_attempts
├── IdentityNotLinked              identity_not_linked
├── UnsupportedPasswordHash        unsupported_password_hash
├── InvalidInvite                  invite_invalid
│   ├── InviteExpired              invite_expired
│   ├── InviteAlreadyUsed          invite_used
│   ├── InviteRevoked              invite_revoked
│   └── InviteEmailMismatch        invite_email_mismatch
├── InvalidResetToken              reset_token_invalid
│   └── ResetTokenExpired          reset_token_expired
├── InvalidFlowState               invalid_flow_state
├── AdminConsentAnswered           admin_consent_answered
└── ProviderError                  provider_error
    ├── ConsentDeclined            consent_declined
    ├── AdminConsentRequired       admin_consent_required
    ├── ProviderUnavailable        provider_unavailable
    ├── InvalidIdToken             invalid_id_token
    ├── EmailNotVerified           email_not_verified
    ├── TenantNotAllowed           tenant_not_allowed
    └── HostedDomainNotAllowed     hosted_domain_not_allowed
```

Examples:
    Apps branch on `code` and show `str(error)`:

    >>> from bpart_auth import AuthError, InvalidCredentials
    >>> try:
    ...     raise InvalidCredentials
    ... except AuthError as error:
    ...     (error.code, str(error))
    ('invalid_credentials', 'The email address or password is incorrect.')
"""

from __future__ import annotations

import math
import sys
from typing import ClassVar, Literal

__all__ = [
    "AccountDisabled",
    "AccountNotFound",
    "AdminConsentAnswered",
    "AdminConsentRequired",
    "AuthError",
    "ConfigurationError",
    "ConsentDeclined",
    "EmailAlreadyRegistered",
    "EmailNotVerified",
    "ErrorCode",
    "HostedDomainNotAllowed",
    "IdentityAlreadyLinked",
    "IdentityNotLinked",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidFlowState",
    "InvalidIdToken",
    "InvalidInput",
    "InvalidInvite",
    "InvalidResetToken",
    "InvalidReturnTo",
    "InvalidSecondFactor",
    "InviteAlreadyUsed",
    "InviteEmailMismatch",
    "InviteExpired",
    "InviteRevoked",
    "LastSecondFactor",
    "LastSignInMethod",
    "PasswordBreached",
    "PasswordCheckUnavailable",
    "PasswordMatchesEmail",
    "PasswordRejected",
    "PasswordTooCommon",
    "PasswordTooLong",
    "PasswordTooShort",
    "PasswordTooSimple",
    "ProviderAlreadyLinked",
    "ProviderError",
    "ProviderUnavailable",
    "ResetTokenExpired",
    "SecondFactorAlreadyRegistered",
    "SecondFactorNotFound",
    "SignInRequired",
    "StoreUnavailable",
    "TenantNotAllowed",
    "TooManyAttempts",
    "UnsupportedPasswordHash",
]

ErrorCode = Literal[
    "auth_error",
    "configuration_error",
    "store_unavailable",
    "invalid_input",
    "invalid_email",
    "invalid_return_to",
    "password_rejected",
    "password_too_short",
    "password_too_long",
    "password_too_common",
    "password_too_simple",
    "password_breached",
    "password_matches_email",
    "password_check_unavailable",
    "account_not_found",
    "email_taken",
    "identity_already_linked",
    "provider_already_linked",
    "last_sign_in_method",
    "invalid_credentials",
    "account_disabled",
    "too_many_attempts",
    "identity_not_linked",
    "unsupported_password_hash",
    "invite_invalid",
    "invite_expired",
    "invite_used",
    "invite_revoked",
    "invite_email_mismatch",
    "reset_token_invalid",
    "reset_token_expired",
    "invalid_flow_state",
    "sign_in_required",
    "second_factor_not_found",
    "second_factor_already_registered",
    "last_second_factor",
    "invalid_second_factor",
    "provider_error",
    "consent_declined",
    "admin_consent_answered",
    "admin_consent_required",
    "provider_unavailable",
    "invalid_id_token",
    "email_not_verified",
    "tenant_not_allowed",
    "hosted_domain_not_allowed",
]
"""Every `AuthError.code`, as a type an app can match exhaustively."""

_PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft"}


def provider_display_name(provider: str) -> str:
    """Return the name a user knows a provider by ("microsoft" -> "Microsoft")."""
    return _PROVIDER_NAMES.get(provider, provider.capitalize())


class AuthError(Exception):
    """Root of every error bpart_auth raises to a caller.

    Args:
        message: Overrides the class's default end-user message.
        detail: An explanation for developers and logs. It is never part of
            `str(error)`; on Python 3.11+ it is also added as a note, so
            tracebacks show it.

    Attributes:
        code: Stable, machine-readable code of this kind of error.
        default_message: The end-user message template of this kind of error;
            `{placeholders}` name the attributes that fill it.
        message: The end-user message (the same as `str(error)`).
        detail: The developer explanation, or None.
        return_to: From `Auth.complete`, once the flow is known: the `return_to`
            given to `begin_*` (the page the user began on), else None.

    Examples:
        >>> error = AuthError(detail="database said: disk full")
        >>> error.code, str(error), error.detail
        ('auth_error', 'Something went wrong. Please try again.', 'database said: disk full')
    """

    code: ClassVar[ErrorCode] = "auth_error"
    default_message: ClassVar[str] = "Something went wrong. Please try again."
    return_to: str | None = None
    """On an error from `Auth.complete` after its flow was opened: the flow's
    `return_to` (the page the user began on), so the app can show the error there."""

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        self.detail = detail
        super().__init__(self.message)
        if detail is not None and sys.version_info >= (3, 11):
            self.add_note(detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigurationError(AuthError):
    """The library or a provider was configured wrongly (raised at construction).

    `detail` says what to fix; the message is what a user would see if it ever
    surfaced in a page.
    """

    code: ClassVar[ErrorCode] = "configuration_error"
    default_message = "Sign-in is not set up correctly here. Please tell the site's administrator."


class StoreUnavailable(AuthError):
    """The account store (database) could not be reached or failed unexpectedly."""

    code: ClassVar[ErrorCode] = "store_unavailable"
    default_message = "The service is temporarily unavailable. Please try again in a moment."


class InvalidInput(AuthError):
    """A value given by the caller or user is malformed.

    Args:
        message: Overrides the default end-user message.
        field: Name of the offending field, when there is one (`"email"`, `"name"`).
        detail: Developer explanation.
    """

    code: ClassVar[ErrorCode] = "invalid_input"
    default_message = "Please check what you entered and try again."

    def __init__(
        self, message: str | None = None, *, field: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message, detail=detail)
        self.field = field


class InvalidEmail(InvalidInput):
    """An email address is empty or malformed."""

    code: ClassVar[ErrorCode] = "invalid_email"
    default_message = "Please enter a valid email address."

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(message, field="email", detail=detail)


class InvalidReturnTo(InvalidInput):
    """A `return_to` value is not a same-site relative path."""

    code: ClassVar[ErrorCode] = "invalid_return_to"
    default_message = "That return address is not allowed."

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(message, field="return_to", detail=detail)


class PasswordRejected(InvalidInput):
    """A new password does not meet the password policy."""

    code: ClassVar[ErrorCode] = "password_rejected"
    default_message = "Please choose a different password."

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(message, field="password", detail=detail)


class PasswordTooShort(PasswordRejected):
    """A new password is shorter than the policy's minimum.

    Args:
        min_length: The minimum, in characters, for the message and for the app.
    """

    code: ClassVar[ErrorCode] = "password_too_short"
    default_message = "Your password must be at least {min_length} characters long."

    def __init__(self, *, min_length: int) -> None:
        super().__init__(self.default_message.format(min_length=min_length))
        self.min_length = min_length


class PasswordTooLong(PasswordRejected):
    """A new password is longer than the policy's maximum.

    Args:
        max_length: The maximum, in characters.
    """

    code: ClassVar[ErrorCode] = "password_too_long"
    default_message = "Your password must be at most {max_length} characters long."

    def __init__(self, *, max_length: int) -> None:
        super().__init__(self.default_message.format(max_length=max_length))
        self.max_length = max_length


class PasswordTooCommon(PasswordRejected):
    """A new password is on the blocklist of common or breached passwords."""

    code: ClassVar[ErrorCode] = "password_too_common"
    default_message = "This password is too common. Please choose another one."


class PasswordTooSimple(PasswordRejected):
    """A new password is mostly one character, a repeated string, or a sequence.

    `detail` names the rule (never the password): only white space, one character
    over half of it, a string typed three times or more, or keyboard, alphabet or
    digit runs over half of it.

    Examples:
        >>> str(PasswordTooSimple(detail="only white space or invisible characters"))[:36]
        'This password is too easy to guess. '
    """

    code: ClassVar[ErrorCode] = "password_too_simple"
    default_message = (
        "This password is too easy to guess. Please avoid repeated characters and "
        "keyboard or alphabet sequences."
    )


class PasswordBreached(PasswordRejected):
    """A new password appears in known data breaches (the `PwnedPasswords` check).

    Args:
        count: How many times the breach corpus has seen it, for logs and the app.

    Examples:
        >>> error = PasswordBreached(count=3_861_493)
        >>> error.code, error.count
        ('password_breached', 3861493)
    """

    code: ClassVar[ErrorCode] = "password_breached"
    default_message = (
        "This password has appeared in a data breach, so others may try it. "
        "Please choose another one."
    )

    def __init__(self, *, count: int, detail: str | None = None) -> None:
        super().__init__(detail=detail)
        self.count = count


class PasswordMatchesEmail(PasswordRejected):
    """A new password is the account's own email address."""

    code: ClassVar[ErrorCode] = "password_matches_email"
    default_message = "Your password can't be your email address."


class PasswordCheckUnavailable(AuthError):
    """The breached-password service could not answer, and the check fails closed.

    Raised only by a `PwnedPasswords(if_unavailable="refuse")`; the default lets the
    password through and logs a warning instead. `detail` says what went wrong.
    """

    code: ClassVar[ErrorCode] = "password_check_unavailable"
    default_message = (
        "Your new password could not be checked right now. Please try again in a moment."
    )


class AccountNotFound(AuthError):
    """No account has the given id."""

    code: ClassVar[ErrorCode] = "account_not_found"
    default_message = "That account does not exist."


class EmailAlreadyRegistered(AuthError):
    """Another account already uses this email address (compared case-insensitively)."""

    code: ClassVar[ErrorCode] = "email_taken"
    default_message = "An account with this email address already exists."


class IdentityAlreadyLinked(AuthError):
    """The provider identity is already linked to another account.

    Args:
        provider: The provider's name (`"google"`, `"microsoft"`).
    """

    code: ClassVar[ErrorCode] = "identity_already_linked"
    default_message = (
        "This {provider} account is already linked to another user here. Sign in with "
        "{provider} to reach that user, or choose a different {provider} account."
    )

    def __init__(self, *, provider: str, detail: str | None = None) -> None:
        name = provider_display_name(provider)
        super().__init__(self.default_message.format(provider=name), detail=detail)
        self.provider = provider


class ProviderAlreadyLinked(AuthError):
    """The account already has an identity of this provider linked (one per provider).

    Args:
        provider: The provider's name.
    """

    code: ClassVar[ErrorCode] = "provider_already_linked"
    default_message = (
        "You already linked a {provider} account. Unlink it first to link another one."
    )

    def __init__(self, *, provider: str, detail: str | None = None) -> None:
        name = provider_display_name(provider)
        super().__init__(self.default_message.format(provider=name), detail=detail)
        self.provider = provider


class LastSignInMethod(AuthError):
    """Removing this sign-in method would leave the account with no way in."""

    code: ClassVar[ErrorCode] = "last_sign_in_method"
    default_message = (
        "You can't remove your only way to sign in. Set a password or link another account first."
    )


class SecondFactorNotFound(AuthError):
    """The account has no second factor of this id."""

    code: ClassVar[ErrorCode] = "second_factor_not_found"
    default_message = "That authenticator or passkey is not on your account."


class SecondFactorAlreadyRegistered(AuthError):
    """This passkey (its credential id) is registered already, to this account or another."""

    code: ClassVar[ErrorCode] = "second_factor_already_registered"
    default_message = "This passkey is registered already."


class LastSecondFactor(AuthError):
    """Removing it would leave the account without a second factor, which the policy requires."""

    code: ClassVar[ErrorCode] = "last_second_factor"
    default_message = (
        "You can't remove your only second factor: this site requires one. Add another first."
    )


class InvalidSecondFactor(AuthError):
    """A code, recovery code or passkey answer was wrong, used before, or expired."""

    code: ClassVar[ErrorCode] = "invalid_second_factor"
    default_message = "That code didn't work. Check it and try again."


class InvalidCredentials(AuthError):
    """Email and password do not match an account.

    The same error, code and message is raised for an unknown email, a wrong
    password and an account without a password, so it reveals nothing.
    """

    code: ClassVar[ErrorCode] = "invalid_credentials"
    default_message = "The email address or password is incorrect."


class AccountDisabled(AuthError):
    """The account is disabled, so it can do nothing.

    At sign-in and at a password change it is raised only after the password or
    provider identity checked out, so it tells nothing to someone who has neither.
    Acting for a disabled account (linking, inviting) raises it too.
    """

    code: ClassVar[ErrorCode] = "account_disabled"
    default_message = "This account is disabled. Please contact your administrator."


class TooManyAttempts(AuthError):
    """Too many failed sign-in attempts; the caller must wait.

    The message names whole minutes, rounded up: `default_message` for several,
    `one_minute_message` for one (translation tables need both forms).

    Args:
        retry_after: Seconds until the next attempt is allowed (for a
            `Retry-After` header).

    Attributes:
        minutes: `retry_after` in whole minutes, rounded up, at least 1.

    Examples:
        >>> TooManyAttempts(retry_after=90).message
        'Too many failed attempts. Please try again in 2 minutes.'
        >>> TooManyAttempts(retry_after=5).message
        'Too many failed attempts. Please try again in 1 minute.'
    """

    code: ClassVar[ErrorCode] = "too_many_attempts"
    default_message = "Too many failed attempts. Please try again in {minutes} minutes."
    one_minute_message: ClassVar[str] = "Too many failed attempts. Please try again in 1 minute."

    def __init__(self, *, retry_after: float) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        template = self.one_minute_message if minutes == 1 else self.default_message
        super().__init__(template.format(minutes=minutes))
        self.retry_after = retry_after
        self.minutes = minutes


class IdentityNotLinked(AuthError):
    """The provider identity belongs to no account (Microsoft matches only linked identities).

    Args:
        provider: The provider's name.
    """

    code: ClassVar[ErrorCode] = "identity_not_linked"
    default_message = (
        "This {provider} account is not linked to any user here. Sign in another way "
        "first, then link {provider} from your profile."
    )

    def __init__(self, *, provider: str, detail: str | None = None) -> None:
        name = provider_display_name(provider)
        super().__init__(self.default_message.format(provider=name), detail=detail)
        self.provider = provider


class UnsupportedPasswordHash(AuthError):
    """The stored password hash uses a scheme bpart_auth does not accept."""

    code: ClassVar[ErrorCode] = "unsupported_password_hash"
    default_message = (
        "Your password can't be checked. Please reset it with the 'Forgot password' link."
    )


class InvalidInvite(AuthError):
    """An invitation token is unknown or forged."""

    code: ClassVar[ErrorCode] = "invite_invalid"
    default_message = "This invitation link is not valid. Please ask for a new invitation."


class InviteExpired(InvalidInvite):
    """The invitation has expired."""

    code: ClassVar[ErrorCode] = "invite_expired"
    default_message = "This invitation has expired. Please ask for a new invitation."


class InviteAlreadyUsed(InvalidInvite):
    """The invitation was already accepted."""

    code: ClassVar[ErrorCode] = "invite_used"
    default_message = "This invitation was already accepted. Please sign in instead."


class InviteRevoked(InvalidInvite):
    """The invitation was revoked (or replaced by a newer one)."""

    code: ClassVar[ErrorCode] = "invite_revoked"
    default_message = "This invitation is no longer valid. Please ask for a new invitation."


class InviteEmailMismatch(InvalidInvite):
    """The provider account's email is not the invited one (where they must match).

    Args:
        provider: The provider's name.
    """

    code: ClassVar[ErrorCode] = "invite_email_mismatch"
    default_message = (
        "This invitation was sent to another email address. Accept it with the "
        "{provider} account of the invited address."
    )

    def __init__(self, *, provider: str, detail: str | None = None) -> None:
        name = provider_display_name(provider)
        super().__init__(self.default_message.format(provider=name), detail=detail)
        self.provider = provider


class InvalidResetToken(AuthError):
    """A password-reset token is unknown, forged or already used."""

    code: ClassVar[ErrorCode] = "reset_token_invalid"
    default_message = "This password reset link is not valid. Please request a new one."


class ResetTokenExpired(InvalidResetToken):
    """A password-reset token has expired."""

    code: ClassVar[ErrorCode] = "reset_token_expired"
    default_message = "This password reset link has expired. Please request a new one."


class InvalidFlowState(AuthError):
    """The state of a redirect flow is missing, tampered with, expired, replayed or foreign."""

    code: ClassVar[ErrorCode] = "invalid_flow_state"
    default_message = "Your sign-in took too long or was interrupted. Please start again."


class SignInRequired(AuthError):
    """The request needs a signed-in session and has none (or it has ended)."""

    code: ClassVar[ErrorCode] = "sign_in_required"
    default_message = "Please sign in first."


class AdminConsentAnswered(AuthError):
    """The callback is an administrator's answer to the admin-consent link, not a sign-in.

    After an Entra admin answers the link from `AdminConsentRequired.consent_url`,
    Entra sends them to the app's redirect URI with `admin_consent=True&tenant=...`
    and no authorization code. `Auth.complete` raises this instead of
    `InvalidFlowState`, so the app shows a plain message the way it shows any refusal.
    Nothing was signed in or changed. The redirect is not signed: anyone can make
    such a URL, so the message claims nothing and `granted` is only what it says.

    Args:
        tenant: The tenant the redirect names, if any.
        granted: Whether the redirect says the admin approved (`admin_consent=True`).

    Examples:
        >>> str(AdminConsentAnswered(tenant="contoso.example", granted=True))[:48]
        'An administrator of your organization has answer'
    """

    code: ClassVar[ErrorCode] = "admin_consent_answered"
    default_message = (
        "An administrator of your organization has answered the request to approve this "
        "app. If they approved it, you can now sign in with Microsoft."
    )

    def __init__(
        self, *, tenant: str | None = None, granted: bool = False, detail: str | None = None
    ) -> None:
        super().__init__(detail=detail)
        self.tenant = tenant
        self.granted = granted


class ProviderError(AuthError):
    """An identity provider refused or failed the sign-in.

    Args:
        message: Overrides the default end-user message.
        provider: The provider's name (`"google"`, `"microsoft"`).
        provider_code: The provider's own error code (`"access_denied"`,
            `"AADSTS50020"`), kept for logs and support.
        description: The provider's own error description, for logs.
        oauth_error: The OAuth `error` the provider sent (`"invalid_grant"`,
            `"consent_required"`), beside `provider_code` when that is Entra's
            AADSTS code; None when the provider sent no OAuth error.
        detail: Developer explanation.

    Examples:
        >>> error = ProviderError(provider="google", provider_code="server_error")
        >>> error.code, error.provider_code, str(error)
        ('provider_error', 'server_error', 'Google could not sign you in. Please try again.')
    """

    code: ClassVar[ErrorCode] = "provider_error"
    default_message = "{provider} could not sign you in. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str,
        provider_code: str | None = None,
        description: str | None = None,
        oauth_error: str | None = None,
        detail: str | None = None,
    ) -> None:
        text = message if message is not None else self.default_message
        super().__init__(text.format(provider=provider_display_name(provider)), detail=detail)
        self.provider = provider
        self.provider_code = provider_code
        self.description = description
        self.oauth_error = oauth_error


class ConsentDeclined(ProviderError):
    """The user cancelled or declined at the provider's consent screen."""

    code: ClassVar[ErrorCode] = "consent_declined"
    default_message = "You cancelled signing in with {provider}."


class AdminConsentRequired(ProviderError):
    """The user's organization must approve the app first (AADSTS65001, AADSTS90094, ...).

    Args:
        provider: The provider's name.
        tenant: The organization's tenant id or domain, when known.
        consent_url: The admin-consent URL to hand to the organization's IT department.
        provider_code: The provider's error code (for example `"AADSTS90094"`).
        description: The provider's error description, for logs.
        oauth_error: The OAuth `error` the provider sent (`"consent_required"`).

    Examples:
        >>> error = AdminConsentRequired(
        ...     provider="microsoft",
        ...     tenant="contoso.onmicrosoft.com",
        ...     consent_url="https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=abc",
        ... )
        >>> error.code, error.tenant
        ('admin_consent_required', 'contoso.onmicrosoft.com')
    """

    code: ClassVar[ErrorCode] = "admin_consent_required"
    default_message = (
        "Your organization must approve this app before you can sign in with {provider}. "
        "Please send the approval link to your IT department."
    )

    def __init__(
        self,
        *,
        provider: str,
        consent_url: str,
        tenant: str | None = None,
        provider_code: str | None = None,
        description: str | None = None,
        oauth_error: str | None = None,
    ) -> None:
        super().__init__(
            provider=provider,
            provider_code=provider_code,
            description=description,
            oauth_error=oauth_error,
        )
        self.tenant = tenant
        self.consent_url = consent_url


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, timed out or answered with garbage."""

    code: ClassVar[ErrorCode] = "provider_unavailable"
    default_message = "{provider} could not be reached. Please try again in a moment."


class InvalidIdToken(ProviderError):
    """The provider's ID token failed validation (signature, issuer, audience, nonce...).

    `detail` names the failed check; the user only learns that it failed.
    """

    code: ClassVar[ErrorCode] = "invalid_id_token"
    default_message = (
        "The answer from {provider} could not be verified. Please try signing in again."
    )


class EmailNotVerified(ProviderError):
    """The provider does not vouch for the account's email address."""

    code: ClassVar[ErrorCode] = "email_not_verified"
    default_message = (
        "Your {provider} email address is not verified, so it can't be used to sign in here."
    )


class TenantNotAllowed(ProviderError):
    """The account's organization (tenant), or personal accounts, may not sign in here.

    `personal_account_message` is the message for a personal Microsoft account where
    only work and school accounts may sign in (`tenant="organizations"`).
    """

    code: ClassVar[ErrorCode] = "tenant_not_allowed"
    default_message = "Accounts from your organization can't sign in here with {provider}."
    personal_account_message: ClassVar[str] = (
        "Personal Microsoft accounts can't sign in here. Please use your work or school account."
    )


class HostedDomainNotAllowed(ProviderError):
    """The Google Workspace domain (`hd` claim) is not on the allow-list."""

    code: ClassVar[ErrorCode] = "hosted_domain_not_allowed"
    default_message = "Accounts from your organization can't sign in here with {provider}."
