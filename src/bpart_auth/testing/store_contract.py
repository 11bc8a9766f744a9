"""The store contract kit: one pytest class every `AccountStore` must pass unchanged.

Subclass `StoreContract` in your own tests and give it a `store` fixture that returns
a fresh, empty store:

```python
import pytest
from bpart_auth.testing import StoreContract

class TestMyStore(StoreContract):
    @pytest.fixture
    def store(self):
        return MyStore(...)
```

pytest then runs every contract test against it, races included (50 threads by
default; set `race_threads` lower for a store that cannot take that many).

A store that also keeps second factors (`SecondFactorRecords`) passes
`SecondFactorContract` too, a separate class with the same `store` fixture (the
account helpers come from `StoreContract`, whose tests it does not repeat):

```python
from bpart_auth.testing.store_contract import SecondFactorContract

class TestMyStoreSecondFactors(SecondFactorContract):
    @pytest.fixture
    def store(self):
        return MyStore(...)
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest

from bpart_auth import errors
from bpart_auth.models import Identity

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bpart_auth.models import Account, Invite
    from bpart_auth.store.base import AccountStore, SecondFactorRecord, SecondFactorRecords

    class FactorStore(AccountStore, SecondFactorRecords):
        """What `SecondFactorContract` tests: a store with both Protocols."""


__all__ = ["SecondFactorContract", "StoreContract"]

_Result = TypeVar("_Result")

NOW = datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=5)
WEEK = timedelta(days=7)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
OTHER_HASH = "$argon2id$v=19$m=65536,t=3,p=4$b3RoZXJzYWx0$b3RoZXJoYXNo"
MS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
GOOGLE = "https://accounts.google.com"
PASSKEY_SECRET = '{"public_key": "pQECAyYgASFYIA", "sign_count": 0}'  # noqa: S105 - test data
COUNTED_SECRET = '{"public_key": "pQECAyYgASFYIA", "sign_count": 7}'  # noqa: S105 - test data


def token_hash(label: str) -> str:
    """A SHA-256 hex digest standing in for a hashed token."""
    return hashlib.sha256(label.encode()).hexdigest()


def microsoft(subject: str, tenant: str = MS_TENANT) -> Identity:
    """A Microsoft identity in a tenant."""
    return Identity("microsoft", tenant, subject)


def google(subject: str) -> Identity:
    """A Google identity."""
    return Identity("google", GOOGLE, subject)


def race(threads: int, work: Callable[[int], _Result]) -> list[_Result | BaseException]:
    """Run `work(i)` on `threads` threads released at once; results or raised errors."""
    barrier = threading.Barrier(threads)

    def run(index: int) -> _Result | BaseException:
        barrier.wait()
        try:
            return work(index)
        except Exception as exc:  # noqa: BLE001 - every outcome is collected and checked
            return exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


def stored_hash(store: AccountStore, account_id: str) -> str | None:
    """The password hash the store keeps for an account (via `find_password_hash`)."""
    account = store.get_account(account_id)
    assert account is not None
    found = store.find_password_hash(account.email)
    assert found is not None
    assert found[0] == account
    assert found[0].has_password == (found[1] is not None)
    return found[1]


class StoreContract:
    """The behaviour every `AccountStore` promises. Subclass it with a `store` fixture."""

    race_threads: ClassVar[int] = 50

    # Helpers

    def account(
        self, store: AccountStore, email: str = "ann@example.com", *, password: bool = True
    ) -> Account:
        """Create an account with a password hash (or none)."""
        return store.create_account(
            email=email, name="Ann", password_hash=HASH if password else None, now=NOW
        )

    def invite(
        self, store: AccountStore, email: str = "bob@example.com", label: str = "invite"
    ) -> Invite:
        """Create a pending invitation whose token hash is `token_hash(label)`."""
        return store.create_invite(
            email=email,
            invited_by=None,
            token_hash=token_hash(label),
            expires_at=NOW + WEEK,
            data={"role": "manager"},
            now=NOW,
        )

    # Accounts

    def test_create_account_normalises_and_stamps(self, store: AccountStore) -> None:
        account = store.create_account(
            email="  Ann@Example.COM ", name="Ann", password_hash=HASH, now=NOW
        )
        assert account.id
        assert account.email == "ann@example.com"
        assert (account.name, account.has_password, account.disabled) == ("Ann", True, False)
        assert stored_hash(store, account.id) == HASH
        assert account.created_at == NOW
        assert account.credentials_changed_at == NOW
        assert store.get_account(account.id) == account

    def test_datetimes_come_back_aware_utc_and_exact(self, store: AccountStore) -> None:
        account = self.account(store)
        stored = store.get_account(account.id)
        assert stored is not None
        assert stored.created_at.utcoffset() == timedelta(0)
        assert stored.created_at == NOW
        assert stored.created_at.microsecond == NOW.microsecond

    def test_unknown_account_is_none(self, store: AccountStore) -> None:
        assert store.get_account("no-such-id") is None
        assert store.find_account_by_email("nobody@example.com") is None

    def test_find_by_email_ignores_case_and_spaces(self, store: AccountStore) -> None:
        account = self.account(store)
        assert store.find_account_by_email(" ANN@example.com") == account

    def test_find_password_hash(self, store: AccountStore) -> None:
        ann = self.account(store)
        bob = self.account(store, "bob@example.com", password=False)
        assert store.find_password_hash(" ANN@example.com") == (ann, HASH)
        assert store.find_password_hash("bob@example.com") == (bob, None)
        assert store.find_password_hash("nobody@example.com") is None
        assert not bob.has_password

    def test_the_account_never_carries_its_hash(self, store: AccountStore) -> None:
        account = self.account(store)
        for read in (
            account,
            store.get_account(account.id),
            store.find_account_by_email(account.email),
            store.set_password_hash(account.id, password_hash=OTHER_HASH, now=LATER),
        ):
            assert read is not None
            assert read.has_password
            assert "argon2" not in repr(read)
            assert "argon2" not in repr(dataclasses.asdict(read))

    def test_internationalised_domains_are_one_address(self, store: AccountStore) -> None:
        account = self.account(store, "ann@Bücher.example")
        assert account.email == "ann@xn--bcher-kva.example"
        assert store.find_account_by_email("ANN@xn--bcher-kva.example") == account

    def test_email_is_unique_in_any_case(self, store: AccountStore) -> None:
        first = self.account(store)
        with pytest.raises(errors.EmailAlreadyRegistered):
            self.account(store, "ANN@EXAMPLE.COM")
        assert store.find_account_by_email("ann@example.com") == first

    @pytest.mark.parametrize(
        "email",
        [
            pytest.param("", id="empty"),
            pytest.param("   ", id="blank"),
            pytest.param("ann.example.com", id="no-at"),
            pytest.param("ann@", id="no-domain"),
            pytest.param("@example.com", id="no-local-part"),
            pytest.param("ann@@example.com", id="two-ats"),
            pytest.param("an n@example.com", id="space-inside"),
            pytest.param("ann@exa mple.com", id="space-in-domain"),
            pytest.param("a" * 65 + "@example.com", id="local-part-too-long"),
            pytest.param("ann@" + "a" * 250 + ".com", id="too-long"),
            pytest.param("ann@-example.com", id="bad-domain"),
        ],
    )
    def test_malformed_email_is_refused_and_nothing_written(
        self, store: AccountStore, email: str
    ) -> None:
        with pytest.raises(errors.InvalidEmail) as caught:
            self.account(store, email)
        assert caught.value.code == "invalid_email"
        assert store.find_account_by_email("ann@example.com") is None

    def test_over_long_name_is_refused_and_nothing_written(self, store: AccountStore) -> None:
        with pytest.raises(errors.InvalidInput) as caught:
            store.create_account(
                email="ann@example.com", name="x" * 201, password_hash=None, now=NOW
            )
        assert caught.value.field == "name"
        assert store.find_account_by_email("ann@example.com") is None
        assert self.account(store).email == "ann@example.com"

    def test_update_account_changes_only_what_is_given(self, store: AccountStore) -> None:
        account = self.account(store)
        renamed = store.update_account(account.id, name="Ann Smith")
        assert (renamed.name, renamed.email, renamed.disabled) == (
            "Ann Smith",
            account.email,
            False,
        )
        disabled = store.update_account(account.id, disabled=True, now=LATER)
        assert (disabled.name, disabled.disabled) == ("Ann Smith", True)
        assert store.get_account(account.id) == disabled
        assert disabled.credentials_changed_at == LATER  # its sessions end for good
        enabled = store.update_account(account.id, disabled=False)
        assert (enabled.disabled, enabled.credentials_changed_at) == (False, LATER)

    def test_changing_email_frees_the_old_one(self, store: AccountStore) -> None:
        account = self.account(store)
        moved = store.update_account(account.id, email="Ann.Smith@example.com")
        assert moved.email == "ann.smith@example.com"
        assert store.find_account_by_email("ann.smith@example.com") == moved
        assert store.find_account_by_email("ann@example.com") is None
        assert self.account(store, "ann@example.com").id != account.id

    def test_changing_email_to_a_taken_one_changes_nothing(self, store: AccountStore) -> None:
        ann = self.account(store)
        self.account(store, "bob@example.com")
        with pytest.raises(errors.EmailAlreadyRegistered):
            store.update_account(ann.id, email="BOB@example.com", name="Changed")
        assert store.get_account(ann.id) == ann

    def test_update_unknown_account(self, store: AccountStore) -> None:
        with pytest.raises(errors.AccountNotFound):
            store.update_account("no-such-id", name="x")
        with pytest.raises(errors.AccountNotFound):
            store.set_password_hash("no-such-id", password_hash=HASH, now=NOW)

    def test_set_password_hash_stamps_credentials(self, store: AccountStore) -> None:
        account = self.account(store, password=False)
        changed = store.set_password_hash(account.id, password_hash=HASH, now=LATER)
        assert changed.has_password
        assert stored_hash(store, account.id) == HASH
        assert changed.credentials_changed_at == LATER
        assert store.get_account(account.id) == changed
        cleared = store.set_password_hash(account.id, password_hash=None, now=LATER)
        assert not cleared.has_password

    def test_replace_password_hash_is_conditional_and_no_credential_change(
        self, store: AccountStore
    ) -> None:
        account = self.account(store)
        assert store.replace_password_hash(account.id, old=OTHER_HASH, new="$argon2id$x") is False
        assert store.replace_password_hash(account.id, old=HASH, new=OTHER_HASH) is True
        assert stored_hash(store, account.id) == OTHER_HASH
        assert store.get_account(account.id) == account  # not a credential change
        assert store.replace_password_hash("no-such-id", old=HASH, new=OTHER_HASH) is False

    # Identities

    def test_link_and_find_by_identity(self, store: AccountStore) -> None:
        account = self.account(store)
        link = store.link_identity(
            account_id=account.id, identity=microsoft("oid-1"), email="ann@contoso.com", now=LATER
        )
        assert (link.account_id, link.identity, link.email, link.linked_at) == (
            account.id,
            microsoft("oid-1"),
            "ann@contoso.com",
            LATER,
        )
        found = store.find_account_by_identity(microsoft("oid-1"))
        assert found is not None
        assert found.id == account.id
        assert found.credentials_changed_at == LATER
        assert list(store.list_identities(account.id)) == [link]

    def test_identity_is_the_whole_triple(self, store: AccountStore) -> None:
        ann = self.account(store)
        bob = self.account(store, "bob@example.com")
        store.link_identity(account_id=ann.id, identity=microsoft("same"), email=None, now=NOW)
        store.link_identity(
            account_id=bob.id,
            identity=microsoft("same", tenant="other-tenant"),
            email=None,
            now=NOW,
        )
        assert store.find_account_by_identity(google("same")) is None
        found = store.find_account_by_identity(microsoft("same", tenant="other-tenant"))
        assert found is not None
        assert found.id == bob.id

    def test_relinking_the_same_identity_is_a_no_op(self, store: AccountStore) -> None:
        account = self.account(store)
        first = store.link_identity(
            account_id=account.id, identity=google("g1"), email=None, now=NOW
        )
        again = store.link_identity(
            account_id=account.id, identity=google("g1"), email="new@example.com", now=LATER
        )
        assert again == first
        assert len(store.list_identities(account.id)) == 1

    def test_identity_of_another_account_is_refused(self, store: AccountStore) -> None:
        ann = self.account(store)
        bob = self.account(store, "bob@example.com")
        store.link_identity(account_id=ann.id, identity=google("g1"), email=None, now=NOW)
        with pytest.raises(errors.IdentityAlreadyLinked) as caught:
            store.link_identity(account_id=bob.id, identity=google("g1"), email=None, now=LATER)
        assert caught.value.provider == "google"
        assert list(store.list_identities(bob.id)) == []
        assert store.get_account(bob.id) == bob

    def test_one_identity_per_provider_per_account(self, store: AccountStore) -> None:
        account = self.account(store)
        store.link_identity(account_id=account.id, identity=microsoft("o1"), email=None, now=NOW)
        with pytest.raises(errors.ProviderAlreadyLinked):
            store.link_identity(
                account_id=account.id, identity=microsoft("o2"), email=None, now=NOW
            )
        store.link_identity(account_id=account.id, identity=google("g1"), email=None, now=NOW)
        providers = [link.identity.provider for link in store.list_identities(account.id)]
        assert sorted(providers) == ["google", "microsoft"]

    def test_link_to_unknown_account(self, store: AccountStore) -> None:
        with pytest.raises(errors.AccountNotFound):
            store.link_identity(account_id="no-such-id", identity=google("g"), email=None, now=NOW)
        assert store.find_account_by_identity(google("g")) is None

    def test_over_long_subject_is_refused(self, store: AccountStore) -> None:
        account = self.account(store)
        with pytest.raises(errors.InvalidInput):
            store.link_identity(
                account_id=account.id, identity=google("s" * 1001), email=None, now=NOW
            )
        assert list(store.list_identities(account.id)) == []

    def test_unlink(self, store: AccountStore) -> None:
        account = self.account(store)
        link = store.link_identity(
            account_id=account.id, identity=microsoft("o1"), email=None, now=NOW
        )
        assert store.unlink_identity(account_id=account.id, provider="microsoft", now=LATER) == link
        assert store.find_account_by_identity(microsoft("o1")) is None
        stored = store.get_account(account.id)
        assert stored is not None
        assert stored.credentials_changed_at == LATER
        assert store.unlink_identity(account_id=account.id, provider="microsoft", now=LATER) is None

    def test_unlinking_the_last_sign_in_method_is_refused(self, store: AccountStore) -> None:
        account = self.account(store, password=False)
        store.link_identity(account_id=account.id, identity=microsoft("o1"), email=None, now=NOW)
        with pytest.raises(errors.LastSignInMethod):
            store.unlink_identity(account_id=account.id, provider="microsoft", now=LATER)
        found = store.find_account_by_identity(microsoft("o1"))
        assert found is not None
        assert found.id == account.id
        store.link_identity(account_id=account.id, identity=google("g1"), email=None, now=NOW)
        assert store.unlink_identity(account_id=account.id, provider="microsoft", now=LATER)

    # Emails: validated on every write, looked up by the same key

    @pytest.mark.parametrize(
        "email",
        [
            pytest.param("ann@example.com.", id="trailing-dot"),
            pytest.param("<script>alert(1)</script>@example.com", id="script-tag"),
            pytest.param('"ann"@example.com', id="quoted-local-part"),
            pytest.param("ann(comment)@example.com", id="comment"),
            pytest.param("ann@[192.0.2.1]", id="domain-literal"),
            pytest.param("a..nn@example.com", id="double-dot"),
            pytest.param("ann@localhost", id="no-public-domain"),
            pytest.param("ann\u202e@example.com", id="bidi-override"),
            pytest.param("a" * 1_000_000 + "@example.com", id="one-megabyte"),
        ],
    )
    def test_every_email_write_is_validated_and_a_refusal_writes_nothing(
        self, store: AccountStore, email: str
    ) -> None:
        ann = self.account(store, "ann@example.org")
        with pytest.raises(errors.InvalidEmail) as caught:
            self.account(store, email)
        assert caught.value.code == "invalid_email"
        with pytest.raises(errors.InvalidEmail):
            store.update_account(ann.id, email=email, name="Changed")
        with pytest.raises(errors.InvalidEmail):
            self.invite(store, email)
        assert store.get_account(ann.id) == ann
        assert store.find_invite(token_hash("invite")) is None
        assert list(store.list_pending_invites(now=NOW)) == []

    def test_a_trailing_dot_is_not_a_second_account(self, store: AccountStore) -> None:
        ann = self.account(store)
        with pytest.raises(errors.InvalidEmail):
            self.account(store, "Ann@Example.com.")
        assert store.find_account_by_email("ann@example.com.") is None
        assert store.find_account_by_email("ann@example.com") == ann

    @pytest.mark.parametrize(
        "email",
        [
            pytest.param("a" * 1_000_000 + "@example.com", id="one-megabyte"),
            pytest.param("a" + "\u0301" * 40_000 + "@example.com", id="combining-marks"),
            pytest.param("ann\ud800@example.com", id="lone-surrogate"),
        ],
    )
    def test_lookup_of_an_unbounded_email_is_refused(self, store: AccountStore, email: str) -> None:
        self.account(store)
        with pytest.raises(errors.InvalidEmail):
            store.find_account_by_email(email)

    @pytest.mark.parametrize(
        ("email", "stored", "shown"),
        [
            pytest.param(
                "José@Bücher.example",
                "josé@xn--bcher-kva.example",
                "josé@bücher.example",
                id="unicode-local-part-and-domain",
            ),
            pytest.param(
                "O'Brien+tag@Example.COM",
                "o'brien+tag@example.com",
                "o'brien+tag@example.com",
                id="ascii",
            ),
        ],
    )
    def test_an_accepted_email_is_stored_as_its_own_lookup_key(
        self, store: AccountStore, email: str, stored: str, shown: str
    ) -> None:
        account = self.account(store, email)
        assert (account.email, account.display_email) == (stored, shown)
        for spelling in (email, stored, shown):
            assert store.find_account_by_email(spelling) == account
        invite = self.invite(store, "Zoë@" + email.partition("@")[2])
        accepted = store.accept_invite(
            token_hash=token_hash("invite"),
            name="",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        )
        assert accepted.email == invite.email == "zoë@" + stored.partition("@")[2]
        assert store.find_account_by_email(accepted.display_email.upper()) == accepted

    # Display names: bounded, nothing hidden

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("Ann\u202eSmith", id="right-to-left-override"),
            pytest.param("Ann\u202aSmith", id="left-to-right-embedding"),
            pytest.param("Ann\u2066Smith", id="left-to-right-isolate"),
            pytest.param("Ann\u2069", id="pop-directional-isolate"),
            pytest.param("Ann\u200fSmith", id="right-to-left-mark"),
            pytest.param("Ann\u200bSmith", id="zero-width-space"),
            pytest.param("Ann\u00adSmith", id="soft-hyphen"),
            pytest.param("Ann\ufeff", id="byte-order-mark"),
            pytest.param("Ann\U000e0041", id="tag-character"),
            pytest.param("Ann\nSmith", id="newline"),
            pytest.param("Ann\x1b[31mSmith", id="escape-sequence"),
            pytest.param("Ann\x7f", id="delete"),
            pytest.param("Ann\u2028Smith", id="line-separator"),
            pytest.param("x" * 201, id="over-long"),
            pytest.param("\u202e" * 1_000_000, id="one-megabyte"),
        ],
    )
    def test_a_refused_name_writes_nothing(self, store: AccountStore, name: str) -> None:
        ann = self.account(store)
        self.invite(store)
        calls: dict[str, Callable[[], object]] = {
            "create_account": lambda: store.create_account(
                email="carl@example.com", name=name, password_hash=None, now=NOW
            ),
            "update_account": lambda: store.update_account(ann.id, name=name),
            "accept_invite": lambda: store.accept_invite(
                token_hash=token_hash("invite"),
                name=name,
                password_hash=HASH,
                identity=None,
                identity_email=None,
                now=NOW,
            ),
        }
        for method, call in calls.items():
            with pytest.raises(errors.InvalidInput) as caught:
                call()
            assert (caught.value.code, caught.value.field) == ("invalid_input", "name"), method
        assert store.get_account(ann.id) == ann
        assert store.find_account_by_email("carl@example.com") is None
        assert store.find_account_by_email("bob@example.com") is None
        assert [i.email for i in store.list_pending_invites(now=NOW)] == ["bob@example.com"]

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("Zoë Ardern-Łukasiewicz", id="latin-diacritics"),
            pytest.param("\u0645\u062d\u0645\u062f \u0639\u0644\u06cc", id="arabic-script"),
            pytest.param("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", id="zwnj"),
            pytest.param("\u0915\u094d\u200d\u0937", id="zwj-devanagari"),
            pytest.param("\U0001f469\u200d\U0001f4bb Ann", id="emoji-zwj-sequence"),
            pytest.param("\u5f20\u4f1f", id="cjk"),
            pytest.param("Ann\u00a0Smith", id="no-break-space"),
            pytest.param("x" * 200, id="at-the-limit"),
        ],
    )
    def test_an_accepted_name_is_stored_as_given(self, store: AccountStore, name: str) -> None:
        account = store.create_account(
            email="ann@example.com", name=name, password_hash=None, now=NOW
        )
        assert account.name == name
        assert store.get_account(account.id) == account
        assert store.update_account(account.id, name=name).name == name

    # Invitations

    def test_create_and_find_invite(self, store: AccountStore) -> None:
        invite = self.invite(store, " Bob@Example.com")
        assert invite.email == "bob@example.com"
        assert invite.status(NOW) == "pending"
        assert dict(invite.data) == {"role": "manager"}
        assert store.find_invite(token_hash("invite")) == invite
        assert store.find_invite(token_hash("forged")) is None

    def test_invite_for_an_existing_account_is_refused(self, store: AccountStore) -> None:
        self.account(store, "bob@example.com")
        with pytest.raises(errors.EmailAlreadyRegistered):
            self.invite(store, "BOB@example.com")
        assert store.find_invite(token_hash("invite")) is None

    def test_a_new_invite_revokes_the_pending_one(self, store: AccountStore) -> None:
        first = self.invite(store, label="first")
        second = self.invite(store, label="second")
        old = store.find_invite(token_hash("first"))
        assert old is not None
        assert (old.id, old.status(NOW)) == (first.id, "revoked")
        assert [i.id for i in store.list_pending_invites(now=NOW)] == [second.id]

    def test_accept_with_password(self, store: AccountStore) -> None:
        invite = self.invite(store)
        account = store.accept_invite(
            token_hash=token_hash("invite"),
            name="Bob",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=LATER,
        )
        assert (account.email, account.name, account.has_password) == (
            "bob@example.com",
            "Bob",
            True,
        )
        assert stored_hash(store, account.id) == HASH
        accepted = store.find_invite(token_hash("invite"))
        assert accepted is not None
        assert (accepted.id, accepted.accepted_at, accepted.account_id) == (
            invite.id,
            LATER,
            account.id,
        )
        with pytest.raises(errors.InviteAlreadyUsed):
            store.accept_invite(
                token_hash=token_hash("invite"),
                name="Again",
                password_hash=HASH,
                identity=None,
                identity_email=None,
                now=LATER,
            )

    def test_accept_with_identity_links_it(self, store: AccountStore) -> None:
        self.invite(store)
        account = store.accept_invite(
            token_hash=token_hash("invite"),
            name="Bob",
            password_hash=None,
            identity=microsoft("bob-oid"),
            identity_email="bob@contoso.com",
            now=LATER,
        )
        assert not account.has_password
        found = store.find_account_by_identity(microsoft("bob-oid"))
        assert found is not None
        assert found.id == account.id
        [link] = store.list_identities(account.id)
        assert link.email == "bob@contoso.com"

    @pytest.mark.parametrize(
        ("setup", "error"),
        [
            pytest.param("forged", errors.InvalidInvite, id="forged"),
            pytest.param("expired", errors.InviteExpired, id="expired"),
            pytest.param("revoked", errors.InviteRevoked, id="revoked"),
            pytest.param("used", errors.InviteAlreadyUsed, id="used"),
        ],
    )
    def test_unusable_invites_are_refused(
        self, store: AccountStore, setup: str, error: type[errors.AuthError]
    ) -> None:
        invite = self.invite(store)
        now = LATER
        label = "invite"
        if setup == "forged":
            label = "forged"
        elif setup == "expired":
            now = NOW + WEEK
        elif setup == "revoked":
            store.revoke_invite(invite.id, now=NOW)
        elif setup == "used":
            store.accept_invite(
                token_hash=token_hash("invite"),
                name="Bob",
                password_hash=HASH,
                identity=None,
                identity_email=None,
                now=NOW,
            )
        with pytest.raises(error) as caught:
            store.accept_invite(
                token_hash=token_hash(label),
                name="Mallory",
                password_hash=OTHER_HASH,
                identity=google("mallory"),
                identity_email=None,
                now=now,
            )
        assert caught.value.code == error.code
        assert store.find_account_by_identity(google("mallory")) is None

    def test_accepting_with_a_taken_identity_writes_nothing(self, store: AccountStore) -> None:
        owner = self.account(store)
        store.link_identity(account_id=owner.id, identity=microsoft("taken"), email=None, now=NOW)
        self.invite(store)
        with pytest.raises(errors.IdentityAlreadyLinked):
            store.accept_invite(
                token_hash=token_hash("invite"),
                name="Bob",
                password_hash=None,
                identity=microsoft("taken"),
                identity_email=None,
                now=LATER,
            )
        assert store.find_account_by_email("bob@example.com") is None
        invite = store.find_invite(token_hash("invite"))
        assert invite is not None
        assert invite.status(LATER) == "pending"
        account = store.accept_invite(
            token_hash=token_hash("invite"),
            name="Bob",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=LATER,
        )
        assert account.email == "bob@example.com"

    def test_accepting_when_the_email_got_an_account_writes_nothing(
        self, store: AccountStore
    ) -> None:
        self.invite(store)
        existing = self.account(store, "bob@example.com")
        with pytest.raises(errors.EmailAlreadyRegistered):
            store.accept_invite(
                token_hash=token_hash("invite"),
                name="Bob",
                password_hash=None,
                identity=google("bob"),
                identity_email=None,
                now=LATER,
            )
        assert store.find_account_by_identity(google("bob")) is None
        assert store.find_account_by_email("bob@example.com") == existing
        invite = store.find_invite(token_hash("invite"))
        assert invite is not None
        assert invite.accepted_at is None

    def test_renew_invite_replaces_the_token(self, store: AccountStore) -> None:
        invite = self.invite(store)
        renewed = store.renew_invite(
            invite.id, token_hash=token_hash("renewed"), expires_at=LATER + WEEK, now=LATER
        )
        assert (renewed.id, renewed.expires_at) == (invite.id, LATER + WEEK)
        assert store.find_invite(token_hash("invite")) is None
        assert store.find_invite(token_hash("renewed")) == renewed

    def test_renew_brings_back_an_expired_invite(self, store: AccountStore) -> None:
        invite = self.invite(store)
        later = NOW + WEEK + WEEK
        renewed = store.renew_invite(
            invite.id, token_hash=token_hash("renewed"), expires_at=later + WEEK, now=later
        )
        assert renewed.status(later) == "pending"

    def test_renew_refuses_used_revoked_and_unknown(self, store: AccountStore) -> None:
        invite = self.invite(store)
        store.revoke_invite(invite.id, now=NOW)
        with pytest.raises(errors.InviteRevoked):
            store.renew_invite(invite.id, token_hash=token_hash("x"), expires_at=LATER, now=NOW)
        with pytest.raises(errors.InvalidInvite):
            store.renew_invite("no-such-id", token_hash=token_hash("y"), expires_at=LATER, now=NOW)
        used = self.invite(store, "carol@example.com", label="carol")
        store.accept_invite(
            token_hash=token_hash("carol"),
            name="Carol",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        )
        with pytest.raises(errors.InviteAlreadyUsed):
            store.renew_invite(used.id, token_hash=token_hash("z"), expires_at=LATER, now=NOW)
        assert store.find_invite(token_hash("z")) is None

    def test_revoke_invite(self, store: AccountStore) -> None:
        invite = self.invite(store)
        revoked = store.revoke_invite(invite.id, now=LATER)
        assert revoked.revoked_at == LATER
        assert store.revoke_invite(invite.id, now=LATER + WEEK).revoked_at == LATER
        with pytest.raises(errors.InvalidInvite):
            store.revoke_invite("no-such-id", now=LATER)

    def test_revoking_an_accepted_invite_is_refused(self, store: AccountStore) -> None:
        invite = self.invite(store)
        store.accept_invite(
            token_hash=token_hash("invite"),
            name="Bob",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        )
        with pytest.raises(errors.InviteAlreadyUsed):
            store.revoke_invite(invite.id, now=LATER)

    def test_list_pending_invites(self, store: AccountStore) -> None:
        pending = self.invite(store, "a@example.com", label="a")
        revoked = self.invite(store, "b@example.com", label="b")
        store.revoke_invite(revoked.id, now=NOW)
        self.invite(store, "c@example.com", label="c")
        store.accept_invite(
            token_hash=token_hash("c"),
            name="C",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        )
        short = store.create_invite(
            email="d@example.com",
            invited_by=None,
            token_hash=token_hash("d"),
            expires_at=LATER,
            data={},
            now=NOW,
        )
        assert [i.id for i in store.list_pending_invites(now=NOW)] == [pending.id, short.id]
        assert [i.id for i in store.list_pending_invites(now=LATER)] == [pending.id]

    def test_invite_from_unknown_account(self, store: AccountStore) -> None:
        with pytest.raises(errors.AccountNotFound):
            store.create_invite(
                email="bob@example.com",
                invited_by="no-such-id",
                token_hash=token_hash("i"),
                expires_at=LATER,
                data={},
                now=NOW,
            )
        assert store.find_invite(token_hash("i")) is None

    # Password-reset tokens

    def test_reset_token_is_single_use(self, store: AccountStore) -> None:
        account = self.account(store)
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        changed = store.complete_reset(
            token_hash=token_hash("r"), password_hash=OTHER_HASH, now=NOW
        )
        assert stored_hash(store, account.id) == OTHER_HASH
        assert (changed.id, changed.has_password, changed.credentials_changed_at) == (
            account.id,
            True,
            NOW,
        )
        with pytest.raises(errors.InvalidResetToken) as caught:
            store.complete_reset(token_hash=token_hash("r"), password_hash=HASH, now=NOW)
        assert caught.value.code == "reset_token_invalid"
        assert stored_hash(store, account.id) == OTHER_HASH

    def test_find_account_by_reset_token(self, store: AccountStore) -> None:
        account = self.account(store)
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        assert store.find_account_by_reset_token(token_hash("r")) == account
        assert store.find_account_by_reset_token(token_hash("forged")) is None
        store.complete_reset(token_hash=token_hash("r"), password_hash=OTHER_HASH, now=NOW)
        assert store.find_account_by_reset_token(token_hash("r")) is None

    def test_expired_reset_token(self, store: AccountStore) -> None:
        account = self.account(store)
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        with pytest.raises(errors.ResetTokenExpired):
            store.complete_reset(token_hash=token_hash("r"), password_hash=OTHER_HASH, now=LATER)
        assert store.get_account(account.id) == account

    def test_unknown_reset_token_and_account(self, store: AccountStore) -> None:
        with pytest.raises(errors.InvalidResetToken):
            store.complete_reset(token_hash=token_hash("nope"), password_hash=HASH, now=NOW)
        with pytest.raises(errors.AccountNotFound):
            store.add_reset_token(
                account_id="no-such-id", token_hash=token_hash("r"), expires_at=LATER, now=NOW
            )

    @pytest.mark.parametrize("how", ["reset", "password-change"])
    def test_a_password_change_kills_every_reset_token(self, store: AccountStore, how: str) -> None:
        account = self.account(store)
        other = self.account(store, "bob@example.com")
        for label in ("r1", "r2", "r3"):
            store.add_reset_token(
                account_id=account.id, token_hash=token_hash(label), expires_at=LATER, now=NOW
            )
        store.add_reset_token(
            account_id=other.id, token_hash=token_hash("bob"), expires_at=LATER, now=NOW
        )
        if how == "reset":
            store.complete_reset(token_hash=token_hash("r1"), password_hash=OTHER_HASH, now=NOW)
        else:
            store.set_password_hash(account.id, password_hash=OTHER_HASH, now=NOW)
        for label in ("r2", "r3"):
            with pytest.raises(errors.InvalidResetToken):
                store.complete_reset(token_hash=token_hash(label), password_hash=HASH, now=NOW)
        bob = store.complete_reset(token_hash=token_hash("bob"), password_hash=HASH, now=NOW)
        assert bob.id == other.id

    # Disabled accounts: disabling kills what the account could still use.

    def sent_invite(
        self,
        store: AccountStore,
        inviter: Account,
        email: str,
        *,
        expires_at: datetime = NOW + WEEK,
    ) -> Invite:
        """Create a pending invitation sent by `inviter`, token hash `token_hash(email)`."""
        return store.create_invite(
            email=email,
            invited_by=inviter.id,
            token_hash=token_hash(email),
            expires_at=expires_at,
            data={},
            now=NOW,
        )

    def test_disabling_kills_reset_tokens_and_revokes_the_invites_it_sent(
        self, store: AccountStore
    ) -> None:
        ann = self.account(store)
        bob = self.account(store, "bob@example.com")
        for label in ("ann-1", "ann-2"):
            store.add_reset_token(
                account_id=ann.id, token_hash=token_hash(label), expires_at=LATER, now=NOW
            )
        store.add_reset_token(
            account_id=bob.id, token_hash=token_hash("bob"), expires_at=LATER, now=NOW
        )
        pending = self.sent_invite(store, ann, "carol@example.com")
        expired = self.sent_invite(store, ann, "dave@example.com", expires_at=NOW + timedelta(1))
        self.sent_invite(store, ann, "erin@example.com")
        store.accept_invite(
            token_hash=token_hash("erin@example.com"),
            name="Erin",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        )
        bobs = self.sent_invite(store, bob, "frank@example.com")
        when = NOW + timedelta(days=2)

        disabled = store.update_account(ann.id, disabled=True, now=when)

        assert disabled.disabled
        assert (disabled.has_password, disabled.credentials_changed_at) == (True, when)
        assert stored_hash(store, ann.id) == HASH
        for label in ("ann-1", "ann-2"):
            assert store.find_account_by_reset_token(token_hash(label)) is None
        assert store.find_account_by_reset_token(token_hash("bob")) == bob
        for invite in (pending, expired):
            found = store.find_invite(token_hash(invite.email))
            assert found is not None
            assert (found.status(when), found.revoked_at) == ("revoked", when)
        still_accepted = store.find_invite(token_hash("erin@example.com"))
        assert still_accepted is not None
        assert (still_accepted.status(when), still_accepted.revoked_at) == ("accepted", None)
        assert [i.id for i in store.list_pending_invites(now=when)] == [bobs.id]

    def test_disabling_needs_a_time_and_changes_nothing_without_one(
        self, store: AccountStore
    ) -> None:
        ann = self.account(store)
        store.add_reset_token(
            account_id=ann.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        with pytest.raises(errors.InvalidInput) as caught:
            store.update_account(ann.id, disabled=True)
        assert caught.value.field == "now"
        assert store.get_account(ann.id) == ann
        assert store.find_account_by_reset_token(token_hash("r")) == ann

    def test_enabling_again_brings_nothing_back(self, store: AccountStore) -> None:
        ann = self.account(store)
        store.add_reset_token(
            account_id=ann.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        self.sent_invite(store, ann, "carol@example.com")
        store.update_account(ann.id, disabled=True, now=NOW)

        enabled = store.update_account(ann.id, disabled=False)

        assert enabled == ann
        assert store.find_account_by_reset_token(token_hash("r")) is None
        with pytest.raises(errors.InvalidResetToken):
            store.complete_reset(token_hash=token_hash("r"), password_hash=OTHER_HASH, now=NOW)
        with pytest.raises(errors.InviteRevoked):
            store.accept_invite(
                token_hash=token_hash("carol@example.com"),
                name="Carol",
                password_hash=HASH,
                identity=None,
                identity_email=None,
                now=NOW,
            )
        assert store.find_account_by_email("carol@example.com") is None
        # What the enabled account does from now on works as before.
        self.sent_invite(store, ann, "dave@example.com")
        store.add_reset_token(
            account_id=ann.id, token_hash=token_hash("new"), expires_at=LATER, now=NOW
        )
        assert store.find_account_by_reset_token(token_hash("new")) == ann

    def test_a_disabled_account_gets_no_reset_token(self, store: AccountStore) -> None:
        ann = self.account(store)
        store.update_account(ann.id, disabled=True, now=NOW)
        with pytest.raises(errors.AccountDisabled) as caught:
            store.add_reset_token(
                account_id=ann.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
            )
        assert caught.value.code == "account_disabled"
        assert store.find_account_by_reset_token(token_hash("r")) is None

    def test_a_disabled_account_invites_no_one(self, store: AccountStore) -> None:
        ann = self.account(store)
        earlier = self.invite(store, "carol@example.com", label="earlier")
        store.update_account(ann.id, disabled=True, now=NOW)
        with pytest.raises(errors.AccountDisabled):
            self.sent_invite(store, ann, "carol@example.com")
        assert store.find_invite(token_hash("carol@example.com")) is None
        # Refused before anything moved: the email's pending invitation stays.
        assert [i.id for i in store.list_pending_invites(now=NOW)] == [earlier.id]

    def test_an_invitation_dies_with_its_inviter(self, store: AccountStore) -> None:
        ann = self.account(store)
        invite = self.sent_invite(store, ann, "carol@example.com")
        store.update_account(ann.id, disabled=True, now=LATER)
        with pytest.raises(errors.InviteRevoked) as caught:
            store.accept_invite(
                token_hash=token_hash("carol@example.com"),
                name="Carol",
                password_hash=None,
                identity=google("carol"),
                identity_email=None,
                now=LATER,
            )
        assert caught.value.code == "invite_revoked"
        assert store.find_account_by_email("carol@example.com") is None
        assert store.find_account_by_identity(google("carol")) is None
        found = store.find_invite(token_hash("carol@example.com"))
        assert found is not None
        assert (found.id, found.accepted_at, found.account_id) == (invite.id, None, None)
        with pytest.raises(errors.InviteRevoked):
            store.renew_invite(
                invite.id, token_hash=token_hash("again"), expires_at=LATER + WEEK, now=LATER
            )

    def test_a_disabled_account_completes_no_reset(self, store: AccountStore) -> None:
        ann = self.account(store)
        store.add_reset_token(
            account_id=ann.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        store.update_account(ann.id, disabled=True, now=NOW)
        with pytest.raises((errors.InvalidResetToken, errors.AccountDisabled)):
            store.complete_reset(token_hash=token_hash("r"), password_hash=OTHER_HASH, now=NOW)
        stored = store.get_account(ann.id)
        assert stored is not None
        assert stored.credentials_changed_at == NOW
        assert stored_hash(store, ann.id) == HASH

    # Keys of any type: a lookup by a value a request carried finds nothing.

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param(None, id="none"),
            pytest.param(42, id="int"),
            pytest.param(["a list"], id="list"),
            pytest.param({"a": "dict"}, id="dict"),
            pytest.param(b"bytes", id="bytes"),
            pytest.param("", id="empty"),
            pytest.param("x" * 100_000, id="long"),
            pytest.param("\ud800", id="lone-surrogate"),
            pytest.param("\x00", id="nul"),
        ],
    )
    def test_a_key_of_any_type_finds_nothing(self, store: AccountStore, key: Any) -> None:  # noqa: ANN401
        account = self.account(store)
        self.invite(store)
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash("reset"), expires_at=LATER, now=NOW
        )
        assert store.get_account(key) is None
        assert store.find_invite(key) is None
        assert store.find_account_by_reset_token(key) is None
        assert list(store.list_identities(key)) == []
        with pytest.raises(errors.AccountNotFound):
            store.update_account(key, name="Renamed")
        with pytest.raises(errors.InvalidInvite):
            store.revoke_invite(key, now=NOW)
        with pytest.raises(errors.InvalidResetToken):
            store.complete_reset(token_hash=key, password_hash=OTHER_HASH, now=NOW)
        assert store.get_account(account.id) == account  # nothing moved

    # Races: the store, not Python, keeps the invariants.

    def test_race_one_invite_many_acceptances(self, store: AccountStore) -> None:
        self.invite(store)

        def accept(index: int) -> Account:
            with_identity = index % 2 == 1
            return store.accept_invite(
                token_hash=token_hash("invite"),
                name=f"Bob {index}",
                password_hash=None if with_identity else HASH,
                identity=microsoft(f"oid-{index}") if with_identity else None,
                identity_email=None,
                now=LATER,
            )

        outcomes = race(self.race_threads, accept)
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1, losers[:3]
        assert all(isinstance(o, errors.InvalidInvite) for o in losers), losers[:3]
        [winner] = winners
        assert store.find_account_by_email("bob@example.com") == store.get_account(winner.id)
        linked = [
            i
            for i in range(self.race_threads)
            if store.find_account_by_identity(microsoft(f"oid-{i}"))
        ]
        assert len(linked) == (0 if winner.has_password else 1)
        invite = store.find_invite(token_hash("invite"))
        assert invite is not None
        assert invite.account_id == winner.id

    def test_race_one_identity_many_accounts(self, store: AccountStore) -> None:
        accounts = [self.account(store, f"user{i}@example.com") for i in range(self.race_threads)]

        def link(index: int) -> object:
            return store.link_identity(
                account_id=accounts[index].id,
                identity=microsoft("contested"),
                email=None,
                now=LATER,
            )

        outcomes = race(self.race_threads, link)
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(losers) == self.race_threads - 1, losers[:3]
        assert all(isinstance(o, errors.IdentityAlreadyLinked) for o in losers), losers[:3]
        owner = store.find_account_by_identity(microsoft("contested"))
        assert owner is not None
        owners = [a.id for a in accounts if store.list_identities(a.id)]
        assert owners == [owner.id]

    def test_race_one_email_many_cases(self, store: AccountStore) -> None:
        def spelling(index: int) -> str:
            local = "".join(
                ch.upper() if index >> bit & 1 else ch for bit, ch in enumerate("annie")
            )
            return f"{local}@Example.com"

        outcomes = race(self.race_threads, lambda i: self.account(store, spelling(i)))
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(o, errors.EmailAlreadyRegistered) for o in losers), losers[:3]
        assert store.find_account_by_email("annie@example.com") == winners[0]

    def test_race_one_reset_token_many_uses(self, store: AccountStore) -> None:
        account = self.account(store)
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
        outcomes = race(
            self.race_threads,
            lambda i: store.complete_reset(
                token_hash=token_hash("r"), password_hash=f"$argon2id${i}", now=NOW
            ),
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(o, errors.InvalidResetToken) for o in losers), losers[:3]
        (winner,) = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
        assert stored_hash(store, account.id) == f"$argon2id${winner}"

    def test_race_disable_against_resets(self, store: AccountStore) -> None:
        # One thread disables, the others each complete a reset with their own token.
        # At most one reset wins, and only before the disable: the disabled account
        # the disable returned is the account as it stays.
        account = self.account(store)
        for index in range(1, self.race_threads):
            store.add_reset_token(
                account_id=account.id, token_hash=token_hash(f"r{index}"), expires_at=LATER, now=NOW
            )

        def work(index: int) -> Account:
            if index == 0:
                return store.update_account(account.id, disabled=True, now=NOW)
            return store.complete_reset(
                token_hash=token_hash(f"r{index}"), password_hash=f"$argon2id${index}", now=NOW
            )

        outcomes = race(self.race_threads, work)
        disabled, resets = outcomes[0], outcomes[1:]
        assert not isinstance(disabled, BaseException), disabled
        assert disabled.disabled
        winners = [o for o in resets if not isinstance(o, BaseException)]
        losers = [o for o in resets if isinstance(o, BaseException)]
        assert len(winners) <= 1
        refusals = (errors.InvalidResetToken, errors.AccountDisabled)
        assert all(isinstance(o, refusals) for o in losers), losers[:3]
        assert store.get_account(account.id) == disabled
        assert all(
            store.find_account_by_reset_token(token_hash(f"r{index}")) is None
            for index in range(1, self.race_threads)
        )

    def test_race_disable_against_new_tokens_and_invitations(self, store: AccountStore) -> None:
        # Whatever was added before the disable dies with it; whatever comes after is
        # refused: nothing the disabled account could use survives.
        account = self.account(store)

        def work(index: int) -> object:
            if index == 0:
                return store.update_account(account.id, disabled=True, now=LATER)
            if index % 2:
                store.add_reset_token(
                    account_id=account.id,
                    token_hash=token_hash(f"r{index}"),
                    expires_at=LATER + WEEK,
                    now=NOW,
                )
                return None
            return self.sent_invite(store, account, f"guest{index}@example.com")

        outcomes = race(self.race_threads, work)
        assert not isinstance(outcomes[0], BaseException), outcomes[0]
        errors_seen = [o for o in outcomes[1:] if isinstance(o, BaseException)]
        assert all(isinstance(o, errors.AccountDisabled) for o in errors_seen), errors_seen[:3]
        for index in range(1, self.race_threads):
            if index % 2:
                assert store.find_account_by_reset_token(token_hash(f"r{index}")) is None
            else:
                invite = store.find_invite(token_hash(f"guest{index}@example.com"))
                assert invite is None or invite.status(LATER) == "revoked"
        assert list(store.list_pending_invites(now=LATER)) == []

    def test_race_disable_against_acceptances(self, store: AccountStore) -> None:
        # Invitations sent by an account being disabled: each is either accepted
        # (before the disable, with its account) or revoked, never left pending.
        inviter = self.account(store)
        emails = [f"guest{index}@example.com" for index in range(1, self.race_threads)]
        for email in emails:
            self.sent_invite(store, inviter, email)

        def work(index: int) -> Account:
            if index == 0:
                return store.update_account(inviter.id, disabled=True, now=LATER)
            return store.accept_invite(
                token_hash=token_hash(emails[index - 1]),
                name="Guest",
                password_hash=HASH,
                identity=None,
                identity_email=None,
                now=LATER,
            )

        outcomes = race(self.race_threads, work)
        assert not isinstance(outcomes[0], BaseException), outcomes[0]
        for email, outcome in zip(emails, outcomes[1:], strict=True):
            invite = store.find_invite(token_hash(email))
            assert invite is not None
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, errors.InviteRevoked), outcome
                assert invite.status(LATER) == "revoked"
                assert store.find_account_by_email(email) is None
            else:
                assert invite.status(LATER) == "accepted"
                assert invite.account_id == outcome.id


# Second factors


def code_hash(label: str) -> str:
    """A recovery code's stored form (SHA-256 hex) standing in for a real one."""
    return token_hash(f"recovery {label}")


