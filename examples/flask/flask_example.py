"""A Flask back office signing in with bpart_auth, on its Flask adapter: the whole app.

`create_app(auth, secret_key=...)` takes an `Auth` built by the caller: the tests pass
one on `MemoryStore` with the fake providers; `python flask_example.py` builds one on
SQLStore with Google and Microsoft from the environment (bottom of the file). The
`Auth` pins the app's callback URL (`redirect_uri=`), which is also the origin its
cross-origin check trusts.

`FlaskAuth` (bpart_auth.flask) does the security glue, so this file has routes and
templates only. On every request it refuses a state-changing request that the browser
says came from another origin (403: no forged POSTs, the sign-in form included), loads
the signed-in account into `g.account`, and ends the session when that account is gone,
disabled, or its credentials changed elsewhere. Every sign-in starts a fresh session
(nothing planted before survives it). Each redirect flow is kept in the session under
its own OAuth state, so several tabs each finish their own flow, and a flow begun in
another browser is refused. A refusal (`AuthError`) is flashed on the page the user was
on; an organization that must approve the app gets a page with the admin-consent URL.

Session cookies are Flask's signed cookies: `SameSite=Lax` (set by the adapter, so the
provider's redirect back carries them), `HttpOnly`, and `Secure` unless
`secure_cookies=False`. Behind a proxy, wrap the app in werkzeug's `ProxyFix`, so that
`request.remote_addr` (the sign-in throttle's client address) is the user's and
invitation links carry the public host.

Second factors (`auth.second_factors`, the `mfa` extra): an account may add an
authenticator app (a QR code and its key, confirmed by one code), passkeys, and gets ten
recovery codes with its first factor, shown once. Once it has one, a first factor (a
password, Google, Microsoft) only leads to the second step (the adapter redirects to
`/second-factor`): a code, a recovery code, or a passkey. Passkeys need a few lines of
script (the layout's `passkey`): the page fetches the options, the browser makes or uses
the passkey, and its answer goes back in an ordinary form post.
"""

from flask import Flask, flash, g, redirect, render_template_string, request, session, url_for

from bpart_auth import AdminConsentRequired, Auth
from bpart_auth.flask import FlaskAuth, login_required

PROVIDER = "<any(google, microsoft):provider>"
JSON = {"Content-Type": "application/json"}


def create_app(auth: Auth, *, secret_key: str, secure_cookies: bool = True) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key, SESSION_COOKIE_SECURE=secure_cookies)
    bpart = FlaskAuth(auth, app)  # login_url and home_url are "/", this app's one page
    second = auth.second_factors  # the account's second factors, on the session

    def page(name, **context):
        return render_template_string(TEMPLATES["layout"] + TEMPLATES[name], **context)

    @app.errorhandler(AdminConsentRequired)  # other refusals: flashed where the user was
    def consent(error):
        return page("consent", error=error), 403

    @app.get("/")  # signed in: the account's page; otherwise the sign-in page
    def home():
        if (me := g.account) is None:
            return page("login")
        factors, codes_left = second.list(me.id), second.recovery_codes_left(me.id)
        methods = auth.sign_in_methods(me.id)
        return page("home", methods=methods, factors=factors, codes_left=codes_left)

    @app.post("/login")
    def login():
        email, password = request.form["email"], request.form["password"]
        account = auth.passwords.sign_in(email, password, client_address=request.remote_addr)
        return bpart.sign_in(account, "You are signed in.")

    # The redirect flows, begun by a form and finished at the one callback URL.
    app.post(f"/login/{PROVIDER}")(bpart.sign_in_with)
    app.post(f"/link/{PROVIDER}")(bpart.link)  # SignInRequired when signed out
    app.post(f"/invite/<token>/{PROVIDER}")(bpart.accept_invite_with)
    app.get("/auth/callback")(bpart.complete)  # signed in, linked or registered
    app.post(f"/unlink/{PROVIDER}")(bpart.unlink)  # this session goes on, the others end
    app.post("/logout")(bpart.sign_out)

    @app.post("/invites")
    @login_required
    def invite_create():  # a real app emails the link; the example shows it
        invite, token = auth.invites.create(request.form["email"], invited_by=g.account.id)
        link = url_for("invite", token=token, _external=True)
        flash(f"Invitation for {invite.display_email}: {link}")
        return redirect("/")

    @app.get("/invite/<token>")
    def invite(token):
        return page("accept", invite=auth.invites.check(token), token=token)

    @app.post("/invite/<token>/password")
    def accept(token):
        password, name = request.form["password"], request.form.get("name", "")
        account = auth.invites.accept_with_password(token, password=password, name=name)
        return bpart.sign_in(account, "Welcome! Your account is ready.")

    second_factor_pages(app, second, page)
    return app


