// Several OpenID providers (panva's oidc-provider) in one process, on one HTTPS port on
// loopback, each mounted under its own path prefix. Only for bpart_auth's end-to-end
// tests: tests/e2e/oidc_fixture.py writes the config, starts this, and reads READY.
//
//   node server.mjs CONFIG.json     (or: the config as the first line of stdin)
//
// Prints exactly one line to stdout, `READY {"port": N, "origin": "https://127.0.0.1:N"}`,
// once listening; everything else goes to stderr. Exits when stdin closes (the parent
// died or let go) and after `max_lifetime_seconds` (default 1800) in any case.
//
// Config (JSON):
// {
//   "host": "127.0.0.1", "port": 0,
//   "tls": {"cert_file": "server.pem", "key_file": "server-key.pem"},
//   "max_lifetime_seconds": 1800,
//   "log_requests": true,
//   "issuers": [{
//     "path": "/google",                          // issuer = https://HOST:PORT + path
//     "key_group": "google",                      // issuers in one group share a signing key
//     "signing_key": {JWK},                       // optional private RSA JWK (else generated)
//     "authorization_response_iss": true,         // false: no RFC 9207 `iss` (like Entra)
//     "clients": [{"client_id", "client_secret", "redirect_uris": [...],
//                  "token_endpoint_auth_method": "client_secret_basic",
//                  "authorization_error": {"error": ..., ...}}],   // optional, see below
//     "accounts": {"<login>": {"sub": ..., "email": ..., ...}},    // login -> claims
//     "error_logins": {"<login>": {"error": ..., "error_description": ..., ...}},
//     "claims": {"<scope>": ["claim", ...]},      // optional; default derived from accounts
//     // Multi-tenant endpoints (Entra's /common, /organizations): the discovery document's
//     // `issuer` and each ID token's `iss` differ from the mount. {origin} is replaced by
//     // https://HOST:PORT, and in id_token_issuer {claim} by the account's claim.
//     "discovery_issuer": "{origin}/microsoft/{tenantid}/v2.0",
//     "id_token_issuer": "{origin}/microsoft/{tid}/v2.0"
//   }]
// }
//
// Errors: a login listed in `error_logins`, submitted on the login form, ends the
// interaction with a redirect to the client's redirect_uri carrying every string in that
// entry (error, error_description, error_subcode, ...) plus `state` and `iss` (omit `iss`
// with "iss": false in the entry). A client with `authorization_error` gets that error
// redirect straight from the authorization endpoint, before any login.
import * as crypto from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

import { Provider } from 'oidc-provider';

// oidc-provider prints notices with console.info; stdout carries only the READY line.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

// oidc-provider 9 uses crypto.hash (Node >= 20.12); it warns below Node 22 but works on 20.
if (typeof crypto.hash !== 'function') {
  console.error(`oidc server: Node ${process.version} is too old; oidc-provider 9 needs >= 20.12`);
  process.exit(2);
}

const STANDARD_CLAIMS = {
  email: ['email', 'email_verified'],
  profile: [
    'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username',
    'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
  ],
};

function fail(message) {
  console.error(`oidc server: ${message}`);
  process.exit(2);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Claims per scope: the standard email/profile claims, and every other claim an account
// carries (hd, tid, oid, ver, ...) under `openid`, so it is released whenever openid is.
function claimsFor(accounts) {
  const known = new Set(['sub', ...STANDARD_CLAIMS.email, ...STANDARD_CLAIMS.profile]);
  const extra = new Set();
  for (const claims of Object.values(accounts)) {
    for (const name of Object.keys(claims)) {
      if (!known.has(name)) extra.add(name);
    }
  }
  return { openid: ['sub', ...extra], ...STANDARD_CLAIMS };
}

const generatedKeys = new Map();
function signingKey(spec) {
  if (spec.signing_key) return { alg: 'RS256', use: 'sig', ...spec.signing_key };
  const group = spec.key_group ?? spec.path;
  if (!generatedKeys.has(group)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    const kid = crypto.createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
    generatedKeys.set(group, { ...jwk, kid, alg: 'RS256', use: 'sig' });
  }
  return generatedKeys.get(group);
}

function redirectUrl(redirectUri, params) {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string') url.searchParams.set(name, value);
  }
  return url.href;
}

function formPostPage(redirectUri, params) {
  const inputs = Object.entries(params)
    .filter(([, value]) => typeof value === 'string')
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}"/>`)
    .join('\n');
  return `<!DOCTYPE html><html><head><title>Submit This Form</title></head>
<body onload="javascript:document.forms[0].submit()">
<form method="post" action="${escapeHtml(redirectUri)}">
${inputs}
</form></body></html>`;
}

// Answer the client's redirect_uri with an error, like an IdP does after a failed login.
function errorResponse(ctx, issuer, { redirectUri, state, responseMode }, spec, issDefault) {
  const { iss: withIss = issDefault, ...fields } = spec;
  const params = { ...fields };
  if (state !== undefined) params.state = state;
  if (withIss) params.iss = issuer;
  if (responseMode === 'form_post') {
    ctx.status = 200;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = formPostPage(redirectUri, params);
  } else {
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(redirectUrl(redirectUri, params));
  }
}