def _names(records: Sequence[SecondFactorRecord]) -> list[str]:
    return [record.factor.name for record in records]


class SecondFactorContract:
    """The behaviour every `SecondFactorRecords` promises (on an `AccountStore`).

    Subclass it with a `store` fixture returning a fresh store that implements both.
    """

    race_threads: ClassVar[int] = 50

    # Helpers

    def account(self, store: FactorStore, email: str = "ann@example.com") -> Account:
        """Create an account with a password hash."""
        return store.create_account(email=email, name="Ann", password_hash=HASH, now=NOW)

    def totp(
        self, store: FactorStore, account: Account, name: str = "Phone", *, now: datetime = LATER
    ) -> SecondFactorRecord:
        """Add an authenticator app to an account."""
        return store.add_second_factor(
            account_id=account.id,
            kind="totp",
            name=name,
            secret=f"sealed secret of {name}",
            lookup_key=None,
            now=now,
        )

    def passkey(
        self, store: FactorStore, account: Account, credential_id: str, name: str = "YubiKey"
    ) -> SecondFactorRecord:
        """Add a passkey whose credential id is `credential_id` to an account."""
        return store.add_second_factor(
            account_id=account.id,
            kind="passkey",
            name=name,
            secret=PASSKEY_SECRET,
            lookup_key=credential_id,
            now=LATER,
        )

    def stamp_of(self, store: FactorStore, account: Account) -> datetime:
        """The account's `credentials_changed_at` as stored now."""
        stored = store.get_account(account.id)
        assert stored is not None
        return stored.credentials_changed_at

    # Adding, listing, finding

    def test_add_lists_finds_and_stamps(self, store: FactorStore) -> None:
        ann = self.account(store)
        phone = self.totp(store, ann)
        key = self.passkey(store, ann, "Y3JlZC1pZA")
        assert phone.factor.account_id == ann.id
        assert (phone.factor.kind, phone.factor.name) == ("totp", "Phone")
        assert (phone.factor.created_at, phone.factor.last_used_at) == (LATER, None)
        assert (phone.secret, phone.lookup_key) == ("sealed secret of Phone", None)
        assert (key.factor.kind, key.lookup_key) == ("passkey", "Y3JlZC1pZA")
        assert phone.factor.id != key.factor.id
        assert list(store.list_second_factors(ann.id)) == [phone, key]
        assert store.find_second_factor("Y3JlZC1pZA") == key
        assert store.find_second_factor("Y3JlZC1pZa") is None  # base64url is case-sensitive
        assert self.stamp_of(store, ann) == LATER
        assert "sealed secret" not in repr(phone)

    def test_factors_are_listed_oldest_first_per_account(self, store: FactorStore) -> None:
        ann, bob = self.account(store), self.account(store, "bob@example.com")
        for index in range(5):  # same microsecond: the order they were added
            self.totp(store, ann, f"ann {index}")
        self.totp(store, bob, "bob", now=NOW)
        self.totp(store, ann, "ann early", now=NOW)
        assert _names(store.list_second_factors(ann.id)) == [
            "ann early",
            *(f"ann {index}" for index in range(5)),
        ]
        assert _names(store.list_second_factors(bob.id)) == ["bob"]
        assert list(store.list_second_factors("no-such-id")) == []

    def test_a_credential_id_is_unique_across_the_store(self, store: FactorStore) -> None:
        ann, bob = self.account(store), self.account(store, "bob@example.com")
        key = self.passkey(store, ann, "c2FtZQ")
        for owner in (ann, bob):
            with pytest.raises(errors.SecondFactorAlreadyRegistered):
                self.passkey(store, owner, "c2FtZQ", name="Again")
        assert list(store.list_second_factors(ann.id)) == [key]
        assert list(store.list_second_factors(bob.id)) == []
        assert self.stamp_of(store, bob) == NOW  # a refused add is no credential change
        self.totp(store, bob)  # any number of factors without a lookup key
        self.totp(store, bob, "Tablet")
        assert len(store.list_second_factors(bob.id)) == 2  # noqa: PLR2004

    def test_adding_to_an_unknown_account(self, store: FactorStore) -> None:
        with pytest.raises(errors.AccountNotFound):
            store.add_second_factor(
                account_id="no-such-id",
                kind="totp",
                name="Phone",
                secret=PASSKEY_SECRET,
                lookup_key=None,
                now=NOW,
            )

    def test_a_disabled_account_gets_no_factor_and_keeps_its_own(self, store: FactorStore) -> None:
        ann = self.account(store)
        phone = self.totp(store, ann)
        store.replace_recovery_codes(ann.id, code_hashes=[code_hash("1")], now=LATER)
        store.update_account(ann.id, disabled=True, now=LATER + WEEK)
        with pytest.raises(errors.AccountDisabled):
            self.passkey(store, ann, "bmV3")
        with pytest.raises(errors.AccountDisabled):
            store.replace_recovery_codes(ann.id, code_hashes=[code_hash("2")], now=LATER + WEEK)
        assert list(store.list_second_factors(ann.id)) == [phone]
        assert store.find_second_factor("bmV3") is None
        assert store.count_recovery_codes(ann.id) == 1
        enabled = store.update_account(ann.id, disabled=False)
        assert list(store.list_second_factors(enabled.id)) == [phone]

    @pytest.mark.parametrize(
        ("changes", "field_name"),
        [
            pytest.param({"name": "x" * 201}, "name", id="long-name"),
            pytest.param({"name": "Phone\u202e"}, "name", id="bidi-name"),
            pytest.param({"name": 7}, "name", id="name-not-str"),
            pytest.param({"secret": ""}, "secret", id="empty-secret"),
            pytest.param({"secret": "s" * 4097}, "secret", id="long-secret"),
            pytest.param({"secret": "s\x00"}, "secret", id="nul-secret"),
            pytest.param({"lookup_key": ""}, "lookup_key", id="empty-lookup-key"),
            pytest.param({"lookup_key": "k" * 1365}, "lookup_key", id="long-lookup-key"),
            pytest.param({"lookup_key": "k\ud800"}, "lookup_key", id="surrogate-lookup-key"),
            pytest.param({"kind": "sms"}, "kind", id="unknown-kind"),
        ],
    )
    def test_refused_input_writes_nothing(
        self, store: FactorStore, changes: dict[str, Any], field_name: str
    ) -> None:
        ann = self.account(store)
        values: dict[str, Any] = {
            "account_id": ann.id,
            "kind": "passkey",
            "name": "Key",
            "secret": "{}",
            "lookup_key": "a2V5",
            "now": LATER,
        }
        with pytest.raises(errors.InvalidInput) as caught:
            store.add_second_factor(**(values | changes))
        assert caught.value.field == field_name
        assert list(store.list_second_factors(ann.id)) == []
        assert self.stamp_of(store, ann) == NOW

    def test_the_longest_values_are_kept_whole(self, store: FactorStore) -> None:
        ann = self.account(store)
        record = store.add_second_factor(
            account_id=ann.id,
            kind="passkey",
            name="n" * 200,
            secret="s" * 4096,
            lookup_key="k" * 1364,
            now=LATER,
        )
        assert store.find_second_factor("k" * 1364) == record
        assert store.list_second_factors(ann.id)[0].secret == "s" * 4096

    # Updating

    def test_update_changes_only_what_is_given_and_is_no_credential_change(
        self, store: FactorStore
    ) -> None:
        ann = self.account(store)
        key = self.passkey(store, ann, "a2V5")
        used = LATER + WEEK
        renamed = store.update_second_factor(key.factor.id, name="Blue key")
        assert renamed.factor.name == "Blue key"
        assert (renamed.secret, renamed.lookup_key) == (key.secret, key.lookup_key)
        counted = store.update_second_factor(key.factor.id, secret=COUNTED_SECRET, used_at=used)
        assert counted.secret == COUNTED_SECRET
        assert counted.factor.last_used_at == used
        assert counted.factor.name == "Blue key"
        assert counted.factor.created_at == LATER
        assert store.update_second_factor(key.factor.id) == counted
        assert store.find_second_factor("a2V5") == counted
        assert list(store.list_second_factors(ann.id)) == [counted]
        assert self.stamp_of(store, ann) == LATER  # from the add, not the updates

    def test_update_refuses_unknown_ids_and_bad_input(self, store: FactorStore) -> None:
        ann = self.account(store)
        phone = self.totp(store, ann)
        with pytest.raises(errors.SecondFactorNotFound):
            store.update_second_factor("no-such-id", name="x")
        with pytest.raises(errors.InvalidInput):
            store.update_second_factor(phone.factor.id, name="a\nb")
        with pytest.raises(errors.InvalidInput):
            store.update_second_factor(phone.factor.id, secret="")
        assert list(store.list_second_factors(ann.id)) == [phone]

    # Removing

    def test_remove_returns_what_it_removed_and_stamps(self, store: FactorStore) -> None:
        ann = self.account(store)
        phone, key = self.totp(store, ann), self.passkey(store, ann, "a2V5")
        removed = store.remove_second_factor(
            ann.id, key.factor.id, keep_at_least=1, now=LATER + WEEK
        )
        assert removed == key
        assert list(store.list_second_factors(ann.id)) == [phone]
        assert store.find_second_factor("a2V5") is None
        assert self.stamp_of(store, ann) == LATER + WEEK
        assert self.passkey(store, ann, "a2V5").lookup_key == "a2V5"  # the id is free again

    def test_remove_only_the_accounts_own_factor(self, store: FactorStore) -> None:
        ann, bob = self.account(store), self.account(store, "bob@example.com")
        phone = self.totp(store, ann)
        for account_id, factor_id in [
            (bob.id, phone.factor.id),
            (ann.id, "no-such-id"),
            ("no-such-id", phone.factor.id),
        ]:
            with pytest.raises(errors.SecondFactorNotFound):
                store.remove_second_factor(account_id, factor_id, keep_at_least=0, now=LATER)
        assert list(store.list_second_factors(ann.id)) == [phone]
        assert self.stamp_of(store, bob) == NOW

    def test_keep_at_least_is_enforced(self, store: FactorStore) -> None:
        ann = self.account(store)
        phone, tablet = self.totp(store, ann), self.totp(store, ann, "Tablet")
        with pytest.raises(errors.LastSecondFactor):
            store.remove_second_factor(ann.id, phone.factor.id, keep_at_least=2, now=LATER + WEEK)
        store.remove_second_factor(ann.id, phone.factor.id, keep_at_least=1, now=LATER)
        with pytest.raises(errors.LastSecondFactor):
            store.remove_second_factor(ann.id, tablet.factor.id, keep_at_least=1, now=LATER + WEEK)
        assert list(store.list_second_factors(ann.id)) == [tablet]
        assert self.stamp_of(store, ann) == LATER  # the refusals changed nothing

    def test_removing_the_last_factor_deletes_the_recovery_codes(self, store: FactorStore) -> None:
        ann, bob = self.account(store), self.account(store, "bob@example.com")
        phone, tablet = self.totp(store, ann), self.totp(store, ann, "Tablet")
        self.totp(store, bob)
        store.replace_recovery_codes(
            ann.id, code_hashes=[code_hash("a"), code_hash("b")], now=LATER
        )
        store.replace_recovery_codes(bob.id, code_hashes=[code_hash("a")], now=LATER)
        store.remove_second_factor(ann.id, phone.factor.id, keep_at_least=0, now=LATER)
        assert store.count_recovery_codes(ann.id) == 2  # noqa: PLR2004 - one factor is left
        store.remove_second_factor(ann.id, tablet.factor.id, keep_at_least=0, now=LATER)
        assert store.count_recovery_codes(ann.id) == 0
        assert store.use_recovery_code(ann.id, code_hash=code_hash("a"), now=LATER) is False
        assert store.count_recovery_codes(bob.id) == 1

    # Recovery codes

    def test_recovery_codes_are_single_use_and_per_account(self, store: FactorStore) -> None:
        ann, bob = self.account(store), self.account(store, "bob@example.com")
        hashes = [code_hash(str(index)) for index in range(10)]
        store.replace_recovery_codes(ann.id, code_hashes=hashes, now=LATER)
        assert self.stamp_of(store, ann) == LATER
        assert store.count_recovery_codes(ann.id) == 10  # noqa: PLR2004
        assert store.use_recovery_code(bob.id, code_hash=hashes[0], now=LATER) is False
        assert store.use_recovery_code(ann.id, code_hash=hashes[0], now=LATER) is True
        assert store.use_recovery_code(ann.id, code_hash=hashes[0], now=LATER) is False
        assert store.use_recovery_code(ann.id, code_hash=code_hash("other"), now=LATER) is False
        assert store.count_recovery_codes(ann.id) == 9  # noqa: PLR2004
        assert store.count_recovery_codes(bob.id) == 0
        assert self.stamp_of(store, ann) == LATER  # spending one is no credential change

    def test_new_recovery_codes_replace_the_old_ones(self, store: FactorStore) -> None:
        ann = self.account(store)
        store.replace_recovery_codes(ann.id, code_hashes=[code_hash("old")], now=LATER)
        store.replace_recovery_codes(
            ann.id, code_hashes=[code_hash("new"), code_hash("old 2")], now=LATER + WEEK
        )
        assert self.stamp_of(store, ann) == LATER + WEEK
        assert store.use_recovery_code(ann.id, code_hash=code_hash("old"), now=LATER) is False
        assert store.use_recovery_code(ann.id, code_hash=code_hash("new"), now=LATER) is True
        assert store.count_recovery_codes(ann.id) == 1
        store.replace_recovery_codes(ann.id, code_hashes=[], now=LATER)
        assert store.count_recovery_codes(ann.id) == 0

    @pytest.mark.parametrize(
        "hashes",
        [
            pytest.param([code_hash("a").upper()], id="upper-case"),
            pytest.param([code_hash("a")[:63]], id="short"),
            pytest.param([code_hash("a") + "0"], id="long"),
            pytest.param([code_hash("a")[:63] + "g"], id="not-hex"),
            pytest.param([code_hash("a"), None], id="not-str"),
            pytest.param([code_hash("a"), code_hash("a")], id="twice"),
            pytest.param(code_hash("a"), id="a-str-not-a-list"),
            pytest.param([code_hash(str(i)) for i in range(101)], id="too-many"),
        ],
    )
    def test_bad_recovery_code_hashes_write_nothing(self, store: FactorStore, hashes: Any) -> None:  # noqa: ANN401
        ann = self.account(store)
        store.replace_recovery_codes(ann.id, code_hashes=[code_hash("kept")], now=NOW)
        with pytest.raises(errors.InvalidInput) as caught:
            store.replace_recovery_codes(ann.id, code_hashes=hashes, now=LATER)
        assert caught.value.field == "code_hashes"
        assert store.count_recovery_codes(ann.id) == 1
        assert self.stamp_of(store, ann) == NOW

    def test_recovery_codes_of_an_unknown_account(self, store: FactorStore) -> None:
        with pytest.raises(errors.AccountNotFound):
            store.replace_recovery_codes("no-such-id", code_hashes=[code_hash("a")], now=NOW)
        assert store.count_recovery_codes("no-such-id") == 0
        assert store.use_recovery_code("no-such-id", code_hash=code_hash("a"), now=NOW) is False

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param(None, id="none"),
            pytest.param(42, id="int"),
            pytest.param(["list"], id="list"),
            pytest.param(b"bytes", id="bytes"),
            pytest.param("", id="empty"),
            pytest.param("x" * 100_000, id="long"),
            pytest.param("\ud800", id="lone-surrogate"),
            pytest.param("\x00", id="nul"),
        ],
    )
    def test_a_key_of_any_type_finds_nothing(self, store: FactorStore, key: Any) -> None:  # noqa: ANN401
        ann = self.account(store)
        phone = self.totp(store, ann)
        store.replace_recovery_codes(ann.id, code_hashes=[code_hash("a")], now=LATER)
        assert store.find_second_factor(key) is None
        assert list(store.list_second_factors(key)) == []
        assert store.count_recovery_codes(key) == 0
        assert store.use_recovery_code(key, code_hash=code_hash("a"), now=LATER) is False
        assert store.use_recovery_code(ann.id, code_hash=key, now=LATER) is False
        with pytest.raises(errors.SecondFactorNotFound):
            store.update_second_factor(key, name="x")
        with pytest.raises(errors.SecondFactorNotFound):
            store.remove_second_factor(ann.id, key, keep_at_least=0, now=LATER)
        assert list(store.list_second_factors(ann.id)) == [phone]
        assert store.count_recovery_codes(ann.id) == 1

    # Races: the store, not Python, keeps the invariants.

    def test_race_two_removals_with_one_to_keep(self, store: FactorStore) -> None:
        ann = self.account(store)
        factors = [self.totp(store, ann), self.passkey(store, ann, "a2V5")]
        outcomes = race(
            2,
            lambda i: store.remove_second_factor(
                ann.id, factors[i].factor.id, keep_at_least=1, now=LATER + WEEK
            ),
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1, losers
        assert all(isinstance(o, errors.LastSecondFactor) for o in losers), losers
        assert len(store.list_second_factors(ann.id)) == 1

    def test_race_many_removals_of_many_factors(self, store: FactorStore) -> None:
        ann = self.account(store)
        count = min(self.race_threads, 10)
        factors = [self.totp(store, ann, f"Phone {index}") for index in range(count)]
        outcomes = race(
            count,
            lambda i: store.remove_second_factor(
                ann.id, factors[i].factor.id, keep_at_least=3, now=LATER
            ),
        )
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(losers) == 3, losers[:3]  # noqa: PLR2004
        assert all(isinstance(o, errors.LastSecondFactor) for o in losers), losers[:3]
        assert len(store.list_second_factors(ann.id)) == 3  # noqa: PLR2004

    def test_race_one_recovery_code_many_uses(self, store: FactorStore) -> None:
        ann = self.account(store)
        store.replace_recovery_codes(ann.id, code_hashes=[code_hash("a"), code_hash("b")], now=NOW)
        outcomes = race(
            self.race_threads,
            lambda _: store.use_recovery_code(ann.id, code_hash=code_hash("a"), now=LATER),
        )
        assert outcomes.count(True) == 1, [o for o in outcomes if o is not False][:3]
        assert outcomes.count(False) == self.race_threads - 1
        assert store.count_recovery_codes(ann.id) == 1

    def test_race_one_credential_id_many_accounts(self, store: FactorStore) -> None:
        accounts = [self.account(store, f"user{i}@example.com") for i in range(self.race_threads)]
        outcomes = race(self.race_threads, lambda i: self.passkey(store, accounts[i], "c2FtZQ"))
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1, losers[:3]
        assert all(isinstance(o, errors.SecondFactorAlreadyRegistered) for o in losers), losers[:3]
        assert store.find_second_factor("c2FtZQ") == winners[0]
        owners = [a.id for a in accounts if store.list_second_factors(a.id)]
        assert owners == [winners[0].factor.account_id]

    def test_race_disable_against_new_factors(self, store: FactorStore) -> None:
        # A factor added before the disable is kept (disabling keeps factors); one
        # after it is refused. Either way every attempt is one of the two.
        ann = self.account(store)

        def work(index: int) -> object:
            if index == 0:
                return store.update_account(ann.id, disabled=True, now=LATER + WEEK)
            return self.passkey(store, ann, f"key-{index}", name=f"Key {index}")

        outcomes = race(self.race_threads, work)
        assert not isinstance(outcomes[0], BaseException), outcomes[0]
        added = [o for o in outcomes[1:] if not isinstance(o, BaseException)]
        refused = [o for o in outcomes[1:] if isinstance(o, BaseException)]
        assert all(isinstance(o, errors.AccountDisabled) for o in refused), refused[:3]
        assert sorted(_names(store.list_second_factors(ann.id))) == sorted(_names(added))  # type: ignore[arg-type]
        assert self.stamp_of(store, ann) == LATER + WEEK  # the disable came last
