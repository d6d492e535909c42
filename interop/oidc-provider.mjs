// A real OpenID provider (npm `oidc-provider`, pinned by package-lock.json) on 127.0.0.1,
// for tests/oidc.rs, tests/dpop_interop.rs, the MCP interop and tests/provider_opaque.rs:
// client_credentials grants with resource indicators, JWT access tokens (RFC 9068, `typ:
// at+jwt`) signed RS256 or ES256 by keys generated fresh on every start, DPoP-bound on
// request (RFC 9449); opaque access tokens for one resource, with RFC 7662 introspection,
// RFC 7009 revocation and OpenID Connect Back-Channel Logout 1.0.
//
//   node interop/oidc-provider.mjs --port N     (0: any free port)
//        [--backchannel-logout-uri URL]          (client demo-rs's backchannel_logout_uri)
//        [--auto-approve]                        (MCP clients: see "Auto-approve" below)
//
// Once listening it prints one JSON line, {"issuer":"http://127.0.0.1:PORT","port":PORT},
// and runs until SIGTERM or SIGINT. Nothing else goes to stdout. Each start-up step is
// named on stderr first, so a start that hangs shows where.
//
// Clients:
//   interop   secret "interop-secret" (client_secret_post or client_secret_basic), grant
//             client_credentials only, scopes "read admin mcp:tools mcp:admin"; may revoke
//             its own tokens
//   demo-rs   secret "demo-rs-secret", client_secret_basic: the resource server (the demo's
//             DEMO_INTROSPECTION_CLIENT_ID/_SECRET and DEMO_CLIENT_ID); may introspect any
//             token; with --backchannel-logout-uri, that is its backchannel_logout_uri, with
//             backchannel_logout_session_required (logout tokens carry `sid`)
// Resources:
//   urn:demo:rs256  RS256, scope "read admin", tokens live 300 s
//   urn:demo:es256  ES256, scope "read admin", tokens live 300 s
//   urn:demo:short  RS256, scope "read admin", tokens live 1 s (for expiry tests)
//   urn:demo:api    RS256, scope "read admin mcp:tools", audience "demo-api" (the demo's
//                   default DEMO_AUDIENCE), tokens live 300 s
//   urn:demo:opaque OPAQUE access tokens (43 random characters, nothing inside), scope
//                   "read admin", audience "demo-api", tokens live 300 s: a resource server
//                   learns about them only by introspection
//   http://127.0.0.1:PORT/mcp and http://localhost:PORT/mcp, any PORT (an MCP server's
//                   resource identifier, RFC 9728): RS256, scope "mcp:tools mcp:admin", audience the
//                   URL itself, tokens live 300 s
// A token request without `resource` gets urn:demo:rs256; any other resource is
// invalid_target. A granted scope is the requested one cut to the resource's.
//
// DPoP (RFC 9449, oidc-provider's `features.dPoP`): a token request that carries a `DPoP`
// proof header (ES256, PS256, RS256, EdDSA/Ed25519, ...; htm POST, htu the token
// endpoint) gets `token_type: "DPoP"` and an access token with `cnf.jkt`, the proof key's
// RFC 7638 thumbprint. No server nonce is required; a replayed proof (same jti) is
// refused (invalid_grant). Without the header tokens stay Bearer.
//
// Introspection (RFC 7662, `features.introspection`) at /token/introspection: an opaque
// token's answer is {active, client_id, exp, iat, iss, aud, scope, token_type} (no `sub`
// for client_credentials; no `jti`, which is the token itself); a JWT access token is
// refused there (unsupported_token_type), as oidc-provider does. Revocation (RFC 7009,
// `features.revocation`) at /token/revocation: a client revokes its own tokens; an opaque
// one is gone at once, and introspects as {"active": false} from then on.
//
// Back-channel logout (`features.backchannelLogout`): oidc-provider sends logout tokens
// when a session ends at its end_session endpoint, which needs a browser session (login
// and consent pages). This fixture has none, so it triggers the same code through a test
// control route instead, answered by this script and not by oidc-provider:
//
//   POST /test-control/backchannel-logout   form or JSON {sub, sid}
//
// calls oidc-provider's own Client#backchannelLogout(sub, sid) for client demo-rs, the
// method its end_session endpoint calls: it mints the logout token (`typ: logout+jwt`,
// RS256 with the provider's key, iss the issuer, aud demo-rs, iat, exp +120 s, jti, sub,
// sid, the backchannel-logout event) and POSTs it, form field logout_token, to the
// client's backchannel_logout_uri. Answers 200 {"delivered": true} once that URI answered
// 200 or 204, 502 {"delivered": false, "error"} otherwise, 400 without --backchannel-
// logout-uri. oidc-provider's outgoing requests refuse special-use addresses (an SSRF
// guard that covers loopback); the provider's `fetch` drops that guard for loopback
// URLs only, since every party here is on 127.0.0.1.
//
// Auto-approve (--auto-approve), for MCP clients that register themselves and authorize
// with no person in the loop (the MCP authorization spec's flow, and the step-up to a scope
// a tool needs). On top of everything above:
//   - dynamic client registration (RFC 7591) at POST /reg, open (no initial access token):
//     201 for a client with redirect_uris on http://localhost:PORT/... or 127.0.0.1,
//     token_endpoint_auth_method client_secret_post (or basic, or none), grant types
//     authorization_code and refresh_token. A `scope` in the registration is dropped rather
//     than kept as the client's allow-list: a client that registered with mcp:tools comes
//     back for mcp:tools mcp:admin on a step-up (the MCP SDK does);
//   - the authorization code grant with PKCE, S256 only and required;
//   - approval without a person: the authorization endpoint's first answer is the redirect
//     to redirect_uri with `code` (and `state`, `iss`). Every browser session counts as
//     logged in as account "auto-approved" (oidc-provider's Session.get is wrapped), each
//     authorization request gets a fresh grant of exactly the scopes it asks for that its
//     resources offer (`loadExistingGrant`), and the interaction policy has no checks, so no
//     login or consent page is ever asked for, even on prompt=login or prompt=consent;
//   - the tokens: JWT access tokens for the resource asked for (an MCP server's
//     http://127.0.0.1:PORT/mcp: aud that URL, scope mcp:tools and/or mcp:admin, sub
//     "auto-approved"), DPoP-bound (`cnf.jkt`) when the token request carries a proof;
//     never a refresh token (an MCP client that holds one refreshes instead of authorizing
//     again, and a refresh never adds the scope a step-up needs). Client ID metadata
//     documents stay off, so discovery does not advertise client_id_metadata_document_supported.
// Without the flag none of this exists: no registration endpoint, no authorization code.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