def second_factor_pages(app: Flask, second, page) -> None:  # noqa: C901 - short views
    """The second step, enrolment, recovery codes and passkeys (`auth.second_factors`).

    Every call works on the session: the signed-in account, or the sign-in pending its
    second step (or its enrolment, when the policy requires one).
    """

    def done(message, codes=()):  # recovery codes are shown once: on this page, never stored
        flash(message, "success")
        return page("codes", codes=codes) if codes else redirect("/")

    @app.get("/second-factor")  # where a first factor lands when the account has one
    def second_step():
        pending = second.pending(session)
        return page("second_step", pending=pending) if pending else redirect("/")

    @app.post("/second-factor")  # a code from the authenticator app, or a recovery code
    def verify():
        second.verify(session, request.form["code"], client_address=request.remote_addr)
        return done("You are signed in.")

    @app.post("/second-factor/passkey/options")  # for navigator.credentials.get()
    def passkey_options():
        return second.begin_passkey(session), JSON

    @app.post("/second-factor/passkey")  # the passkey's answer, posted by the page's script
    def verify_passkey():
        answer = request.form["credential"]
        second.complete_passkey(session, answer, client_address=request.remote_addr)
        return done("You are signed in.")

    @app.get("/second-factor/enrol")  # signed in, or finishing a sign-in that requires one
    def enrol():
        return page("enrol", totp=second.begin_totp(session))

    @app.post("/second-factor/enrol")
    def enrol_confirm():
        name = request.form.get("name") or "Authenticator app"
        added = second.confirm_totp(session, request.form["code"], name=name)
        return done("Authenticator app added.", added.recovery_codes)

    @app.post("/passkeys/options")  # for navigator.credentials.create()
    def passkey_registration_options():
        return second.begin_passkey_registration(session), JSON

    @app.post("/passkeys")  # the new passkey, posted by the page's script
    def passkey_add():
        name = request.form.get("name") or "Passkey"
        added = second.complete_passkey_registration(session, request.form["credential"], name=name)
        return done("Passkey added.", added.recovery_codes)

    @app.post("/second-factor/<factor_id>/remove")
    def factor_remove(factor_id):
        return done(f"{second.remove(session, factor_id).name} removed.")

    @app.post("/second-factor/recovery-codes")  # the old ones stop working
    def recovery_codes():
        return done("New recovery codes.", second.regenerate_recovery_codes(session))


