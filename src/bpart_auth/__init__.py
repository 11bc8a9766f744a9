"""bpart_auth: sign-in for admin back offices, framework-agnostic.

What an app uses is importable from here: `Auth`, the stores, the providers, the
models, the errors, the policies and throttle limits it configures, and the events.
Extension points and the services' classes live in their public modules
(`bpart_auth.store`, `bpart_auth.guards`, `bpart_auth.throttling`,
`bpart_auth.services.*`); modules not listed in the API reference are internal and
may change without notice.

Examples:
    >>> import bpart_auth
    >>> issubclass(bpart_auth.InvalidCredentials, bpart_auth.AuthError)
    True
"""

import typing

from bpart_auth._events import AuthEvent, EventKind
from bpart_auth._pwned import PwnedPasswords
from bpart_auth._throttle import FailureLimit, Throttle
from bpart_auth._version import __version__
from bpart_auth.auth import Auth
from bpart_auth.errors import (
    AccountDisabled,
    AccountNotFound,
    AdminConsentAnswered,
    AdminConsentRequired,
    AuthError,
    ConfigurationError,
    ConsentDeclined,
    EmailAlreadyRegistered,
    EmailNotVerified,
    ErrorCode,
    HostedDomainNotAllowed,
    IdentityAlreadyLinked,
    IdentityNotLinked,
    InvalidCredentials,
    InvalidEmail,
    InvalidFlowState,
    InvalidIdToken,
    InvalidInput,
    InvalidInvite,
    InvalidResetToken,
    InvalidReturnTo,
    InvalidSecondFactor,
    InviteAlreadyUsed,
    InviteEmailMismatch,
    InviteExpired,
    InviteRevoked,
    LastSecondFactor,
    LastSignInMethod,
    PasswordBreached,
    PasswordCheckUnavailable,
    PasswordMatchesEmail,
    PasswordRejected,
    PasswordTooCommon,
    PasswordTooLong,
    PasswordTooShort,
    PasswordTooSimple,
    ProviderAlreadyLinked,
    ProviderError,
    ProviderUnavailable,
    ResetTokenExpired,
    SecondFactorAlreadyRegistered,
    SecondFactorNotFound,
    SignInRequired,
    StoreUnavailable,
    TenantNotAllowed,
    TooManyAttempts,
    UnsupportedPasswordHash,
)
from bpart_auth.models import (
    Account,
    FlowStart,
    Identity,
    Invite,
    InviteStatus,
    LinkedIdentity,
    Outcome,
    OutcomeKind,
    ProviderName,
    SecondFactor,
    SecondFactorKind,
    SignInMethods,
    VerifiedIdentity,
)
from bpart_auth.passwords import RFC_9106_LOW_MEMORY, Argon2Parameters, PasswordPolicy
from bpart_auth.providers.base import Provider
from bpart_auth.services.second_factors import SecondFactorPolicy
from bpart_auth.store.memory import MemoryStore

if typing.TYPE_CHECKING:
    from bpart_auth.providers.google import GoogleProvider
    from bpart_auth.providers.microsoft import MicrosoftProvider
    from bpart_auth.store.sql import SQLStore

__all__ = [
    "RFC_9106_LOW_MEMORY",
    "Account",
    "AccountDisabled",
    "AccountNotFound",
    "AdminConsentAnswered",
    "AdminConsentRequired",
    "Argon2Parameters",
    "Auth",
    "AuthError",
    "AuthEvent",
    "ConfigurationError",
    "ConsentDeclined",
    "EmailAlreadyRegistered",
    "EmailNotVerified",
    "ErrorCode",
    "EventKind",
    "FailureLimit",
    "FlowStart",
    "GoogleProvider",
    "HostedDomainNotAllowed",
    "Identity",
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
    "Invite",
    "InviteAlreadyUsed",
    "InviteEmailMismatch",
    "InviteExpired",
    "InviteRevoked",
    "InviteStatus",
    "LastSecondFactor",
    "LastSignInMethod",
    "LinkedIdentity",
    "MemoryStore",
    "MicrosoftProvider",
    "Outcome",
    "OutcomeKind",
    "PasswordBreached",
    "PasswordCheckUnavailable",
    "PasswordMatchesEmail",
    "PasswordPolicy",
    "PasswordRejected",
    "PasswordTooCommon",
    "PasswordTooLong",
    "PasswordTooShort",
    "PasswordTooSimple",
    "Provider",
    "ProviderAlreadyLinked",
    "ProviderError",
    "ProviderName",
    "ProviderUnavailable",
    "PwnedPasswords",
    "ResetTokenExpired",
    "SQLStore",
    "SecondFactor",
    "SecondFactorAlreadyRegistered",
    "SecondFactorKind",
    "SecondFactorNotFound",
    "SecondFactorPolicy",
    "SignInMethods",
    "SignInRequired",
    "StoreUnavailable",
    "TenantNotAllowed",
    "Throttle",
    "TooManyAttempts",
    "UnsupportedPasswordHash",
    "VerifiedIdentity",
    "__version__",
]


def __getattr__(name: str) -> typing.Any:  # noqa: ANN401 - module attributes of any kind
    # SQLStore needs the `sqlite` or `postgres` extra; load it on first use so `import bpart_auth`
    # never imports SQLAlchemy.
    if name == "SQLStore":
        from bpart_auth.store.sql import SQLStore  # noqa: PLC0415

        return SQLStore
    # The providers need requests, oauthlib and (Microsoft) msal: an app that
    # signs in with passwords only never imports them.
    if name == "GoogleProvider":
        from bpart_auth.providers.google import GoogleProvider  # noqa: PLC0415

        return GoogleProvider
    if name == "MicrosoftProvider":
        from bpart_auth.providers.microsoft import MicrosoftProvider  # noqa: PLC0415

        return MicrosoftProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The names loaded on first use are listed too, as the others (tab completion).
    return sorted({*globals(), *__all__})
