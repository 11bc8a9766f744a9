"""`MemoryStore`: the whole `AccountStore` in a process's memory, for tests and small tools."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import threading
import uuid
from typing import TYPE_CHECKING

from bpart_auth import errors
from bpart_auth._email import normalize_email
from bpart_auth.models import Account, Identity, Invite, LinkedIdentity, SecondFactor
from bpart_auth.store._checks import (
    check_code_hashes,
    check_factor_kind,
    check_identity,
    check_invite_data,
    check_lookup_key,
    check_name,
    check_secret,
    clean_email,
    disabling_needs_now,
    refuse_unusable_invite,
)
from bpart_auth.store.base import SecondFactorRecord

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from bpart_auth.models import ProviderName, SecondFactorKind


def _key(value: object) -> str:
    """A lookup key as given, or one no record has: an id or hash of another type finds nothing.

    The store's public methods may be handed anything a request carried; a list or a
    dict would make the dictionary lookup itself raise `TypeError`.
    """
    return value if isinstance(value, str) else ""


@dataclasses.dataclass(slots=True)
class _ResetToken:
    account_id: str
    expires_at: datetime


class MemoryStore:
    """A thread-safe, in-process `AccountStore` (and `SecondFactorRecords`), lost at exit.

    One lock guards all state, so every method is atomic and concurrent callers
    see the same invariants a database would enforce. It passes the same contract kit
    (`bpart_auth.testing.StoreContract`) as `SQLStore`.

    Examples:
        >>> from datetime import datetime, timezone
        >>> store = MemoryStore()
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> ann = store.create_account(email="Ann@Example.com", name="Ann",
        ...                            password_hash=None, now=now)
        >>> ann.email
        'ann@example.com'
        >>> store.find_account_by_email("ANN@example.com") == ann
        True
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._account_by_email: dict[str, str] = {}
        self._links: dict[Identity, LinkedIdentity] = {}
        self._invites: dict[str, Invite] = {}
        self._invite_by_token: dict[str, str] = {}
        self._invite_token: dict[str, str] = {}
        self._reset_tokens: dict[str, _ResetToken] = {}
        self._password_hashes: dict[str, str] = {}  # account id: hash; never on `Account`
        self._factors: dict[str, SecondFactorRecord] = {}  # by factor id, in the order added
        self._factor_by_lookup_key: dict[str, str] = {}
        self._recovery_codes: dict[str, set[str]] = {}  # account id: unused code hashes
        self._used_once: dict[tuple[str, str], datetime] = {}
        # (expires_at, (purpose, key)), soonest first, so consume_once forgets only
        # the expired heads and a call costs the same however many keys are held.
        # Expiries mostly come in order (now + a fixed lifetime): those go to a
        # queue, O(1); one earlier than the queue's tail goes to a heap, O(log n).
        # An entry is stale (and skipped) when its key was used again after expiring.
        self._used_once_queue: collections.deque[tuple[datetime, tuple[str, str]]] = (
            collections.deque()
        )
        self._used_once_heap: list[tuple[datetime, tuple[str, str]]] = []

    # Accounts

    def create_account(
        self, *, email: str, name: str, password_hash: str | None, now: datetime
    ) -> Account:
        """See `AccountRecords.create_account`."""
        email = clean_email(email)
        name = check_name(name)
        with self._lock:
            return self._insert_account(
                email=email, name=name, password_hash=password_hash, now=now
            )

    def get_account(self, account_id: str) -> Account | None:
        """See `AccountRecords.get_account`."""
        with self._lock:
            return self._accounts.get(_key(account_id))

    def find_account_by_email(self, email: str) -> Account | None:
        """See `AccountRecords.find_account_by_email`."""
        email = normalize_email(email)
        with self._lock:
            account_id = self._account_by_email.get(email)
            return None if account_id is None else self._accounts[account_id]

    def find_password_hash(self, email: str) -> tuple[Account, str | None] | None:
        """See `AccountRecords.find_password_hash`."""
        email = normalize_email(email)
        with self._lock:
            account_id = self._account_by_email.get(email)
            if account_id is None:
                return None
            return self._accounts[account_id], self._password_hashes.get(account_id)

    def update_account(
        self,
        account_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        disabled: bool | None = None,
        now: datetime | None = None,
    ) -> Account:
        """See `AccountRecords.update_account`."""
        new_email = None if email is None else clean_email(email)
        new_name = None if name is None else check_name(name)
        disabled_at = None
        if disabled:
            if now is None:
                raise disabling_needs_now()
            disabled_at = now
        with self._lock:
            account = self._existing(account_id)
            if new_email is not None and new_email != account.email:
                if new_email in self._account_by_email:
                    raise errors.EmailAlreadyRegistered
                del self._account_by_email[account.email]
                self._account_by_email[new_email] = account_id
            if disabled_at is not None:
                self._drop_reset_tokens(account_id)
                self._revoke_invites_by(account_id, disabled_at)
            return self._save(
                dataclasses.replace(
                    account,
                    email=account.email if new_email is None else new_email,
                    name=account.name if new_name is None else new_name,
                    disabled=account.disabled if disabled is None else disabled,
                    credentials_changed_at=disabled_at or account.credentials_changed_at,
                )
            )

    def set_password_hash(
        self, account_id: str, *, password_hash: str | None, now: datetime
    ) -> Account:
        """See `AccountRecords.set_password_hash`."""
        with self._lock:
            account = self._existing(account_id)
            self._drop_reset_tokens(account_id)
            self._set_password_hash(account.id, password_hash)
            return self._save(
                dataclasses.replace(
                    account, has_password=password_hash is not None, credentials_changed_at=now
                )
            )

    def replace_password_hash(self, account_id: str, *, old: str, new: str) -> bool:
        """See `AccountRecords.replace_password_hash`."""
        with self._lock:
            account = self._accounts.get(_key(account_id))
            if account is None or self._password_hashes.get(account.id) != old:
                return False
            self._password_hashes[account.id] = new
            return True

    # Identities

    def link_identity(
        self, *, account_id: str, identity: Identity, email: str | None, now: datetime
    ) -> LinkedIdentity:
        """See `IdentityRecords.link_identity`."""
        check_identity(identity)
        with self._lock:
            return self._link(account_id=account_id, identity=identity, email=email, now=now)

    def find_account_by_identity(self, identity: Identity) -> Account | None:
        """See `IdentityRecords.find_account_by_identity`."""
        with self._lock:
            link = self._links.get(identity)
            return None if link is None else self._accounts[link.account_id]

    def list_identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        """See `IdentityRecords.list_identities`."""
        with self._lock:
            links = [link for link in self._links.values() if link.account_id == account_id]
        return sorted(links, key=lambda link: link.linked_at)

    def unlink_identity(
        self, *, account_id: str, provider: ProviderName, now: datetime
    ) -> LinkedIdentity | None:
        """See `IdentityRecords.unlink_identity`."""
        with self._lock:
            account = self._existing(account_id)
            mine = [link for link in self._links.values() if link.account_id == account_id]
            target = next((link for link in mine if link.identity.provider == provider), None)
            if target is None:
                return None
            if not account.has_password and len(mine) == 1:
                raise errors.LastSignInMethod
            del self._links[target.identity]
            self._save(dataclasses.replace(account, credentials_changed_at=now))
            return target

    # Invitations

    def create_invite(
        self,
        *,
        email: str,
        invited_by: str | None,
        token_hash: str,
        expires_at: datetime,
        data: Mapping[str, str],
        now: datetime,
    ) -> Invite:
        """See `InviteRecords.create_invite`."""
        email = clean_email(email)
        data = check_invite_data(data)
        with self._lock:
            if email in self._account_by_email:
                raise errors.EmailAlreadyRegistered
            if invited_by is not None and self._existing(invited_by).disabled:
                raise errors.AccountDisabled
            for invite in list(self._invites.values()):
                if invite.email == email and invite.status(now) == "pending":
                    self._invites[invite.id] = dataclasses.replace(invite, revoked_at=now)
            invite = Invite(
                id=str(uuid.uuid4()),
                email=email,
                invited_by=invited_by,
                created_at=now,
                expires_at=expires_at,
                data=data,
            )
            self._invites[invite.id] = invite
            self._set_invite_token(invite.id, token_hash)
            return invite

    def renew_invite(
        self, invite_id: str, *, token_hash: str, expires_at: datetime, now: datetime
    ) -> Invite:
        """See `InviteRecords.renew_invite`."""
        with self._lock:
            invite = self._invites.get(_key(invite_id))
            if invite is None:
                raise errors.InvalidInvite
            refuse_unusable_invite(invite, now, allow_expired=True)
            renewed = dataclasses.replace(invite, created_at=now, expires_at=expires_at)
            self._invites[invite_id] = renewed
            self._set_invite_token(invite_id, token_hash)
            return renewed

    def find_invite(self, token_hash: str) -> Invite | None:
        """See `InviteRecords.find_invite`."""
        with self._lock:
            invite_id = self._invite_by_token.get(_key(token_hash))
            return None if invite_id is None else self._invites[invite_id]

    def accept_invite(
        self,
        *,
        token_hash: str,
        name: str,
        password_hash: str | None,
        identity: Identity | None,
        identity_email: str | None,
        now: datetime,
    ) -> Account:
        """See `InviteRecords.accept_invite`."""
        name = check_name(name)
        if identity is not None:
            check_identity(identity)
        with self._lock:
            invite_id = self._invite_by_token.get(_key(token_hash))
            if invite_id is None:
                raise errors.InvalidInvite
            invite = self._invites[invite_id]
            refuse_unusable_invite(invite, now)
            inviter = None if invite.invited_by is None else self._accounts.get(invite.invited_by)
            if inviter is not None and inviter.disabled:
                raise errors.InviteRevoked
            if identity is not None and identity in self._links:
                raise errors.IdentityAlreadyLinked(provider=identity.provider)
            account = self._insert_account(
                email=invite.email, name=name, password_hash=password_hash, now=now
            )
            if identity is not None:
                self._link(account_id=account.id, identity=identity, email=identity_email, now=now)
            self._invites[invite_id] = dataclasses.replace(
                invite, accepted_at=now, account_id=account.id
            )
            return self._accounts[account.id]

    def revoke_invite(self, invite_id: str, *, now: datetime) -> Invite:
        """See `InviteRecords.revoke_invite`."""
        with self._lock:
            invite = self._invites.get(_key(invite_id))
            if invite is None:
                raise errors.InvalidInvite
            if invite.accepted_at is not None:
                raise errors.InviteAlreadyUsed
            if invite.revoked_at is not None:
                return invite
            revoked = dataclasses.replace(invite, revoked_at=now)
            self._invites[invite_id] = revoked
            return revoked

    def list_pending_invites(self, *, now: datetime) -> Sequence[Invite]:
        """See `InviteRecords.list_pending_invites`."""
        with self._lock:
            pending = [i for i in self._invites.values() if i.status(now) == "pending"]
        return sorted(pending, key=lambda invite: invite.created_at)

    # Password-reset tokens

    def add_reset_token(
        self, *, account_id: str, token_hash: str, expires_at: datetime, now: datetime
    ) -> None:
        """See `ResetTokenRecords.add_reset_token`."""
        del now  # part of the contract; a memory store has nothing to stamp
        with self._lock:
            if self._existing(account_id).disabled:
                raise errors.AccountDisabled
            self._reset_tokens[token_hash] = _ResetToken(account_id, expires_at)

    def find_account_by_reset_token(self, token_hash: str) -> Account | None:
        """See `ResetTokenRecords.find_account_by_reset_token`."""
        with self._lock:
            token = self._reset_tokens.get(_key(token_hash))
            return None if token is None else self._accounts[token.account_id]

    def complete_reset(self, *, token_hash: str, password_hash: str, now: datetime) -> Account:
        """See `ResetTokenRecords.complete_reset`."""
        with self._lock:
            token = self._reset_tokens.get(_key(token_hash))
            if token is None:
                raise errors.InvalidResetToken
            if now >= token.expires_at:
                raise errors.ResetTokenExpired
            if self._accounts[token.account_id].disabled:
                raise errors.AccountDisabled
            return self.set_password_hash(token.account_id, password_hash=password_hash, now=now)

    # Second factors and recovery codes

    def add_second_factor(
        self,
        *,
        account_id: str,
        kind: SecondFactorKind,
        name: str,
        secret: str,
        lookup_key: str | None,
        now: datetime,
    ) -> SecondFactorRecord:
        """See `SecondFactorRecords.add_second_factor`."""
        kind = check_factor_kind(kind)
        name = check_name(name)
        secret = check_secret(secret)
        lookup_key = check_lookup_key(lookup_key)
        with self._lock:
            account = self._existing(account_id)
            if account.disabled:
                raise errors.AccountDisabled
            if lookup_key is not None and lookup_key in self._factor_by_lookup_key:
                raise errors.SecondFactorAlreadyRegistered
            record = SecondFactorRecord(
                factor=SecondFactor(
                    id=str(uuid.uuid4()),
                    account_id=account.id,
                    kind=kind,
                    name=name,
                    created_at=now,
                ),
                secret=secret,
                lookup_key=lookup_key,
            )
            self._factors[record.factor.id] = record
            if lookup_key is not None:
                self._factor_by_lookup_key[lookup_key] = record.factor.id
            self._save(dataclasses.replace(account, credentials_changed_at=now))
            return record

    def list_second_factors(self, account_id: str) -> Sequence[SecondFactorRecord]:
        """See `SecondFactorRecords.list_second_factors`."""
        with self._lock:
            return self._factors_of(_key(account_id))

    def find_second_factor(self, lookup_key: str) -> SecondFactorRecord | None:
        """See `SecondFactorRecords.find_second_factor`."""
        with self._lock:
            factor_id = self._factor_by_lookup_key.get(_key(lookup_key))
            return None if factor_id is None else self._factors[factor_id]

    def update_second_factor(
        self,
        factor_id: str,
        *,
        secret: str | None = None,
        name: str | None = None,
        used_at: datetime | None = None,
    ) -> SecondFactorRecord:
        """See `SecondFactorRecords.update_second_factor`."""
        new_secret = None if secret is None else check_secret(secret)
        new_name = None if name is None else check_name(name)
        with self._lock:
            record = self._factors.get(_key(factor_id))
            if record is None:
                raise errors.SecondFactorNotFound
            factor = record.factor
            updated = dataclasses.replace(
                record,
                factor=dataclasses.replace(
                    factor,
                    name=factor.name if new_name is None else new_name,
                    last_used_at=factor.last_used_at if used_at is None else used_at,
                ),
                secret=record.secret if new_secret is None else new_secret,
            )
            self._factors[factor.id] = updated
            return updated

    def remove_second_factor(
        self, account_id: str, factor_id: str, *, keep_at_least: int, now: datetime
    ) -> SecondFactorRecord:
        """See `SecondFactorRecords.remove_second_factor`."""
        with self._lock:
            account_id = _key(account_id)
            mine = self._factors_of(account_id)
            target = next((r for r in mine if r.factor.id == factor_id), None)
            if target is None:
                raise errors.SecondFactorNotFound
            if len(mine) - 1 < keep_at_least:
                raise errors.LastSecondFactor
            del self._factors[target.factor.id]
            if target.lookup_key is not None:
                del self._factor_by_lookup_key[target.lookup_key]
            if len(mine) == 1:
                self._recovery_codes.pop(account_id, None)
            account = self._accounts[account_id]
            self._save(dataclasses.replace(account, credentials_changed_at=now))
            return target

    def replace_recovery_codes(
        self, account_id: str, *, code_hashes: Sequence[str], now: datetime
    ) -> None:
        """See `SecondFactorRecords.replace_recovery_codes`."""
        hashes = check_code_hashes(code_hashes)
        with self._lock:
            account = self._existing(account_id)
            if hashes and account.disabled:
                raise errors.AccountDisabled
            self._recovery_codes[account.id] = set(hashes)
            self._save(dataclasses.replace(account, credentials_changed_at=now))

    def use_recovery_code(self, account_id: str, *, code_hash: str, now: datetime) -> bool:
        """See `SecondFactorRecords.use_recovery_code`."""
        del now  # part of the contract; a memory store keeps no record of the use
        with self._lock:
            codes = self._recovery_codes.get(_key(account_id))
            if codes is None or _key(code_hash) not in codes:
                return False
            codes.remove(code_hash)
            return True

    def count_recovery_codes(self, account_id: str) -> int:
        """See `SecondFactorRecords.count_recovery_codes`."""
        with self._lock:
            return len(self._recovery_codes.get(_key(account_id), ()))

    # Single use of anything (flow state, for one)

    def consume_once(self, *, purpose: str, key: str, expires_at: datetime, now: datetime) -> bool:
        """True the first time (purpose, key) is seen, False after that until it expires.

        Args:
            purpose: What the key is for (`"flow_state"`), so kinds never collide.
            key: The value to use once.
            expires_at: When the record may be forgotten (the value is dead by then).
            now: The current time.
        """
        with self._lock:
            queue, heap, used = self._used_once_queue, self._used_once_heap, self._used_once
            while queue and queue[0][0] <= now:  # forget what has expired
                until, old = queue.popleft()
                if used.get(old) == until:
                    del used[old]
            while heap and heap[0][0] <= now:
                until, old = heapq.heappop(heap)
                if used.get(old) == until:
                    del used[old]
            name = (purpose, key)
            used_until = used.get(name)
            if used_until is not None and used_until > now:
                return False
            used[name] = expires_at
            if not queue or queue[-1][0] <= expires_at:
                queue.append((expires_at, name))
            else:
                heapq.heappush(heap, (expires_at, name))
            return True

    # Internals: callers hold the lock.

    def _existing(self, account_id: str) -> Account:
        account = self._accounts.get(_key(account_id))
        if account is None:
            raise errors.AccountNotFound
        return account

    def _save(self, account: Account) -> Account:
        self._accounts[account.id] = account
        return account

    def _insert_account(
        self, *, email: str, name: str, password_hash: str | None, now: datetime
    ) -> Account:
        if email in self._account_by_email:
            raise errors.EmailAlreadyRegistered
        account = Account(
            id=str(uuid.uuid4()),
            email=email,
            name=name,
            has_password=password_hash is not None,
            created_at=now,
            credentials_changed_at=now,
        )
        self._account_by_email[email] = account.id
        self._set_password_hash(account.id, password_hash)
        return self._save(account)

    def _set_password_hash(self, account_id: str, password_hash: str | None) -> None:
        if password_hash is None:
            self._password_hashes.pop(account_id, None)
        else:
            self._password_hashes[account_id] = password_hash

    def _link(
        self, *, account_id: str, identity: Identity, email: str | None, now: datetime
    ) -> LinkedIdentity:
        account = self._existing(account_id)
        existing = self._links.get(identity)
        if existing is not None:
            if existing.account_id != account_id:
                raise errors.IdentityAlreadyLinked(provider=identity.provider)
            return existing
        if any(
            link.account_id == account_id and link.identity.provider == identity.provider
            for link in self._links.values()
        ):
            raise errors.ProviderAlreadyLinked(provider=identity.provider)
        link = LinkedIdentity(account_id=account_id, identity=identity, email=email, linked_at=now)
        self._links[identity] = link
        self._save(dataclasses.replace(account, credentials_changed_at=now))
        return link

    def _factors_of(self, account_id: str) -> list[SecondFactorRecord]:
        mine = [r for r in self._factors.values() if r.factor.account_id == account_id]
        return sorted(mine, key=lambda record: record.factor.created_at)  # stable: then added

    def _set_invite_token(self, invite_id: str, token_hash: str) -> None:
        old = self._invite_token.pop(invite_id, None)
        if old is not None:
            del self._invite_by_token[old]
        self._invite_by_token[token_hash] = invite_id
        self._invite_token[invite_id] = token_hash

    def _revoke_invites_by(self, account_id: str, now: datetime) -> None:
        for invite in list(self._invites.values()):
            if invite.invited_by == account_id and invite.status(now) in ("pending", "expired"):
                self._invites[invite.id] = dataclasses.replace(invite, revoked_at=now)

    def _drop_reset_tokens(self, account_id: str) -> None:
        for token_hash in [h for h, t in self._reset_tokens.items() if t.account_id == account_id]:
            del self._reset_tokens[token_hash]
