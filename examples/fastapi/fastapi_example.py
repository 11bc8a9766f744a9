"""A FastAPI back office signing in with bpart_auth: a JSON API, the whole wiring in one file.

`create_app(auth, secret_key=...)` takes an `Auth` built by the caller: the tests pass one
on `MemoryStore` with the fake providers; `python fastapi_example.py` builds one on
SQLStore with Google and Microsoft from environment variables (bottom of the file).

bpart_auth is synchronous, so every route is a plain `def` (FastAPI runs it in its
threadpool). Sessions are Starlette's `SessionMiddleware` (signed, not encrypted, cookies;
needs `itsdangerous`): `SameSite=Lax`, so the provider's redirect back to `/auth/callback`
carries them, `HttpOnly`, and `Secure` unless `https_only=False`. bpart_auth keeps its
part of the session itself: `session=request.session` on `begin_*` keeps each redirect
flow (several tabs each finish their own), `auth.complete(..., session=...)` signs the
account in to a fresh session, and `auth.sessions.current` reloads the account on every
request and ends the session when it is gone, disabled, or its credentials changed
since. The app adds a `notice` for the next `/me` or `/profile`.

Bodies are JSON, not forms: form parsing needs `python-multipart`. `same_origin` refuses
any POST the browser does not vouch for as this app's own (`auth.sessions.cross_origin_refused`:
the `Sec-Fetch-Site` and `Origin` headers, which pages cannot forge), including one with
neither header: a script calling this API sends `Origin`. Every `AuthError` becomes
`{"code", "message"}` in one exception handler, except in the callback, which a browser
reaches: it redirects, or shows the admin-consent page. The callback URL is the one
pinned in `Auth(redirect_uri=...)`. Any signed-in account may invite (no roles here).
"""

import math
import os
from html import escape
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

from bpart_auth import (
    Account,
    AccountDisabled,
    AdminConsentRequired,
    Auth,
    AuthError,
    EmailAlreadyRegistered,
    IdentityAlreadyLinked,
    InvalidCredentials,
    InvalidInvite,
    LastSignInMethod,
    ProviderAlreadyLinked,
    ProviderName,
    TooManyAttempts,
)
from bpart_auth.services.sessions import ACCOUNT_KEY

STATUS = {InvalidCredentials: 401, AccountDisabled: 403, InvalidInvite: 410, TooManyAttempts: 429}
STATUS |= dict.fromkeys(
    [LastSignInMethod, EmailAlreadyRegistered, IdentityAlreadyLinked, ProviderAlreadyLinked], 409
)
CONSENT = """<!doctype html><title>Approval needed</title>
<h1>Your organization must approve this app</h1><p>{message}</p>
<p>Send this link to your IT department: <a href="{url}">{url}</a></p>"""


class Login(BaseModel):
    email: str
    password: str


class NewPassword(BaseModel):
    password: str
    name: str = ""


class NewInvite(BaseModel):
    email: str


def same_origin(request: Request) -> None:  # CSRF: refuse what another site's page sent
    if request.app.state.auth.sessions.cross_origin_refused(request.method, request.headers):
        raise HTTPException(403, "This request did not come from this site.")


def signed_in(request: Request) -> Account:  # the account of this session, checked afresh
    session = request.session
    ended = ACCOUNT_KEY in session
    account = request.app.state.auth.sessions.current(session)  # ends a stale session
    if account is None:
        raise HTTPException(401, "Your session has ended." if ended else "Please sign in.")
    return account


Me = Annotated[Account, Depends(signed_in)]


def refused(request: Request, error: AuthError) -> JSONResponse:
    status = next((STATUS[k] for k in type(error).__mro__ if k in STATUS), 400)
    throttled = isinstance(error, TooManyAttempts)
    headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))} if throttled else None
    return JSONResponse({"code": error.code, "message": str(error)}, status, headers)