function renderPage(ctx, status, title, message) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html><html><head><title>${escapeHtml(title)}</title></head>`
    + `<body><h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(message)}</p></body></html>`;
}

function buildProvider(origin, port, spec, index) {
  const issuer = `${origin}${spec.path}`;
  const accounts = spec.accounts ?? {};
  const errorLogins = spec.error_logins ?? {};
  const issInResponse = spec.authorization_response_iss !== false;
  const clients = spec.clients ?? [];
  const clientsById = new Map(clients.map((c) => [c.client_id, c]));

  const bySub = new Map();
  for (const [login, claims] of Object.entries(accounts)) {
    const sub = claims.sub ?? login;
    if (bySub.has(sub)) fail(`${spec.path}: two accounts share sub ${sub}`);
    bySub.set(sub, { ...claims, sub });
  }

  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    })),
    jwks: { keys: [signingKey(spec)] },
    async findAccount(ctx, sub) {
      const claims = bySub.get(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => ({ ...claims }) };
    },
    claims: spec.claims ?? claimsFor(accounts),
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Every claim of the granted scopes goes into the ID token, as Google and Entra do.
    conformIdTokenClaims: false,
    allowOmittingSingleRegisteredRedirectUri: false,
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: false },
    },
    // Issuers share one host (and cookies ignore ports): names must not collide.
    cookies: {
      names: {
        session: `op${port}_${index}_session`,
        interaction: `op${port}_${index}_interaction`,
        resume: `op${port}_${index}_resume`,
      },
      keys: [crypto.randomBytes(32).toString('base64url')],
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 86400,
    },
    clientBasedCORS: () => true,
  });

  // Entra's multi-tenant endpoints sign each ID token as the user's own tenant: `iss`
  // follows the account. oidc-provider reads provider.issuer when it signs, so during a
  // token request (tracked with AsyncLocalStorage) the getter answers per account.
  const currentRequest = new AsyncLocalStorage();
  if (spec.id_token_issuer) {
    Object.defineProperty(provider, 'issuer', {
      configurable: true,
      enumerable: true,
      get() {
        const ctx = currentRequest.getStore();
        const sub = ctx?.path === '/token' ? ctx.oidc?.entities?.Account?.accountId : undefined;
        if (sub === undefined) return issuer;
        const claims = bySub.get(sub) ?? {};
        return spec.id_token_issuer.replace(/\{([^}]+)\}/g, (whole, name) => {
          if (name === 'origin') return origin;
          if (claims[name] === undefined) throw new Error(`id_token_issuer: no claim ${name} for ${sub}`);
          return String(claims[name]);
        });
      },
    });
  }

  provider.on('server_error', (ctx, err) => {
    console.error(`oidc server: ${spec.path} ${ctx.method} ${ctx.path}: server_error`, err);
  });

  // Runs before oidc-provider's own routing (provider.use inserts ahead of it).
  provider.use((ctx, next) => currentRequest.run(ctx, next));
  provider.use(async (ctx, next) => {
    // Where oidc-provider builds its URLs from (see OIDCContext.urlFor).
    ctx.mountPath = spec.path;

    if (ctx.path === '/auth' && (ctx.method === 'GET' || ctx.method === 'POST')) {
      const query = { ...ctx.query };
      const client = clientsById.get(query.client_id);
      if (ctx.method === 'GET' && client?.authorization_error
          && client.redirect_uris.includes(query.redirect_uri)) {
        errorResponse(ctx, issuer, {
          redirectUri: query.redirect_uri,
          state: query.state,
          responseMode: query.response_mode,
        }, client.authorization_error, issInResponse);
        return;
      }
      // Google and Entra accept prompt=select_account; oidc-provider rejects unknown
      // prompts. Here the account chooser is the login form, so it means prompt=login.
      if (typeof query.prompt === 'string' && query.prompt.split(' ').includes('select_account')) {
        const prompts = new Set(query.prompt.split(' ').filter(Boolean));
        prompts.delete('select_account');
        prompts.add('login');
        query.prompt = [...prompts].join(' ');
        ctx.query = query;
      }
    }

    const interaction = /^\/interaction\/([^/]+)$/.exec(ctx.path);
    if (interaction && ctx.method === 'POST') {
      let details;
      try {
        details = await provider.interactionDetails(ctx.req, ctx.res);
      } catch (err) {
        renderPage(ctx, 400, 'Sign-in failed', `interaction not found: ${err.message}`);
        return;
      }
      // The login form is ours to answer; the consent form goes to devInteractions.
      if (details.prompt.name === 'login') {
        await handleLogin(ctx, details);
        return;
      }
    }

    await next();

    if (spec.discovery_issuer && ctx.oidc?.route === 'discovery' && ctx.body) {
      ctx.body.issuer = spec.discovery_issuer.replaceAll('{origin}', origin);
    }
    if (!issInResponse) {
      if (ctx.oidc?.route === 'discovery' && ctx.body) {
        ctx.body.authorization_response_iss_parameter_supported = false;
      }
      // form_post answers: drop the hidden iss input.
      if (typeof ctx.body === 'string' && ['authorization', 'resume'].includes(ctx.oidc?.route)) {
        ctx.body = ctx.body.replace(/<input type="hidden" name="iss" value="[^"]*"\/>\n?/, '');
      }
      const location = ctx.response.get('Location');
      if (location && clients.some((c) => c.redirect_uris.some((u) => location.startsWith(u)))) {
        const url = new URL(location);
        url.searchParams.delete('iss');
        ctx.set('Location', url.href);
      }
    }
  });

  async function handleLogin(ctx, details) {
    const length = Number(ctx.get('content-length') || 0);
    if (length > 65536) {
      renderPage(ctx, 413, 'Sign-in failed', 'request body too large');
      return;
    }
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const body = querystring.parse(Buffer.concat(chunks).toString('utf8'));
    const login = typeof body.login === 'string' ? body.login : '';

    if (Object.hasOwn(errorLogins, login)) {
      const { params } = details;
      errorResponse(ctx, issuer, {
        redirectUri: params.redirect_uri,
        state: params.state,
        responseMode: params.response_mode,
      }, errorLogins[login], issInResponse);
      return;
    }
    if (!Object.hasOwn(accounts, login)) {
      renderPage(ctx, 400, 'Sign-in failed', `unknown login ${JSON.stringify(login)} at ${spec.path}`);
      return;
    }
    // Any password is accepted; the account's sub (not the login name) is the subject.
    const accountId = accounts[login].sub ?? login;
    const returnTo = await provider.interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId } },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(returnTo);
  }

  return { issuer, path: spec.path, provider, callback: provider.callback() };
}

function readConfig() {
  if (process.argv[2]) {
    return Promise.resolve(JSON.parse(readFileSync(process.argv[2], 'utf8')));
  }
  // The config as the first line of stdin; the rest of stdin stays the lifeline.
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline !== -1) {
        process.stdin.off('data', onData);
        try {
          resolve(JSON.parse(buffer.slice(0, newline)));
        } catch (err) {
          reject(err);
        }
      }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.on('end', () => reject(new Error('stdin closed before a config line')));
  });
}

async function main() {
  const config = await readConfig().catch((err) => fail(`bad config: ${err.message}`));

  // Stop with the parent: when stdin closes, and after the maximum lifetime regardless.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.on('data', () => {});
  process.stdin.resume();
  const lifetime = Number(config.max_lifetime_seconds ?? 1800);
  setTimeout(() => {
    console.error(`oidc server: maximum lifetime of ${lifetime}s reached, exiting`);
    process.exit(0);
  }, lifetime * 1000).unref();
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));

  const host = config.host ?? '127.0.0.1';
  const tls = config.tls ?? fail('config.tls (cert_file, key_file) is required');
  const specs = config.issuers ?? [];
  if (!specs.length) fail('config.issuers is empty');
  for (const spec of specs) {
    if (typeof spec.path !== 'string' || !/^(\/[^/?#]+)+$/.test(spec.path)) {
      fail(`issuer path must look like /a/b, got ${JSON.stringify(spec.path)}`);
    }
  }

  let mounts = [];
  const server = https.createServer({
    cert: readFileSync(tls.cert_file),
    key: readFileSync(tls.key_file),
  }, (req, res) => {
    const started = Date.now();
    const fullUrl = req.url;
    if (config.log_requests !== false) {
      res.on('finish', () => {
        console.error(`${req.method} ${fullUrl} -> ${res.statusCode} (${Date.now() - started} ms)`);
      });
    }
    const path = req.url.split('?')[0];
    // Longest prefix first, so /a/b wins over /a.
    const mount = mounts.find((m) => path === m.path || path.startsWith(`${m.path}/`));
    if (!mount) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain');
      res.end(`no issuer at ${path}; issuers: ${mounts.map((m) => m.issuer).join(' ')}\n`);
      return;
    }
    // oidc-provider routes on req.url without the prefix; ctx.mountPath (set in the
    // provider's first middleware) puts the prefix back into every URL it builds.
    req.url = req.url.slice(mount.path.length) || '/';
    if (req.url.startsWith('?')) req.url = `/${req.url}`;
    mount.callback(req, res);
  });

  server.on('error', (err) => fail(`server error: ${err.message}`));
  server.listen(config.port ?? 0, host, () => {
    const { port } = server.address();
    const origin = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    mounts = specs
      .map((spec, index) => buildProvider(origin, port, spec, index))
      .sort((a, b) => b.path.length - a.path.length);
    process.stdout.write(`READY ${JSON.stringify({ port, origin, issuers: mounts.map((m) => m.issuer) })}\n`);
  });
}

main();