/** Names a start-up step on stderr. */
const step = (what) => process.stderr.write(`oidc-provider.mjs: ${what}\n`);

step('loading oidc-provider');
const { default: Provider, errors, interactionPolicy } = await import('oidc-provider');

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'backchannel-logout-uri': { type: 'string' },
    'auto-approve': { type: 'boolean', default: false },
  },
});
const backchannelLogoutUri = values['backchannel-logout-uri'];
const autoApprove = values['auto-approve'];
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be 0..65535, got ${values.port}`);
  process.exit(2);
}

/** A private JWK, `use: sig` and its one `alg`, with a random `kid`. */
function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `${alg.toLowerCase()}-${randomBytes(8).toString('hex')}`, alg, use: 'sig' };
}

step('generating keys');
const keys = [
  signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
];

const TTL = 300;
const RESOURCES = {
  'urn:demo:rs256': { alg: 'RS256', ttl: TTL },
  'urn:demo:es256': { alg: 'ES256', ttl: TTL },
  'urn:demo:short': { alg: 'RS256', ttl: 1 },
  'urn:demo:api': {
    alg: 'RS256', ttl: TTL, audience: 'demo-api', scope: 'read admin mcp:tools',
  },
  'urn:demo:opaque': { format: 'opaque', ttl: TTL, audience: 'demo-api' },
};

/** The resource server that introspects tokens and receives logout tokens. */
const RS_CLIENT = 'demo-rs';

/** Whether `url` names this machine (the only hosts this fixture ever calls). */
function loopback(url) {
  const { hostname } = new URL(url);
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

/** An MCP server's resource on loopback: `http://127.0.0.1:PORT/mcp` or the localhost spelling. */
const MCP_RESOURCE = /^http:\/\/(127\.0\.0\.1|localhost):[0-9]{1,5}\/mcp$/;