TEMPLATES = {
    "layout": """<!doctype html><title>Back office</title>
{% macro button(action, label) %}<form method="post" action="{{ action }}">
<button>{{ label }}</button></form>{% endmacro %}
{% macro passkey(action, ceremony, label) %}<form method="post" action="{{ action }}"
onsubmit="event.preventDefault(); passkey(this, '{{ ceremony }}')"><input type="hidden"
name="credential">{{ caller() if caller }}<button>{{ label }}</button></form>{% endmacro %}
{% for message in get_flashed_messages() %}<p class="flash">{{ message }}</p>{% endfor %}
<script>
// A passkey ceremony: fetch the options (POST {action}/options), let the browser make or
// use the passkey, post its answer with the form. A refusal's notice waits on a reload.
async function passkey(form, ceremony) {
  const answer = await fetch(form.action + "/options", {method: "POST", redirect: "manual"});
  if (!answer.ok) return location.reload();
  const parse = ceremony === "create" ? "parseCreationOptionsFromJSON"
    : "parseRequestOptionsFromJSON";
  const options = PublicKeyCredential[parse](await answer.json());
  const credential = await navigator.credentials[ceremony]({publicKey: options});
  form.credential.value = JSON.stringify(credential.toJSON());
  form.submit();
}
</script>
""",
    "login": """<form method="post" action="/login">
<input name="email" type="email" placeholder="Email">
<input name="password" type="password" placeholder="Password"><button>Sign in</button></form>
{{ button("/login/google", "Sign in with Google") }}
{{ button("/login/microsoft", "Sign in with Microsoft") }}""",
    "home": """<p>Signed in as {{ g.account.display_email }}.
Password: {{ "yes" if methods.password else "no" }}.</p>
{% for p in ["google", "microsoft"] %}{% if p in methods.providers %}
{{ button("/unlink/" ~ p, "Unlink " ~ p|capitalize) }}{% else %}
{{ button("/link/" ~ p, "Link " ~ p|capitalize) }}{% endif %}{% endfor %}
<h2>Second factors</h2><ul>{% for factor in factors %}
<li>{{ factor.name }} ({{ "passkey" if factor.kind == "passkey" else "authenticator app" }})
{{ button("/second-factor/" ~ factor.id ~ "/remove", "Remove") }}</li>{% endfor %}</ul>
{% if factors %}<p>Recovery codes left: {{ codes_left }}.</p>
{{ button("/second-factor/recovery-codes", "New recovery codes") }}{% endif %}
<p><a href="/second-factor/enrol">Add an authenticator app</a></p>
{% call passkey("/passkeys", "create", "Add a passkey") %}
<input name="name" placeholder="Passkey name">{% endcall %}
<form method="post" action="/invites">
<input name="email" type="email" placeholder="Email"><button>Invite a manager</button></form>
{{ button("/logout", "Sign out") }}""",
    "second_step": """<h1>One more step</h1>
<p>{{ pending.account.display_email }}: enter the code from your authenticator app, or one
of your recovery codes ({{ pending.recovery_codes }} left).</p>
<form method="post" action="/second-factor">
<input name="code" autocomplete="one-time-code" placeholder="Code"><button>Verify</button></form>
{% if "passkey" in pending.kinds %}{{ passkey("/second-factor/passkey", "get", "Use a passkey") }}
{% endif %}<p><a href="/">Start again</a></p>""",
    "enrol": """<h1>Add an authenticator app</h1>
<p>Scan this code with the app{{ " (this site requires one)" if not g.account }}:</p>
{{ totp.qr_svg|safe }}
<p>Or type this key: <code class="secret">{{ totp.secret }}</code></p>
<form method="post" action="/second-factor/enrol">
<input name="name" placeholder="Name (Phone)">
<input name="code" autocomplete="one-time-code" placeholder="Code from the app">
<button>Add the app</button></form>
{% call passkey("/passkeys", "create", "Add a passkey instead") %}{% endcall %}
<p><a href="/">Cancel</a></p>""",
    "codes": """<h1>Your recovery codes</h1>
<p>Keep them somewhere safe: each one signs you in once if you lose your authenticator.
They are shown only now.</p>
<ul class="recovery-codes">{% for code in codes %}<li><code>{{ code }}</code></li>{% endfor %}
</ul><p><a href="/">Continue</a></p>""",
    "consent": """<h1>Your organization must approve this app</h1><p>{{ error }}</p>
<p>Send this link to your IT department:
<a href="{{ error.consent_url }}">{{ error.consent_url }}</a></p>
<p><a href="/">Back to sign-in</a></p>""",
    "accept": """<p>Invitation for {{ invite.display_email }}</p>
<form method="post" action="/invite/{{ token }}/password">
<input name="name" placeholder="Name">
<input name="password" type="password" placeholder="New password"><button>Accept</button></form>
{{ button("/invite/" ~ token ~ "/google", "Accept with Google") }}
{{ button("/invite/" ~ token ~ "/microsoft", "Accept with Microsoft") }}""",
}


if __name__ == "__main__":  # configuration from the environment; a WSGI server in production
    import os
    from urllib.parse import urlsplit

    from bpart_auth import GoogleProvider, MicrosoftProvider, SecondFactorPolicy, SQLStore
    from bpart_auth.passkeys import RelyingParty

    env = os.environ
    google = GoogleProvider(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_SECRET"])
    entra = MicrosoftProvider(client_id=env["MICROSOFT_ID"], client_secret=env["MICROSOFT_SECRET"])
    site = urlsplit(env["CALLBACK_URL"])
    passkeys = RelyingParty(site.hostname, "Back office", [f"{site.scheme}://{site.netloc}"])
    auth = Auth(
        SQLStore(env.get("DATABASE_URL", "sqlite:///bpart_auth.db")),
        secret_key=env["BPART_AUTH_SECRET_KEY"],
        providers=[google, entra],
        redirect_uri=env["CALLBACK_URL"],  # https://your.host/auth/callback, as registered
        # Passkeys belong to the callback's host; authenticator apps show the issuer.
        second_factor=SecondFactorPolicy(issuer="Back office", relying_party=passkeys),
    )
    create_app(auth, secret_key=env["FLASK_SECRET_KEY"]).run()
