"""Second factors: `auth.second_factors` (authenticator apps, recovery codes, passkeys).

Everything here works on the app's session, as the redirect flows do:

- **The sign-in step.** When an account has a second factor, a first factor (a
  password, Google, Microsoft, an invitation accepted with a password) does not sign
  it in: `auth.sessions.sign_in` clears the session and leaves a *pending* sign-in
  there instead (sealed, expiring after five minutes, single-use), and returns
  `"second_factor"`. Only `verify` (a code or a recovery code) or `complete_passkey`
  signs the account in. Under `SecondFactorPolicy(required=True)`, an account without
  one gets a pending *enrolment* instead (`"enrol_second_factor"`): it may only enrol
  (`begin_totp` / `confirm_totp`, or a passkey), which then signs it in.
- **Enrolment** (signed in, or a pending enrolment): `begin_totp` gives the secret,
  the `otpauth://` URI and a QR code (SVG) and keeps the sealed secret in the session;
  `confirm_totp` adds the factor after one valid code. The first factor also creates
  ten recovery codes, shown once. Passkeys: `begin_passkey_registration` /
  `complete_passkey_registration`.
- **Passkeys to sign in**: `begin_passkey` / `complete_passkey` are the second step of
  a pending sign-in, or, with no pending sign-in, a passwordless sign-in with a
  discoverable passkey (user verification required: a passkey is two factors in one).

A code is accepted once (the single-use guard, shared by every app instance on the
store); attempts are throttled per account and address like passwords, in their own
account bucket.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

from bpart_auth import errors
from bpart_auth._events import AuthEvent
from bpart_auth._input import text_problem
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.store.base import SecondFactorRecords

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from bpart_auth._events import Events
    from bpart_auth._secretbox import SecretBox
    from bpart_auth._single_use import SingleUseGuard
    from bpart_auth._throttle import Throttle
    from bpart_auth.models import Account, SecondFactor, SignInStep
    from bpart_auth.passkeys import RelyingParty
    from bpart_auth.services.sessions import Session, SessionService
    from bpart_auth.store.base import AccountStore, SecondFactorRecord
    from bpart_auth.totp import TotpSecrets

__all__ = [
    "Enrolled",
    "PendingSignIn",
    "SecondFactorPolicy",
    "SecondFactorService",
    "TotpEnrolment",
]

PENDING_KEY: Final = "bpart_auth.pending"
"""Where the session keeps a pending sign-in (sealed): the second step, or enrolment."""
ENROLMENT_KEY: Final = "bpart_auth.enrolment"
"""Where the session keeps a TOTP secret being enrolled, or a passkey challenge (sealed)."""
PENDING_LIFETIME: Final = timedelta(minutes=5)
_ENROLMENT_LIFETIME: Final = timedelta(minutes=10)
_MAX_SEALED: Final = 8192
_MAX_CODE_INPUT: Final = 64
_STEP_SECONDS: Final = 30
_TOTP_REPLAY: Final = "totp_step"
_PENDING_USE: Final = "pending_sign_in"
_PASSKEY_CHALLENGE: Final = "passkey_challenge"
_log = logging.getLogger("bpart_auth.second_factors")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecondFactorPolicy:
    """How second factors are used: `Auth(second_factor=SecondFactorPolicy(...))`.

    Attributes:
        required: Every account needs one: an account without one is sent to enrol
            after its first factor. Otherwise they are optional.
        issuer: The name authenticator apps show next to the account ("Back office").
        relying_party: Passkeys' relying party (`bpart_auth.passkeys.RelyingParty`:
            RP id, name, origins); None offers no passkeys.
        provider_mfa_counts: A Google or Microsoft sign-in whose ID token says the
            provider did multi-factor authentication (`amr` holds `"mfa"`) counts as
            both factors. Off by default: the app then trusts the provider's MFA policy.
    """

    required: bool = False
    issuer: str = "Back office"
    relying_party: RelyingParty | None = None
    provider_mfa_counts: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TotpEnrolment:
    """What the enrolment page shows: scan `qr_svg`, or type `secret`.

    Attributes:
        secret: The base32 secret, for typing into an app by hand.
        uri: The `otpauth://totp/...` URI the QR code holds.
        qr_svg: The QR code as an SVG document (no script), to inline in the page.
    """

    secret: str = dataclasses.field(repr=False)
    uri: str = dataclasses.field(repr=False)
    qr_svg: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Enrolled:
    """A factor added: the factor, and the recovery codes to show once (or none).

    Attributes:
        factor: The new factor.
        recovery_codes: Ten new recovery codes when this was the account's first
            factor; empty otherwise. Show them once; they are stored as hashes only.
        signed_in: True when this enrolment finished a pending sign-in (a required
            second factor) and signed the account in.
    """

    factor: SecondFactor
    recovery_codes: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    signed_in: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PendingSignIn:
    """A sign-in waiting in the session for its second step (or for enrolment).

    Attributes:
        account: The account signing in (to greet it on the second-step page).
        step: `"second_factor"` or `"enrol_second_factor"`.
        kinds: The kinds of factor the account has (`"totp"`, `"passkey"`).
        recovery_codes: Unused recovery codes left.
        expires_at: When it must be finished.
    """

    account: Account
    step: SignInStep
    kinds: frozenset[str]
    recovery_codes: int
    expires_at: datetime


_Opened = tuple[dict[str, Any], datetime]  # a pending sign-in's payload and expiry


def _open_sealed(box: SecretBox | None, sealed: object) -> dict[str, Any] | None:
    """A sealed JSON object from the session, opened; None for anything else."""
    if box is None or not isinstance(sealed, str):
        return None
    if text_problem(sealed, limit=_MAX_SEALED) is not None:
        return None
    try:
        payload = json.loads(box.open(sealed))
    except (errors.AuthError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


class SecondFactorGate:
    """The sign-in step: what `sessions.sign_in` asks before it signs an account in."""

    def __init__(
        self,
        *,
        store: AccountStore,
        policy: SecondFactorPolicy,
        box: SecretBox | None,
        single_use: SingleUseGuard,
        clock: Callable[[], datetime],
    ) -> None:
        self._records = store if isinstance(store, SecondFactorRecords) else None
        self._policy = policy
        self._box = box
        self._single_use = single_use
        self._clock = clock

    @property
    def records(self) -> SecondFactorRecords:
        """The store's second-factor records."""
        if self._records is None:
            raise errors.ConfigurationError(
                detail="second factors need a store that implements SecondFactorRecords"
            )
        return self._records

    def step_for(self, account: Account, *, provider_mfa: bool = False) -> SignInStep:
        """What signing `account` in needs now."""
        if provider_mfa and self._policy.provider_mfa_counts:
            return "signed_in"
        if self._records is None:
            return "enrol_second_factor" if self._policy.required else "signed_in"
        if self._records.list_second_factors(account.id):
            return "second_factor"
        return "enrol_second_factor" if self._policy.required else "signed_in"

    def hold(self, session: Session, account: Account, step: SignInStep) -> None:
        """Keep a pending sign-in in a (cleared) session."""
        if self._box is None:
            raise errors.ConfigurationError(
                detail="this account has a second factor: Auth needs its secret_key"
            )
        expires = self._clock() + PENDING_LIFETIME
        payload = {
            "a": account.id,
            "c": account.credentials_changed_at.isoformat(),
            "s": step,
            "e": int(expires.timestamp()),
            "n": secrets.token_urlsafe(16),
        }
        session[PENDING_KEY] = self._box.seal(json.dumps(payload).encode())

    def pending(self, session: Session) -> _Opened | None:
        """The session's pending sign-in, opened and checked, or None."""
        payload = _open_sealed(self._box, session.get(PENDING_KEY))
        if payload is None or not all(
            isinstance(payload.get(key), str) for key in ("a", "c", "s", "n")
        ):
            return None
        expiry = payload.get("e")
        if not isinstance(expiry, int):
            return None
        expires_at = datetime.fromtimestamp(expiry, tz=timezone.utc)
        if self._clock() >= expires_at:
            return None
        return payload, expires_at

    def spend(self, payload: dict[str, Any], expires_at: datetime) -> bool:
        """Use a pending sign-in once: False when it was used already (a replay)."""
        return self._single_use.consume(
            purpose=_PENDING_USE, key=str(payload["n"]), expires_at=expires_at
        )