/** The resource server behind a resource indicator, or undefined. */
function resourceServer(resource) {
  if (Object.hasOwn(RESOURCES, resource)) return RESOURCES[resource];
  if (typeof resource === 'string' && MCP_RESOURCE.test(resource)) {
    return { alg: 'RS256', ttl: TTL, scope: 'mcp:tools mcp:admin' };
  }
  return undefined;
}

/** The account every auto-approved authorization is for. */
const AUTO_ACCOUNT = 'auto-approved';

/**
 * The settings --auto-approve adds (see the header): registration, the code grant with
 * PKCE, no person asked, no refresh tokens.
 */
function autoApproveSettings() {
  // Every prompt (login, consent, ...) stays known, so prompt=login is a valid request, but
  // none has a check left that could ask for a person.
  const policy = interactionPolicy.base();
  for (const prompt of policy) prompt.checks.clear();
  return {
    config: {
      // `scope` is processed as custom metadata only so that a registered one can be
      // dropped before it becomes the client's allow-list (see the header).
      extraClientMetadata: {
        properties: ['scope'],
        validator: (_ctx, key, _value, metadata) => {
          if (key === 'scope') delete metadata.scope;
        },
      },
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
      interactions: { policy },
      issueRefreshToken: () => false,
      // A fresh grant per authorization request: the scopes it asks for, as far as its
      // resources (and OpenID Connect) offer them.
      loadExistingGrant: async (ctx) => {
        const { oidc } = ctx;
        const grant = new oidc.provider.Grant({
          accountId: oidc.session.accountId,
          clientId: oidc.client.clientId,
        });
        const openid = [...oidc.requestParamOIDCScopes].join(' ');
        if (openid) grant.addOIDCScope(openid);
        for (const [indicator, rs] of Object.entries(oidc.resourceServers)) {
          const scope = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s)).join(' ');
          if (scope) grant.addResourceScope(indicator, scope);
        }
        await grant.save();
        return grant;
      },
      pkce: { required: () => true },
    },
    // Set, so that oidc-provider does not call its defaults and print a notice for each.
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL,
      AuthorizationCode: 60,
      Grant: TTL,
      Interaction: 60,
      Session: TTL,
    },
    features: {
      registration: { enabled: true, initialAccessToken: false },
      clientIdMetadataDocument: { enabled: false },
    },
  };
}
const auto = autoApprove ? autoApproveSettings() : { config: {}, features: {}, ttl: {} };

// The issuer carries the port, so the provider is built once the server listens.
step('listening');
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const bound = server.address().port;
const issuer = `http://127.0.0.1:${bound}`;

