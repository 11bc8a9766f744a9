"""Sign-in with a provider identity: which account, if any, it opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpart_auth import errors
from bpart_auth._email import normalize_email

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from bpart_auth.models import Account, VerifiedIdentity
    from bpart_auth.providers.base import Provider
    from bpart_auth.store.base import AccountStore


def sign_in_with_identity(
    store: AccountStore,
    provider: Provider,
    verified: VerifiedIdentity,
    *,
    clock: Callable[[], datetime],
) -> tuple[Account, bool]:
    """The account a verified provider identity signs in to.

    The identity (provider, issuer, subject) decides. Only when no account has it,
    and only for a provider that allows it (Google), an account is found by email,
    and only if the provider verified that email; the identity is then linked to it,
    so the email is never needed again.

    Returns:
        The account, and whether the identity was linked to it just now.

    Raises:
        IdentityNotLinked: No account has the identity (nor, for Google, its email).
        EmailNotVerified: An account has the email, but the provider did not verify it.
        AccountDisabled: The account is disabled.
        IdentityAlreadyLinked: A concurrent request linked the identity elsewhere.
        ProviderAlreadyLinked: The account has another identity of this provider.
    """
    account = store.find_account_by_identity(verified.identity)
    linked_now = False
    if account is None and provider.email_sign_in and verified.email:
        account, linked_now = _by_verified_email(store, verified, clock=clock)
    if account is None:
        raise errors.IdentityNotLinked(provider=provider.name)
    if account.disabled:
        raise errors.AccountDisabled
    return account, linked_now


def _by_verified_email(
    store: AccountStore, verified: VerifiedIdentity, *, clock: Callable[[], datetime]
) -> tuple[Account | None, bool]:
    """The account of the verified email, its identity linked; and whether by this call."""
    try:
        address = normalize_email(verified.email or "")
    except errors.InvalidEmail:
        return None, False
    account = store.find_account_by_email(address)
    if account is None:
        return None, False
    if not verified.email_verified:
        raise errors.EmailNotVerified(provider=verified.identity.provider)
    if account.disabled:
        raise errors.AccountDisabled
    try:
        store.link_identity(
            account_id=account.id, identity=verified.identity, email=verified.email, now=clock()
        )
    except (errors.ProviderAlreadyLinked, errors.IdentityAlreadyLinked) as exc:
        # A concurrent first sign-in with the same identity (a double click, two tabs)
        # linked it a moment ago: then it signs in like any later one.
        raced = store.find_account_by_identity(verified.identity)
        if raced is not None and raced.id == account.id:
            return raced, False
        if isinstance(exc, errors.IdentityAlreadyLinked):
            raise
        # The account has another Google identity: this one is simply not linked. The
        # user signs in another way, and unlinks and links from the profile to switch.
        raise errors.IdentityNotLinked(
            provider=verified.identity.provider, detail="the account has another identity"
        ) from exc
    return store.get_account(account.id) or account, True
