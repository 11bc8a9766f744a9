"""bpart_auth: sign-in for admin back offices, framework-agnostic.

Everything an app may use is importable from here; every other module is internal
and may change without notice.

Examples:
    >>> import bpart_auth
    >>> issubclass(bpart_auth.InvalidCredentials, bpart_auth.AuthError)
    True
"""

import typing

from bpart_auth._events import AuthEvent, EventKind
from bpart_auth._pwned import PwnedPasswords
from bpart_auth._single_use import MemoryGuard, RedisGuard, SingleUseGuard, StoreGuard
from bpart_auth._throttle import (
    FailureLimit,
    MemoryThrottle,
    RedisThrottle,
    Throttle,
    ThrottleBackend,
)
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
from bpart_auth.services.invites import InviteService
from bpart_auth.services.passwords import PasswordService
from bpart_auth.services.second_factors import SecondFactorPolicy, SecondFactorService
from bpart_auth.services.sessions import SessionService
from bpart_auth.store.base import (
    AccountRecords,
    AccountStore,
    IdentityRecords,
    InviteRecords,
    ResetTokenRecords,
)
from bpart_auth.store.memory import MemoryStore

if typing.TYPE_CHECKING:
    from bpart_auth.providers.google import GoogleProvider
    from bpart_auth.providers.microsoft import MicrosoftProvider
    from bpart_auth.store._sql_throttle import SQLThrottle
    from bpart_auth.store.sql import SQLStore

__all__ = [
    "RFC_9106_LOW_MEMORY",
    "Account",
    "AccountDisabled",
    "AccountNotFound",
    "AccountRecords",
    "AccountStore",
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
    "IdentityRecords",
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
    "InviteRecords",
    "InviteRevoked",
    "InviteService",
    "InviteStatus",
    "LastSecondFactor",
    "LastSignInMethod",
    "LinkedIdentity",
    "MemoryGuard",
    "MemoryStore",
    "MemoryThrottle",
    "MicrosoftProvider",
    "Outcome",
    "OutcomeKind",
    "PasswordBreached",
    "PasswordCheckUnavailable",
    "PasswordMatchesEmail",
    "PasswordPolicy",
    "PasswordRejected",
    "PasswordService",
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
    "RedisGuard",
    "RedisThrottle",
    "ResetTokenExpired",
    "ResetTokenRecords",
    "SQLStore",
    "SQLThrottle",
    "SecondFactor",
    "SecondFactorAlreadyRegistered",
    "SecondFactorKind",
    "SecondFactorNotFound",
    "SecondFactorPolicy",
    "SecondFactorService",
    "SessionService",
    "SignInMethods",
    "SignInRequired",
    "SingleUseGuard",
    "StoreGuard",
    "StoreUnavailable",
    "TenantNotAllowed",
    "Throttle",
    "ThrottleBackend",
    "TooManyAttempts",
    "UnsupportedPasswordHash",
    "VerifiedIdentity",
    "__version__",
]


def __getattr__(name: str) -> typing.Any:  # noqa: ANN401 - module attributes of any kind
    # SQLStore needs the `sql` extra; load it on first use so `import bpart_auth`
    # never imports SQLAlchemy.
    # SQLThrottle lives beside it, for the same reason.
    if name == "SQLStore":
        from bpart_auth.store.sql import SQLStore  # noqa: PLC0415

        return SQLStore
    if name == "SQLThrottle":
        from bpart_auth.store._sql_throttle import SQLThrottle  # noqa: PLC0415

        return SQLThrottle
    # The providers need requests, requests-oauthlib and (Microsoft) msal: an app that
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
