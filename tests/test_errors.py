"""The exception tree: stable unique codes, user-fit messages, details kept apart."""

from __future__ import annotations

import inspect
import string
import sys
from typing import get_args

import pytest

import bpart_auth
from bpart_auth import errors

ALL_ERRORS = [
    value
    for value in vars(errors).values()
    if inspect.isclass(value) and issubclass(value, errors.AuthError)
]

# Constructor arguments for the classes that need some.
REQUIRED_ARGUMENTS: dict[type[errors.AuthError], dict[str, object]] = {
    errors.PasswordTooShort: {"min_length": 15},
    errors.PasswordTooLong: {"max_length": 128},
    errors.PasswordBreached: {"count": 3},
    errors.IdentityAlreadyLinked: {"provider": "microsoft"},
    errors.IdentityNotLinked: {"provider": "microsoft"},
    errors.ProviderAlreadyLinked: {"provider": "google"},
    errors.InviteEmailMismatch: {"provider": "google"},
    errors.TooManyAttempts: {"retry_after": 600.0},
    errors.ProviderError: {"provider": "google"},
    errors.ConsentDeclined: {"provider": "google"},
    errors.ProviderUnavailable: {"provider": "google"},
    errors.InvalidIdToken: {"provider": "google"},
    errors.EmailNotVerified: {"provider": "google"},
    errors.TenantNotAllowed: {"provider": "microsoft"},
    errors.HostedDomainNotAllowed: {"provider": "google"},
    errors.AdminConsentRequired: {
        "provider": "microsoft",
        "tenant": "contoso.com",
        "consent_url": "https://login.example/contoso.com/adminconsent?client_id=x",
    },
}


def make(cls: type[errors.AuthError]) -> errors.AuthError:
    return cls(**REQUIRED_ARGUMENTS.get(cls, {}))  # type: ignore[arg-type]


def test_tree_has_the_errors_design_names():
    names = {cls.__name__ for cls in ALL_ERRORS}
    assert {
        "AuthError",
        "InvalidCredentials",
        "AccountDisabled",
        "TooManyAttempts",
        "InvalidFlowState",
        "ConsentDeclined",
        "AdminConsentRequired",
        "IdentityNotLinked",
        "IdentityAlreadyLinked",
        "LastSignInMethod",
        "ProviderError",
        "ConfigurationError",
    } <= names


def test_codes_are_unique():
    codes = [cls.code for cls in ALL_ERRORS]
    duplicates = {code for code in codes if codes.count(code) > 1}
    assert not duplicates


def test_every_code_is_in_the_literal_and_every_literal_is_used():
    assert {cls.code for cls in ALL_ERRORS} == set(get_args(errors.ErrorCode))


def test_every_error_is_public_and_exported_from_the_package():
    for cls in ALL_ERRORS:
        assert cls.__name__ in errors.__all__
        assert getattr(bpart_auth, cls.__name__) is cls
        assert cls.__name__ in bpart_auth.__all__


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_has_a_user_message_and_its_code(cls):
    error = make(cls)
    assert isinstance(error, errors.AuthError)
    assert error.code == cls.code
    message = str(error)
    assert message == error.message
    # A sentence for a person: capitalised, punctuated, no template holes, no class name.
    assert message[0].isupper()
    assert message.endswith((".", "!"))
    assert "{" not in message
    assert cls.__name__ not in message
    assert "AADSTS" not in message


