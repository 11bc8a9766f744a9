"""A third-party `Provider` (not Google, not Microsoft) signs in, links and unlinks."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from bpart_auth import (
    Auth,
    ConfigurationError,
    Identity,
    IdentityNotLinked,
    MemoryStore,
    Provider,
    SQLStore,
    VerifiedIdentity,
)
from bpart_auth.testing import CHEAP_FOR_TESTS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bpart_auth.oidc.flowstate import FlowState

SECRET = "k" * 32
CALLBACK = "https://app.example/auth/callback"
ISSUER = "https://gitlab.example"


class GitLabProvider(Provider):
    """A toy provider: its "code" is the subject it vouches for (no network)."""

    def __init__(self, name: str = "gitlab") -> None:
        self._name = name
        self.completed: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def email_sign_in(self) -> bool:
        return False

    def authorization_url(self, flow: FlowState) -> tuple[str, Mapping[str, str]]:
        query = urlencode({"state": flow.state, "nonce": flow.nonce})
        return f"{ISSUER}/oauth/authorize?{query}", {"issuer": ISSUER}

    def complete(self, flow: FlowState, params: Mapping[str, str]) -> VerifiedIdentity:
        assert flow.provider == self.name
        self.completed.append(params["code"])
        return VerifiedIdentity(
            identity=Identity(self.name, flow.extra["issuer"], params["code"]),
            email="ann@gitlab.example",
            email_verified=True,
        )


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryStore()
    return SQLStore(f"sqlite:///{tmp_path / 'auth.db'}", create_schema=True)


def callback(start, code):
    state = parse_qs(urlsplit(start.url).query)["state"][0]
    return {"state": state, "code": code}


def test_a_third_party_provider_links_signs_in_and_unlinks(store):
    gitlab = GitLabProvider()
    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[gitlab],
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
    )
    assert auth.provider_names == ("gitlab",)
    ann = auth.create_account(email="ann@example.com", password="correct horse battery")

    start = auth.begin_sign_in("gitlab")
    assert start.url.startswith(f"{ISSUER}/oauth/authorize?")
    with pytest.raises(IdentityNotLinked):
        auth.complete(callback(start, "sub-1"), sealed_flow=start.sealed_flow)

    session: dict[str, object] = {}
    auth.sessions.sign_in(session, ann)
    start = auth.begin_link("gitlab", session=session)
    linked = auth.complete(callback(start, "sub-1"), session=session)
    assert (linked.kind, linked.account.id) == ("linked", ann.id)
    assert linked.identity == Identity("gitlab", ISSUER, "sub-1")
    methods = auth.sign_in_methods(ann.id)
    assert methods.providers == {"gitlab"}
    assert store.find_account_by_identity(Identity("gitlab", ISSUER, "sub-1")).id == ann.id

    start = auth.begin_sign_in("gitlab", session=session)
    outcome = auth.complete(callback(start, "sub-1"), session=session)
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)
    assert auth.sessions.current(session).id == ann.id

    unlinked = auth.unlink(ann.id, "gitlab")
    assert auth.sign_in_methods(unlinked.id).providers == set()
    start = auth.begin_sign_in("gitlab")
    with pytest.raises(IdentityNotLinked):
        auth.complete(callback(start, "sub-1"), sealed_flow=start.sealed_flow)
    assert gitlab.completed == ["sub-1"] * 4


@pytest.mark.parametrize("name", ["", "GitLab", "git lab", "../x", "x" * 51])
def test_a_provider_name_must_be_short_lowercase_and_url_safe(name):
    with pytest.raises(ConfigurationError):
        Auth(MemoryStore(), secret_key=SECRET, providers=[GitLabProvider(name)])