def create_app(auth: Auth, *, secret_key: str, https_only: bool = True) -> FastAPI:  # noqa: C901 - routes
    app = FastAPI(dependencies=[Depends(same_origin)])
    app.add_middleware(SessionMiddleware, secret_key=secret_key, https_only=https_only)
    app.add_exception_handler(AuthError, refused)
    app.state.auth = auth

    def begin(flow):  # `begin_*(..., session=)` kept the flow: send the browser on
        return RedirectResponse(flow.url, 303)

    def sign_in(request, account, notice):
        auth.sessions.sign_in(request.session, account)  # a fresh session: no fixation
        request.session["notice"] = notice
        return {"id": account.id, "email": account.email, "name": account.name}

    @app.post("/login")
    def login(body: Login, request: Request):
        client = request.client.host if request.client else None
        account = auth.sign_in_with_password(body.email, body.password, client_address=client)
        return sign_in(request, account, "You are signed in.")

    @app.post("/login/{provider}")
    def login_with(provider: ProviderName, request: Request):
        return begin(auth.begin_sign_in(provider, session=request.session))

    @app.get("/auth/callback")  # the one callback: sign-in, linking and invitations
    def callback(request: Request):
        me = auth.sessions.current(request.session)
        try:  # the flow kept in the session for the callback's `state`; signs in or links
            outcome = auth.complete(dict(request.query_params), session=request.session)
        except AdminConsentRequired as error:
            page = CONSENT.format(message=escape(str(error)), url=escape(error.consent_url))
            return HTMLResponse(page, 403)
        except AuthError as error:
            back = "/profile" if me else "/login"
            return RedirectResponse(f"{back}?{urlencode({'error': error.code})}", 303)
        request.session["notice"] = outcome.message  # "Your Microsoft account is now linked..."
        return RedirectResponse(outcome.return_to or "/me", 303)

    @app.get("/me")
    def me(account: Me, request: Request):
        notice = request.session.pop("notice", None)
        return {"id": account.id, "email": account.email, "name": account.name, "notice": notice}

    @app.get("/profile")
    def profile(account: Me, request: Request):
        methods = auth.sign_in_methods(account.id)
        linked = [{"provider": i.identity.provider, "email": i.email} for i in methods.identities]
        notice = request.session.pop("notice", None)
        return {"password": methods.password, "linked": linked, "notice": notice}

    @app.post("/profile/link/{provider}")
    def link(provider: ProviderName, account: Me, request: Request):
        return begin(auth.begin_link(provider, session=request.session, return_to="/profile"))

    @app.post("/profile/unlink/{provider}")
    def unlink(provider: ProviderName, account: Me, request: Request):
        account = auth.unlink(account.id, provider)  # LastSignInMethod: 409 from `refused`
        auth.sessions.refresh(request.session, account)  # this session goes on, others end
        return profile(account, request)

    @app.post("/logout", status_code=204)
    def logout(request: Request):
        auth.sessions.sign_out(request.session)

    @app.post("/admin/invites", status_code=201)
    def invite_create(body: NewInvite, account: Me, request: Request):  # a real app emails it
        invite, token = auth.invites.create(body.email, invited_by=account.id)
        return {"email": invite.email, "accept_url": str(request.url_for("invite", token=token))}

    @app.get("/invite/{token}")
    def invite(token: str):
        invite = auth.invites.check(token)
        return {"email": invite.email, "expires_at": invite.expires_at.isoformat()}

    @app.post("/invite/{token}/password")
    def accept_with_password(token: str, body: NewPassword, request: Request):
        account = auth.invites.accept_with_password(token, password=body.password, name=body.name)
        return sign_in(request, account, "Welcome! Your account is ready.")

    @app.post("/invite/{token}/{provider}")
    def accept_with(token: str, provider: ProviderName, request: Request):
        return begin(auth.invites.begin_accept(provider, token, session=request.session))

    return app


if __name__ == "__main__":  # a deployment: configuration from the environment; needs uvicorn
    import uvicorn

    from bpart_auth import GoogleProvider, MicrosoftProvider, SQLStore

    env = os.environ
    google = GoogleProvider(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_SECRET"])
    microsoft = MicrosoftProvider(
        client_id=env["MICROSOFT_ID"], client_secret=env["MICROSOFT_SECRET"]
    )
    auth = Auth(
        SQLStore(env.get("DATABASE_URL", "sqlite:///bpart_auth.db")),
        secret_key=env["BPART_AUTH_SECRET_KEY"],
        providers=[google, microsoft],
        redirect_uri=env["CALLBACK_URL"],  # https://your.host/auth/callback, as registered
    )
    app = create_app(auth, secret_key=env["SESSION_SECRET_KEY"])
    uvicorn.run(app, port=int(env.get("PORT", "8000")), proxy_headers=True)