class SecondFactorService:
    """Authenticator apps, recovery codes and passkeys: reach it as `auth.second_factors`.

    See the module's docstring for the sign-in step. Every method takes the app's
    session; the account is the session's (signed in, or its pending sign-in).
    """

    def __init__(
        self,
        *,
        store: AccountStore,
        gate: SecondFactorGate,
        sessions: SessionService,
        totp_key: tuple[str | bytes, tuple[str | bytes, ...]],
        box: SecretBox,
        policy: SecondFactorPolicy,
        single_use: SingleUseGuard,
        throttle: Throttle,
        events: Events,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._gate = gate
        self._sessions = sessions
        self._totp_key = totp_key
        self._totp_secrets: TotpSecrets | None = None
        self._box = box
        self._policy = policy
        self._single_use = single_use
        self._throttle = throttle
        self._events = events
        self._clock = clock

    # What the pages show

    def pending(self, session: Session) -> PendingSignIn | None:
        """The session's pending sign-in, for the second-step or enrolment page; or None."""
        opened = self._gate.pending(session)
        if opened is None:
            return None
        payload, expires_at = opened
        account = self._pending_account(payload)
        if account is None:
            return None
        records = self._gate.records.list_second_factors(account.id)
        step: SignInStep = (
            "enrol_second_factor" if payload["s"] == "enrol_second_factor" else "second_factor"
        )
        return PendingSignIn(
            account=account,
            step=step,
            kinds=frozenset(record.factor.kind for record in records),
            recovery_codes=self._gate.records.count_recovery_codes(account.id),
            expires_at=expires_at,
        )

    def list(self, account_id: str) -> Sequence[SecondFactor]:
        """The account's factors, oldest first, for the profile page."""
        return [record.factor for record in self._gate.records.list_second_factors(account_id)]

    def recovery_codes_left(self, account_id: str) -> int:
        """How many unused recovery codes the account has."""
        return self._gate.records.count_recovery_codes(account_id)

    # The second step

    def verify(self, session: Session, code: str, *, client_address: str | None = None) -> Account:
        """The second step with a code from an authenticator app, or a recovery code.

        On success the account is signed in to a fresh session.

        Raises:
            SignInRequired: The session has no pending sign-in (none, expired,
                tampered with, or used already): sign in again.
            TooManyAttempts: Too many wrong codes for the account or the address.
            InvalidSecondFactor: The code is wrong, or was used already.
        """
        payload, expires_at, account = self._pending_for_step(session)
        self._throttle.check_second_factor(account_id=account.id, client_address=client_address)
        if not self._code_passes(account, code):
            self._throttle.second_factor_failed(
                account_id=account.id, client_address=client_address
            )
            raise errors.InvalidSecondFactor
        return self._finish(session, payload, expires_at, account)

    # Enrolment

    def begin_totp(self, session: Session) -> TotpEnrolment:
        """Start adding an authenticator app: the secret to show, kept sealed in the session.

        While that enrolment is under way (ten minutes), calling it again shows the
        same secret, so a page that comes back after a wrong code need not be scanned
        again.

        Raises:
            SignInRequired: The session is neither signed in nor enrolling.
        """
        from bpart_auth import totp  # noqa: PLC0415 - the `mfa` extra

        account, _ = self._enrolling(session)
        kept = self._open_enrolment(session, kind="totp")
        if kept is not None and kept["a"] == account.id:
            secret = str(kept["v"])  # the same QR code again (say, after a wrong code)
        else:
            secret = totp.new_secret()
        uri = totp.provisioning_uri(
            secret, account_name=account.display_email, issuer=self._policy.issuer
        )
        self._keep_enrolment(session, account.id, kind="totp", value=secret)
        return TotpEnrolment(secret=secret, uri=uri, qr_svg=totp.qr_svg(uri))

    def confirm_totp(
        self, session: Session, code: str, *, name: str = "Authenticator app"
    ) -> Enrolled:
        """Finish adding an authenticator app with one valid code from it.

        Raises:
            SignInRequired: No enrolment under way in this session (or it expired).
            InvalidSecondFactor: The code does not match the new secret.
            InvalidInput: The name is refused (too long, invisible characters).
        """
        from bpart_auth import totp  # noqa: PLC0415 - the `mfa` extra

        account, pending = self._enrolling(session)
        secret = self._enrolment_value(session, account, kind="totp")
        step = totp.matching_step(secret, code, now=self._clock())
        if step is None:
            raise errors.InvalidSecondFactor
        record = self._gate.records.add_second_factor(
            account_id=account.id,
            kind="totp",
            name=name,
            secret=self._totp.seal(secret, account_id=account.id),
            lookup_key=None,
            now=self._clock(),
        )
        self._replay_guard(record.factor.id, step)
        session.pop(ENROLMENT_KEY, None)
        return self._enrolled(session, account, record, pending)

    def regenerate_recovery_codes(self, session: Session) -> tuple[str, ...]:
        """New recovery codes for the signed-in account; the old ones die. Show them once.

        Raises:
            SignInRequired: The session is not signed in.
            SecondFactorNotFound: The account has no second factor to recover.
        """
        account = self._signed_in(session)
        if not self._gate.records.list_second_factors(account.id):
            raise errors.SecondFactorNotFound
        codes = self._new_recovery_codes(account)
        self._sessions.refresh(session, self._account(account.id))
        return codes

    def remove(self, session: Session, factor_id: str) -> SecondFactor:
        """Remove one of the signed-in account's factors; this session stays signed in.

        Raises:
            SignInRequired: The session is not signed in.
            SecondFactorNotFound: The account has no factor of this id.
            LastSecondFactor: The policy requires one and it is the last.
        """
        account = self._signed_in(session)
        record = self._gate.records.remove_second_factor(
            account.id,
            factor_id,
            keep_at_least=1 if self._policy.required else 0,
            now=self._clock(),
        )
        updated = self._account(account.id)
        self._sessions.refresh(session, updated)
        self._events.emit(
            AuthEvent(kind="second_factor_removed", account=updated, factor=record.factor)
        )
        return record.factor

    # Passkeys

    def begin_passkey_registration(self, session: Session) -> str:
        """The options for `navigator.credentials.create()` (JSON); the challenge is kept.

        Raises:
            SignInRequired: The session is neither signed in nor enrolling.
            ConfigurationError: No relying party is configured.
        """
        from bpart_auth import passkeys  # noqa: PLC0415 - the `mfa` extra

        rp = self._relying_party()
        account, _ = self._enrolling(session)
        exclude = [
            record.lookup_key
            for record in self._gate.records.list_second_factors(account.id)
            if record.lookup_key is not None
        ]
        options, challenge = passkeys.registration_options(
            rp,
            user_id=account.id.encode(),
            user_name=account.email,
            display_name=account.name or account.display_email,
            exclude=exclude,
        )
        self._keep_enrolment(session, account.id, kind="passkey", value=challenge.hex())
        return options

    def complete_passkey_registration(
        self, session: Session, response: str | Mapping[str, Any], *, name: str = "Passkey"
    ) -> Enrolled:
        """Add the passkey the browser created (its JSON response).

        Raises:
            SignInRequired: No registration under way in this session (or it expired).
            InvalidSecondFactor: The response does not verify.
            SecondFactorAlreadyRegistered: This passkey is registered already.
        """
        from bpart_auth import passkeys  # noqa: PLC0415 - the `mfa` extra

        rp = self._relying_party()
        account, pending = self._enrolling(session)
        challenge = bytes.fromhex(self._enrolment_value(session, account, kind="passkey"))
        credential = passkeys.verify_registration(
            rp, response, challenge=challenge, require_user_verification=True
        )
        record = self._gate.records.add_second_factor(
            account_id=account.id,
            kind="passkey",
            name=name,
            secret=credential.to_secret(),
            lookup_key=credential.credential_id,
            now=self._clock(),
        )
        session.pop(ENROLMENT_KEY, None)
        return self._enrolled(session, account, record, pending)

    def begin_passkey(self, session: Session) -> str:
        """The options for `navigator.credentials.get()` (JSON); the challenge is kept.

        The second step of the session's pending sign-in (its passkeys allowed); with
        none pending, a passwordless sign-in (any discoverable passkey).

        Raises:
            ConfigurationError: No relying party is configured.
        """
        from bpart_auth import passkeys  # noqa: PLC0415 - the `mfa` extra

        rp = self._relying_party()
        opened = self._gate.pending(session)
        allow = None
        owner = ""
        if opened is not None:
            owner = str(opened[0]["a"])
            allow = [
                record.lookup_key
                for record in self._gate.records.list_second_factors(owner)
                if record.lookup_key is not None
            ]
        options, challenge = passkeys.authentication_options(rp, allow=allow)
        self._keep_enrolment(session, owner, kind="assert", value=challenge.hex())
        return options

    def complete_passkey(
        self,
        session: Session,
        response: str | Mapping[str, Any],
        *,
        client_address: str | None = None,
    ) -> Account:
        """Sign in with the passkey's answer: the second step, or passwordless.

        Raises:
            SignInRequired: No passkey sign-in under way in this session (or expired).
            TooManyAttempts: Too many failures for the account or the address.
            InvalidSecondFactor: The answer does not verify, or names a passkey of
                another account than the pending sign-in's.
            AccountDisabled: The account is disabled.
        """
        from bpart_auth import passkeys  # noqa: PLC0415 - the `mfa` extra

        rp = self._relying_party()
        kept = self._open_enrolment(session, kind="assert")
        session.pop(ENROLMENT_KEY, None)
        if kept is None:
            raise errors.SignInRequired(detail="no passkey sign-in under way")
        # The challenge is used once, here too: a synced passkey's counter stays 0, so
        # an old cookie and a captured answer must not sign in again.
        if not self._single_use.consume(
            purpose=_PASSKEY_CHALLENGE,
            key=str(kept["v"]),
            expires_at=datetime.fromtimestamp(int(kept["e"]), tz=timezone.utc),
        ):
            raise errors.SignInRequired(detail="this passkey challenge was used already")
        credential_id = passkeys.credential_id_of(response)
        record = self._gate.records.find_second_factor(credential_id) if credential_id else None
        if record is None or record.factor.kind != "passkey":
            raise errors.InvalidSecondFactor(detail="unknown passkey")
        owner = record.factor.account_id
        if kept["a"] and kept["a"] != owner:
            raise errors.InvalidSecondFactor(detail="another account's passkey")
        self._throttle.check_second_factor(account_id=owner, client_address=client_address)
        stored = passkeys.PasskeyCredential.from_secret(record.secret)
        passwordless = not kept["a"]
        try:
            sign_count, user_handle = passkeys.verify_authentication(
                rp,
                response,
                challenge=bytes.fromhex(str(kept["v"])),
                credential=stored,
                # Alone, a passkey must be two factors in one: the user verified (PIN,
                # biometrics). After a first factor, presence is enough.
                require_user_verification=passwordless,
            )
        except errors.InvalidSecondFactor:
            self._throttle.second_factor_failed(account_id=owner, client_address=client_address)
            raise
        if passwordless and user_handle is not None and user_handle != owner.encode():
            self._throttle.second_factor_failed(account_id=owner, client_address=client_address)
            raise errors.InvalidSecondFactor(detail="the user handle is another account's")
        self._gate.records.update_second_factor(
            record.factor.id,
            secret=stored.with_sign_count(sign_count).to_secret(),
            used_at=self._clock(),
        )
        account = self._account(owner)
        if account.disabled:
            raise errors.AccountDisabled
        opened = self._gate.pending(session)
        if opened is not None and opened[0]["a"] == owner:
            return self._finish(session, opened[0], opened[1], account)
        # Passwordless: a passkey with user verification is both factors at once.
        self._throttle.second_factor_succeeded(account_id=owner)
        self._sessions._sign_in_after_second_factor(session, account)  # noqa: SLF001
        self._events.emit(AuthEvent(kind="signed_in", account=account, method="passkey"))
        return account

    # Internals

    @property
    def _totp(self) -> TotpSecrets:
        """TOTP secrets' sealer, made on first use (it needs the `mfa` extra)."""
        if self._totp_secrets is None:
            from bpart_auth.totp import TotpSecrets  # noqa: PLC0415 - the `mfa` extra

            secret_key, fallbacks = self._totp_key
            self._totp_secrets = TotpSecrets(secret_key, fallback_secret_keys=fallbacks)
        return self._totp_secrets

    def _relying_party(self) -> RelyingParty:
        rp = self._policy.relying_party
        if rp is None:
            raise errors.ConfigurationError(
                detail="passkeys need SecondFactorPolicy(relying_party=RelyingParty(...))"
            )
        return rp

    def _account(self, account_id: str) -> Account:
        account = self._store.get_account(account_id)
        if account is None:
            raise errors.SignInRequired(detail="the account is gone")
        return account

    def _pending_account(self, payload: dict[str, Any]) -> Account | None:
        account = self._store.get_account(str(payload["a"]))
        if account is None or account.disabled:
            return None
        if account.credentials_changed_at.isoformat() != payload["c"]:
            return None  # the credentials changed since the first factor: start again
        return account

    def _pending_for_step(self, session: Session) -> tuple[dict[str, Any], datetime, Account]:
        opened = self._gate.pending(session)
        if opened is None or opened[0]["s"] != "second_factor":
            raise errors.SignInRequired(detail="no pending second step in this session")
        payload, expires_at = opened
        account = self._pending_account(payload)
        if account is None:
            raise errors.SignInRequired(detail="the pending sign-in's account changed")
        return payload, expires_at, account

    def _finish(
        self, session: Session, payload: dict[str, Any], expires_at: datetime, account: Account
    ) -> Account:
        if not self._gate.spend(payload, expires_at):
            raise errors.SignInRequired(detail="this pending sign-in was used already")
        self._throttle.second_factor_succeeded(account_id=account.id)
        self._sessions._sign_in_after_second_factor(session, account)  # noqa: SLF001
        return account

    def _code_passes(self, account: Account, code: str) -> bool:
        from bpart_auth import totp  # noqa: PLC0415 - the `mfa` extra

        if text_problem(code, limit=_MAX_CODE_INPUT) is not None:
            return False
        now = self._clock()
        for record in self._gate.records.list_second_factors(account.id):
            if record.factor.kind != "totp":
                continue
            try:
                secret = self._totp.open(record.secret, account_id=account.id)
            except errors.InvalidSecondFactor:
                # Sealed under a key no longer configured (or tampered with): this app
                # cannot be used, but a recovery code or another factor still can.
                _log.warning("second factor %s: its secret does not open", record.factor.id)
                continue
            step = totp.matching_step(secret, code, now=now)
            if step is not None:
                if not self._replay_guard(record.factor.id, step):
                    return False  # used already: a replay
                self._gate.records.update_second_factor(record.factor.id, used_at=now)
                return True
        normalised = totp.normalize_recovery_code(code)
        if normalised is None:
            return False
        if self._gate.records.use_recovery_code(
            account.id, code_hash=totp.recovery_code_hash(normalised), now=now
        ):
            self._events.emit(AuthEvent(kind="recovery_code_used", account=account))
            return True
        return False

    def _replay_guard(self, factor_id: str, step: int) -> bool:
        """Use a time step of a factor once; False when it was used already."""
        expires_at = datetime.fromtimestamp((step + 3) * _STEP_SECONDS, tz=timezone.utc)
        return self._single_use.consume(
            purpose=_TOTP_REPLAY, key=f"{factor_id}:{step}", expires_at=expires_at
        )

    def _signed_in(self, session: Session) -> Account:
        account = self._sessions.current(session)
        if account is None:
            raise errors.SignInRequired
        return account

    def _enrolling(self, session: Session) -> tuple[Account, _Opened | None]:
        """The signed-in account, or the one a pending enrolment is for."""
        if session.get(ACCOUNT_KEY) is not None:
            return self._signed_in(session), None
        opened = self._gate.pending(session)
        if opened is None or opened[0]["s"] != "enrol_second_factor":
            raise errors.SignInRequired(detail="neither signed in nor enrolling")
        account = self._pending_account(opened[0])
        if account is None:
            raise errors.SignInRequired(detail="the pending sign-in's account changed")
        return account, opened

    def _keep_enrolment(self, session: Session, account_id: str, *, kind: str, value: str) -> None:
        """Seal a ceremony in progress into the session: a TOTP secret or a challenge.

        `account_id` is empty for a passwordless passkey sign-in (any account).
        """
        expires = self._clock() + _ENROLMENT_LIFETIME
        payload = {"k": kind, "a": account_id, "v": value, "e": int(expires.timestamp())}
        session[ENROLMENT_KEY] = self._box.seal(json.dumps(payload).encode())

    def _open_enrolment(self, session: Session, *, kind: str) -> dict[str, Any] | None:
        payload = _open_sealed(self._box, session.get(ENROLMENT_KEY))
        if (
            payload is None
            or payload.get("k") != kind
            or not isinstance(payload.get("a"), str)
            or not isinstance(payload.get("v"), str)
            or not isinstance(payload.get("e"), int)
            or self._clock().timestamp() >= payload["e"]
        ):
            return None
        return payload

    def _enrolment_value(self, session: Session, account: Account, *, kind: str) -> str:
        payload = self._open_enrolment(session, kind=kind)
        if payload is None or payload["a"] != account.id:
            raise errors.SignInRequired(detail=f"no {kind} enrolment under way")
        return str(payload["v"])

    def _enrolled(
        self,
        session: Session,
        account: Account,
        record: SecondFactorRecord,
        pending: _Opened | None,
    ) -> Enrolled:
        codes: tuple[str, ...] = ()
        if self._gate.records.count_recovery_codes(account.id) == 0:
            codes = self._new_recovery_codes(account)
        updated = self._account(account.id)
        self._events.emit(
            AuthEvent(kind="second_factor_added", account=updated, factor=record.factor)
        )
        if pending is not None:
            self._finish(session, pending[0], pending[1], updated)
            return Enrolled(factor=record.factor, recovery_codes=codes, signed_in=True)
        self._sessions.refresh(session, updated)
        return Enrolled(factor=record.factor, recovery_codes=codes)

    def _new_recovery_codes(self, account: Account) -> tuple[str, ...]:
        from bpart_auth import totp  # noqa: PLC0415 - the `mfa` extra

        codes = tuple(totp.new_recovery_codes())
        self._gate.records.replace_recovery_codes(
            account.id,
            code_hashes=[totp.recovery_code_hash(code) for code in codes],
            now=self._clock(),
        )
        self._events.emit(AuthEvent(kind="recovery_codes_created", account=account))
        return codes