def filled(template: str, error: errors.AuthError) -> str:
    """`template` filled from the error's attributes named by its placeholders."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    values = {name: getattr(error, name) for name in names}
    if "provider" in values:
        values["provider"] = errors.provider_display_name(values["provider"])
    return template.format(**values)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_the_message_is_the_class_template_filled_from_the_error(cls):
    error = make(cls)
    assert str(error) == filled(cls.default_message, error)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param(
            errors.PasswordTooShort(min_length=12),
            "Your password must be at least 12 characters long.",
            id="min_length",
        ),
        pytest.param(
            errors.PasswordTooLong(max_length=64),
            "Your password must be at most 64 characters long.",
            id="max_length",
        ),
        pytest.param(
            errors.IdentityNotLinked(provider="google"),
            "This Google account is not linked to any user here. Sign in another way first, "
            "then link Google from your profile.",
            id="provider-twice",
        ),
        pytest.param(
            errors.InviteEmailMismatch(provider="microsoft"),
            "This invitation was sent to another email address. Accept it with the "
            "Microsoft account of the invited address.",
            id="invite-email-mismatch",
        ),
        pytest.param(
            errors.ProviderAlreadyLinked(provider="google"),
            "You already linked a Google account. Unlink it first to link another one.",
            id="provider-already-linked",
        ),
        pytest.param(
            errors.IdentityAlreadyLinked(provider="microsoft"),
            "This Microsoft account is already linked to another user here. Sign in with "
            "Microsoft to reach that user, or choose a different Microsoft account.",
            id="identity-already-linked",
        ),
    ],
)
def test_templates_are_filled_per_instance(error, message):
    assert str(error) == message


def test_one_minute_has_its_own_template():
    error = errors.TooManyAttempts(retry_after=59)
    assert error.minutes == 1
    assert str(error) == filled(errors.TooManyAttempts.one_minute_message, error)
    assert "{" not in errors.TooManyAttempts.one_minute_message


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_subclasses_keep_the_parent_catchable(cls):
    error = make(cls)
    for parent in cls.__mro__[1:]:
        if parent is Exception:
            break
        assert isinstance(error, parent)


def test_detail_is_for_developers_not_for_the_user():
    error = errors.StoreUnavailable(detail="psycopg: connection refused on 10.0.0.5")
    assert "psycopg" not in str(error)
    assert error.detail == "psycopg: connection refused on 10.0.0.5"
    if sys.version_info >= (3, 11):
        assert error.__notes__ == ["psycopg: connection refused on 10.0.0.5"]


def test_message_can_be_overridden_without_changing_the_code():
    error = errors.InvalidInput("Names are at most 200 characters.", field="name")
    assert (error.code, str(error), error.field) == (
        "invalid_input",
        "Names are at most 200 characters.",
        "name",
    )


def test_provider_errors_name_the_provider_and_keep_its_code():
    error = errors.ProviderError(
        provider="microsoft", provider_code="AADSTS50020", description="User account ... "
    )
    assert str(error) == "Microsoft could not sign you in. Please try again."
    assert (error.provider, error.provider_code, error.description) == (
        "microsoft",
        "AADSTS50020",
        "User account ... ",
    )
    assert isinstance(error, errors.ProviderError)


def test_admin_consent_required_carries_what_it_needs():
    error = errors.AdminConsentRequired(
        provider="microsoft",
        tenant="contoso.com",
        consent_url="https://login.microsoftonline.com/contoso.com/adminconsent?client_id=app",
        provider_code="AADSTS90094",
    )
    assert error.code == "admin_consent_required"
    assert error.consent_url.endswith("/adminconsent?client_id=app")
    assert error.tenant == "contoso.com"
    assert error.provider_code == "AADSTS90094"
    assert "IT department" in str(error)
    assert isinstance(error, errors.ProviderError)


@pytest.mark.parametrize(
    ("retry_after", "text"),
    [
        pytest.param(0.5, "1 minute", id="under-a-minute-rounds-up"),
        pytest.param(60, "1 minute", id="exactly-a-minute"),
        pytest.param(61, "2 minutes", id="just-over"),
        pytest.param(900, "15 minutes", id="quarter-hour"),
    ],
)
def test_too_many_attempts_says_when_to_retry(retry_after, text):
    error = errors.TooManyAttempts(retry_after=retry_after)
    assert error.retry_after == retry_after
    assert str(error) == f"Too many failed attempts. Please try again in {text}."


def test_identity_not_linked_tells_the_user_to_link_first():
    message = str(errors.IdentityNotLinked(provider="microsoft"))
    assert "link Microsoft from your profile" in message


def test_invite_errors_are_all_invalid_invites():
    for cls in (errors.InviteExpired, errors.InviteAlreadyUsed, errors.InviteRevoked):
        with pytest.raises(errors.InvalidInvite) as caught:
            raise cls
        assert caught.value.code != errors.InvalidInvite.code


def test_repr_names_class_and_code():
    assert repr(errors.InvalidCredentials()) == (
        "InvalidCredentials(code='invalid_credentials', "
        "message='The email address or password is incorrect.')"
    )