step(`configuring ${issuer}`);
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'interop',
    client_secret: 'interop-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
  }, {
    client_id: RS_CLIENT,
    client_secret: 'demo-rs-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...(backchannelLogoutUri ? {
      backchannel_logout_uri: backchannelLogoutUri,
      backchannel_logout_session_required: true,
    } : {}),
  }],
  // Outgoing requests (logout tokens) go through oidc-provider's SSRF guard, which refuses
  // loopback addresses; every party of this fixture is on loopback.
  fetch: (url, options) => {
    if (!loopback(url)) return globalThis.fetch(url, options);
    const { dispatcher: _guard, ...unguarded } = options;
    return globalThis.fetch(url, unguarded);
  },
  jwks: { keys },
  // The proof algorithms accepted at the token endpoint (the default is ES256 and EdDSA).
  enabledJWA: {
    dPoPSigningAlgValues: ['ES256', 'ES384', 'PS256', 'PS384', 'PS512', 'RS256', 'Ed25519', 'EdDSA'],
  },
  // No login pages (devInteractions off): without --auto-approve only the client_credentials
  // grant is used, and with it nobody is asked. The cookie keys sign --auto-approve's
  // session cookies, and otherwise only keep the provider from warning about defaults.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'read', 'admin', 'mcp:tools', 'mcp:admin'],
  ttl: {
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL,
    ...auto.ttl,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // RFC 7662: the resource server may introspect any token, a client its own ones.
    introspection: {
      enabled: true,
      allowedPolicy: (_ctx, client, token) => (
        client.clientId === RS_CLIENT || client.clientId === token.clientId),
    },
    // RFC 7009: a client may revoke its own tokens only (oidc-provider's default rule,
    // spelled out); another client's token is invalid_request.
    revocation: {
      enabled: true,
      allowedPolicy: (_ctx, client, token) => {
        if (client.clientId !== token.clientId) {
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        }
        return true;
      },
    },
    backchannelLogout: { enabled: true },
    // RFC 9449 at the token endpoint (on by default in oidc-provider 9, spelled out here):
    // a DPoP proof binds the token (`cnf.jkt`, token_type DPoP); no nonce is asked for;
    // a proof's jti is remembered (the in-memory adapter) so a replay is refused.
    dPoP: { enabled: true, requireNonce: () => false, allowReplay: false },
    ...auto.features,
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf ?? 'urn:demo:rs256',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const rs = resourceServer(resource);
        if (!rs) throw new errors.InvalidTarget();
        return {
          audience: rs.audience ?? resource,
          scope: rs.scope ?? 'read admin',
          accessTokenTTL: rs.ttl,
          ...(rs.format === 'opaque'
            ? { accessTokenFormat: 'opaque' }
            : { accessTokenFormat: 'jwt', jwt: { sign: { alg: rs.alg } } }),
        };
      },
    },
  },
  ...auto.config,
});
if (autoApprove) {
  // Approval without a person: every session is already logged in (see the header).
  const { Session } = provider;
  const load = Session.get.bind(Session);
  Session.get = async (ctx) => {
    const session = await load(ctx);
    if (!session.accountId) session.loginAccount({ accountId: AUTO_ACCOUNT, transient: true });
    return session;
  };
}
// A plain-http issuer needs no setting: oidc-provider takes its endpoints' URLs from the
// issuer. `proxy` (trust X-Forwarded-*) is off by default and stays off: nothing sits in front.
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

// TEST CONTROL, not part of oidc-provider: see the header. Everything else is the provider's.
const CONTROL_LOGOUT = '/test-control/backchannel-logout';

/** The request's body: a form or a JSON object. */
async function bodyOf(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
    return JSON.parse(text || '{}');
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** Answers `res` with status `status` and the JSON `body`. */
function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** POST /test-control/backchannel-logout: the provider's own logout token, sent to demo-rs. */
async function controlLogout(req, res) {
  if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });
  if (!backchannelLogoutUri) {
    return answer(res, 400, { error: 'started without --backchannel-logout-uri' });
  }
  let sub;
  let sid;
  try {
    ({ sub, sid } = await bodyOf(req));
  } catch (err) {
    return answer(res, 400, { error: `unreadable body: ${err.message}` });
  }
  if (typeof sub !== 'string' || typeof sid !== 'string' || !sub || !sid) {
    return answer(res, 400, { error: 'sub and sid are required' });
  }
  const client = await provider.Client.find(RS_CLIENT);
  try {
    await client.backchannelLogout(sub, sid);
  } catch (err) {
    step(`back-channel logout to ${backchannelLogoutUri} failed: ${err.message}`);
    return answer(res, 502, { delivered: false, error: err.message });
  }
  return answer(res, 200, { delivered: true });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (new URL(req.url, issuer).pathname === CONTROL_LOGOUT) {
    controlLogout(req, res).catch((err) => answer(res, 500, { error: String(err) }));
    return;
  }
  callback(req, res);
});

process.stdout.write(`${JSON.stringify({ issuer, port: bound })}\n`);
// oidc-provider prints its notices with console.info (a default it calls, say): they go to
// stderr, since the start line is all stdout has, and its reader may be gone.
console.info = console.error;
console.log = console.error;

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
