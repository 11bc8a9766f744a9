"""Fake Google and Microsoft for the demo, with sign-in pages a person can click.

`FakeGoogle` and `FakeMicrosoft` (from `bpart_auth.testing`) serve discovery, keys and
the token endpoint in process through `responses`: the library's real HTTP code runs
and nothing leaves the machine. Their authorization endpoints are https URLs on hosts
that do not exist (the library refuses plain-http endpoints), so the demo sends the
browser to its own pages under /fake/ instead (`browser_url`): choose who you are, press
Continue, and the page calls `fake.authorize(url, ...)` with the real authorization URL
and redirects to the app's callback, exactly as a test plays the user.

The pages' defaults walk docs/demo.md's tour: the email is the flow's `login_hint`
(the invited address, the signed-in user) when the app gave one, else the account
last chosen on that page in this browser (a real provider remembers who is signed in
to it), else a sample address.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode, urlsplit

from flask import Blueprint, abort, make_response, redirect, render_template, request

from bpart_auth.providers.microsoft import CONSUMER_TENANT
from bpart_auth.testing import FakeAuthorizeError, FakeGoogle, FakeMicrosoft

if TYPE_CHECKING:
    import responses
    from werkzeug.wrappers import Response

    from bpart_auth.providers.base import Provider

CONTOSO: Final = FakeMicrosoft.WORK_TENANT
FABRIKAM: Final = "22222222-3333-4444-5555-666666666666"
# What the fake Microsoft page offers: tenant id -> how the page names it.
TENANTS: Final = {
    CONTOSO: "Work account at Contoso",
    FABRIKAM: "Work account at Fabrikam (its admin has not approved this app yet)",
    CONSUMER_TENANT: "Personal Microsoft account (outlook.com)",
}
_OID_NAMESPACE: Final = uuid.UUID("6f1c1f3e-0c1a-4d6b-9a57-4b1f0d2c9e01")
# Whom each fake page suggests when nothing better is known.
SAMPLE_EMAILS: Final = {"google": "admin@example.com", "microsoft": "manager@contoso.example"}
# The fake pages' memory of the account last chosen (as a provider's own sign-in
# cookie): a cookie on the page's path, so the app never sees it.
_REMEMBERED: Final = "fake_account"
_MAX_EMAIL: Final = 254  # RFC 5321's path limit, less its brackets


class DemoFakes:
    """The two fakes, their back channel, and their pages under `{base_url}/fake/`.

    Args:
        base_url: Where the demo is served (`http://localhost:8000`).
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.callback_url = f"{self.base_url}/auth/callback"
        self.google = FakeGoogle()
        self.microsoft = FakeMicrosoft(consent_required_tenants={FABRIKAM})
        self._mock: responses.RequestsMock | None = None

    def providers(self) -> list[Provider]:
        """A `GoogleProvider` and a `MicrosoftProvider` configured against the fakes."""
        return [self.google.provider(), self.microsoft.provider()]

    def start(self) -> None:
        """Answer the fakes' endpoints in this process; let every other request through."""
        import responses  # noqa: PLC0415 - the demo extra installs it

        hosts = {
            urlsplit(url).netloc
            for url in (self.google.metadata_url, self.microsoft.authority_host)
        }
        pattern = "|".join(re.escape(host) for host in sorted(hosts))
        mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        mock.add_passthru(re.compile(rf"^(?!https://({pattern})/)"))
        self.google.install(mock)
        self.microsoft.install(mock)
        mock.start()
        self._mock = mock

    def stop(self) -> None:
        """Stop answering for the fakes."""
        if self._mock is not None:
            self._mock.stop()
            self._mock.reset()
            self._mock = None

    def browser_url(self, url: str, *, login_hint: str | None = None) -> str:
        """A fake provider's URL as the browser can open it: a page of the demo's.

        Authorization URLs go to the fake's sign-in page (with OpenID Connect's
        `login_hint` added when given: the page prefills it), the admin-consent link to
        the fake's consent page; any other URL is returned unchanged.
        """
        for name, endpoint in self._endpoints().items():
            if url.startswith(f"{endpoint}?"):
                hint = f"&login_hint={quote(login_hint, safe='@')}" if login_hint else ""
                return f"{self.base_url}/fake/{name}/authorize{url[len(endpoint) :]}{hint}"
        authority = self.microsoft.authority_host
        if url.startswith(f"{authority}/"):
            return f"{self.base_url}/fake/microsoft/{url[len(authority) + 1 :]}"
        return url

    def _endpoints(self) -> dict[str, str]:
        return {
            "google": self.google.authorization_endpoint,
            "microsoft": self.microsoft.authorization_endpoint,
        }

    def blueprint(self) -> Blueprint:
        """The fake providers' pages, to mount at `/fake`."""
        pages = Blueprint("fake", __name__)
        pages.add_url_rule(
            "/google/authorize", "google", self._google_page, methods=["GET", "POST"]
        )
        pages.add_url_rule(
            "/microsoft/authorize", "microsoft", self._microsoft_page, methods=["GET", "POST"]
        )
        pages.add_url_rule(
            "/microsoft/<tenant>/adminconsent",
            "adminconsent",
            self._admin_consent_page,
            methods=["GET", "POST"],
        )
        return pages

    # The pages

    def _authorization_request(self, name: str) -> tuple[str, dict[str, str]]:
        """The fake's real authorization URL the browser was sent to, and its query."""
        query = request.args.to_dict()
        if query.get("redirect_uri") != self.callback_url:
            abort(400, f"redirect_uri must be the registered {self.callback_url}")
        return f"{self._endpoints()[name]}?{request.query_string.decode()}", query

    def _back_to_app(self, params: dict[str, str], *, remember: str | None = None) -> Response:
        response = make_response(redirect(f"{self.callback_url}?{urlencode(params)}"))
        if remember is not None:  # the account chosen: the page suggests it next time
            response.set_cookie(
                _REMEMBERED, remember, path=request.path, httponly=True, samesite="Lax"
            )
        return response

    def _suggested(self, name: str, query: dict[str, str]) -> tuple[str, str]:
        """The email and the account (tenant) the page suggests: who the user likely is."""
        remembered = request.cookies.get(_REMEMBERED, "")
        tenant, _, email = remembered.partition(" ")
        if not 0 < len(email) <= _MAX_EMAIL:
            tenant, email = CONTOSO, SAMPLE_EMAILS[name]
        hint = query.get("login_hint", "").strip()
        if 0 < len(hint) <= _MAX_EMAIL:
            email = hint
        return email, tenant if tenant in TENANTS else CONTOSO

    def _google_page(self) -> str | Response:
        url, query = self._authorization_request("google")
        if request.method == "GET":
            email, _ = self._suggested("google", query)
            return render_template("fake_google.html", email=email)
        form = request.form
        try:
            if form.get("action") == "cancel":
                return self._back_to_app(self.google.authorize(url, error="access_denied"))
            email = form.get("email", "").strip()
            params = self.google.authorize(
                url,
                email=email,
                email_verified=form.get("email_verified") == "yes",
                name=form.get("name", ""),
            )
        except FakeAuthorizeError as error:
            abort(400, str(error))
        return self._back_to_app(params, remember=f"google {email[:_MAX_EMAIL]}")

    def _microsoft_page(self) -> str | Response:
        url, query = self._authorization_request("microsoft")
        if request.method == "GET":
            email, tenant = self._suggested("microsoft", query)
            return render_template(
                "fake_microsoft.html", email=email, tenant=tenant, tenants=TENANTS
            )
        form = request.form
        email = form.get("email", "").strip().lower()
        tenant = form.get("tenant", CONTOSO)
        if tenant not in TENANTS:
            abort(400, "unknown tenant")
        settings: dict[str, Any] = {
            "oid": str(uuid.uuid5(_OID_NAMESPACE, f"{tenant}/{email}")),
            "tenant_id": tenant,
            "email": email or None,
            "preferred_username": email,
            "name": form.get("name", ""),
            "decline": form.get("action") == "cancel",
        }
        try:
            params = self.microsoft.authorize(url, **settings)
        except FakeAuthorizeError as error:
            abort(400, str(error))
        remember = None if settings["decline"] else f"{tenant} {email[:_MAX_EMAIL]}"
        return self._back_to_app(params, remember=remember)

    def _admin_consent_page(self, tenant: str) -> str | Response:
        blocked = {tid: TENANTS[tid] for tid in self.microsoft.consent_required_tenants}
        if request.method == "GET":
            return render_template("fake_adminconsent.html", tenant=tenant, blocked=blocked)
        approved = request.form.get("tenant", "")
        if approved not in blocked:
            abort(400, "that organization needs no approval")
        self.microsoft.consent_required_tenants = frozenset(
            self.microsoft.consent_required_tenants - {approved}
        )
        # As Entra does: back to the app's redirect URI, with no code and no state.
        return self._back_to_app({"admin_consent": "True", "tenant": approved})
