"""The public values: frozen, slotted, compared by value, secrets out of repr."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime, timedelta, timezone

import pytest

from bpart_auth import (
    Account,
    FlowStart,
    Identity,
    InvalidInput,
    Invite,
    Outcome,
    VerifiedIdentity,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
MS_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def account(**changes):
    values = {
        "id": "a1",
        "email": "ann@example.com",
        "created_at": NOW,
        "credentials_changed_at": NOW,
        "name": "Ann",
        "has_password": True,
    }
    values.update(changes)
    return Account(**values)


def invite(**changes):
    values = {
        "id": "i1",
        "email": "bob@example.com",
        "invited_by": "a1",
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=7),
    }
    values.update(changes)
    return Invite(**values)


def identity():
    return Identity("microsoft", MS_TENANT, "oid-1")


SAMPLES = {
    "Account": account,
    "Identity": identity,
    "Invite": invite,
    "VerifiedIdentity": lambda: VerifiedIdentity(
        identity=identity(), email="ann@example.com", email_verified=True, claims={"tid": "t"}
    ),
    "FlowStart": lambda: FlowStart(
        url="https://idp.example/authorize",
        state="oauth-state",
        sealed_flow="v1.sealed",
        expires_at=NOW,
    ),
    "Outcome": lambda: Outcome(
        kind="linked", account=account(), identity=identity(), message="Linked."
    ),
}


@pytest.mark.parametrize("factory", SAMPLES.values(), ids=SAMPLES.keys())
def test_models_are_frozen(factory):
    value = factory()
    field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, "changed")


@pytest.mark.parametrize("factory", SAMPLES.values(), ids=SAMPLES.keys())
def test_models_are_slotted(factory):
    value = factory()
    assert not hasattr(value, "__dict__")
    with pytest.raises((AttributeError, TypeError)):
        value.surprise = 1


@pytest.mark.parametrize("factory", SAMPLES.values(), ids=SAMPLES.keys())
def test_models_compare_and_hash_by_value(factory):
    first, second = factory(), factory()
    assert first is not second
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@pytest.mark.parametrize("factory", SAMPLES.values(), ids=SAMPLES.keys())
def test_models_survive_pickle(factory):
    value = factory()
    assert pickle.loads(pickle.dumps(value)) == value


def test_accounts_differ_when_a_field_differs():
    assert account() != account(email="bob@example.com")
    assert account() != account(disabled=True)


def test_password_hash_and_state_never_appear_in_repr():
    assert "argon2" not in repr(account())
    start = SAMPLES["FlowStart"]()
    assert "v1.sealed" not in repr(start)
    assert "oauth-state" in repr(start)  # public: it is in the URL


def test_account_password_and_enabled_flags():
    assert account().has_password
    assert not account(has_password=False).has_password
    assert account().enabled
    assert not account(disabled=True).enabled


def test_account_fields_are_keyword_only():
    with pytest.raises(TypeError):
        Account("a1", "ann@example.com", NOW, NOW)  # type: ignore[misc]


def test_naive_datetimes_are_refused():
    with pytest.raises(InvalidInput) as caught:
        account(created_at=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    assert caught.value.field == "created_at"


@pytest.mark.parametrize(
    ("provider", "issuer", "subject", "field"),
    [
        pytest.param("", MS_TENANT, "oid", "provider", id="no-provider"),
        pytest.param("microsoft", "", "oid", "issuer", id="no-issuer"),
        pytest.param("google", "https://accounts.google.com", "", "subject", id="no-subject"),
    ],
)
def test_identity_parts_must_not_be_empty(provider, issuer, subject, field):
    with pytest.raises(InvalidInput) as caught:
        Identity(provider, issuer, subject)
    assert caught.value.field == field


def test_identity_is_the_triple_never_the_email():
    names = [field.name for field in dataclasses.fields(Identity)]
    assert names == ["provider", "issuer", "subject"]
    other_tenant = Identity("microsoft", "another-tenant", "oid-1")
    assert identity() != other_tenant


def test_verified_identity_claims_are_read_only_and_not_compared():
    claims = {"tid": MS_TENANT, "oid": "oid-1"}
    verified = VerifiedIdentity(identity=identity(), claims=claims)
    claims["oid"] = "changed-after"
    assert verified.claims["oid"] == "oid-1"
    with pytest.raises(TypeError):
        verified.claims["oid"] = "x"  # type: ignore[index]
    assert verified == VerifiedIdentity(identity=identity(), claims={"other": 1})


def test_invite_data_is_read_only():
    data = {"role": "manager"}
    value = invite(data=data)
    data["role"] = "admin"
    assert value.data["role"] == "manager"
    with pytest.raises(TypeError):
        value.data["role"] = "admin"  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "at", "status"),
    [
        pytest.param({}, NOW, "pending", id="fresh"),
        pytest.param({}, NOW + timedelta(days=7), "expired", id="at-expiry"),
        pytest.param({"accepted_at": NOW}, NOW + timedelta(days=30), "accepted", id="accepted"),
        pytest.param({"revoked_at": NOW}, NOW, "revoked", id="revoked"),
    ],
)
def test_invite_status(changes, at, status):
    assert invite(**changes).status(at) == status


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        pytest.param("ann@xn--bcher-kva.example", "ann@bücher.example", id="idn-domain"),
        pytest.param("ann@mail.xn--p1ai", "ann@mail.рф", id="idn-tld"),
        pytest.param("josé@xn--mnchen-3ya.de", "josé@münchen.de", id="unicode-both-parts"),
        pytest.param("ann@example.com", "ann@example.com", id="ascii"),
    ],
)
@pytest.mark.parametrize("factory", [account, invite], ids=["Account", "Invite"])
def test_display_email_has_a_unicode_domain(factory, stored, shown):
    value = factory(email=stored)
    assert value.display_email == shown
    assert value.email == stored  # the stored form, for lookups and sending, is untouched


def test_display_email_is_no_field():
    # Computed from `email`: no schema change, nothing extra compared or pickled.
    assert "display_email" not in {field.name for field in dataclasses.fields(Account)}
    assert "display_email" not in {field.name for field in dataclasses.fields(Invite)}
    assert (
        "xn--"
        not in pickle.loads(pickle.dumps(account(email="a@xn--bcher-kva.example"))).display_email
    )
