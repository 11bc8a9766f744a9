"""What bpart_auth remembers, as small Protocols an app's own storage can implement.

`AccountStore` is the union of four concerns (accounts, identities, invitations,
password-reset tokens); `SecondFactorRecords` adds second factors. Our `MemoryStore`
and `SQLStore` (importable from `bpart_auth`; `SQLStore` loads lazily there, so
`import bpart_auth` never imports SQLAlchemy) implement all of them; an app with its
own user table implements them too and proves it with the contract kit in
`bpart_auth.testing`.

The contract, for every implementation:

- The store is the single source of truth and enforces its invariants itself, so
  that two app instances racing cannot break them: emails are unique (after
  `normalize_email`, so case-insensitively), an identity belongs to at most one
  account, an account links at most one identity per provider, and a consumed,
  revoked or expired invitation or reset token is never consumed again.
- Every method that writes more than one thing is atomic: all of it happens, or
  nothing does, and the typed error says why.
- Inputs are checked: an email being written (a new account, a changed email, a
  new invitation, the account an invitation creates) through `validate_new_email`,
  which is `normalize_email` plus `email-validator`, and an email looked up through
  `normalize_email` alone, so a row stored before validation is still found
  (`InvalidEmail` either way); names through `check_name` (at most 200 characters,
  no control, bidi or other invisible format characters), other free text against
  the limits below (`InvalidInput`); unknown ids (`AccountNotFound`). Validation
  happens here, once, on the write path every caller shares; the services above
  only canonicalise. No driver exception ever reaches the caller: unexpected
  database failures are `StoreUnavailable`, with the original as `__cause__`.
- A disabled account can use nothing: disabling deletes its reset tokens and
  revokes the open invitations it sent, and the store refuses, inside the
  transaction, a reset token for it, a reset completed for it, an invitation in its
  name and the acceptance of one it sent. Enabling it again restores none of them.
- Time comes from the caller (`now`), timezone-aware UTC, so services and tests
  control the clock.
"""

from bpart_auth.store.base import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
    AccountRecords,
    AccountStore,
    IdentityRecords,
    InviteRecords,
    ResetTokenRecords,
    SecondFactorRecord,
    SecondFactorRecords,
)

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "AccountRecords",
    "AccountStore",
    "IdentityRecords",
    "InviteRecords",
    "ResetTokenRecords",
    "SecondFactorRecord",
    "SecondFactorRecords",
]
