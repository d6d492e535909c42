// A real OpenID provider (npm `oidc-provider`, pinned by package-lock.json) on 127.0.0.1,
// for tests/oidc.rs, tests/dpop_interop.rs and the MCP interop: client_credentials grants
// with resource indicators, JWT access tokens (RFC 9068, `typ: at+jwt`) signed RS256 or
// ES256 by keys generated fresh on every start, DPoP-bound on request (RFC 9449).
//
//   node interop/oidc-provider.mjs --port N     (0: any free port)
//
// Once listening it prints one JSON line, {"issuer":"http://127.0.0.1:PORT","port":PORT},
// and runs until SIGTERM or SIGINT. Nothing else goes to stdout. Each start-up step is
// named on stderr first, so a start that hangs shows where.
//
// Client: client_id "interop", secret "interop-secret" (client_secret_post or
// client_secret_basic), grant client_credentials only, scopes "read admin mcp:tools mcp:admin".
// Resources:
//   urn:demo:rs256  RS256, scope "read admin", tokens live 300 s
//   urn:demo:es256  ES256, scope "read admin", tokens live 300 s
//   urn:demo:short  RS256, scope "read admin", tokens live 1 s (for expiry tests)
//   urn:demo:api    RS256, scope "read admin mcp:tools", audience "demo-api" (the demo's
//                   default DEMO_AUDIENCE), tokens live 300 s
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

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

/** Names a start-up step on stderr. */
const step = (what) => process.stderr.write(`oidc-provider.mjs: ${what}\n`);

step('loading oidc-provider');
const { default: Provider, errors } = await import('oidc-provider');

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
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
};

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
  }],
  jwks: { keys },
  // The proof algorithms accepted at the token endpoint (the default is ES256 and EdDSA).
  enabledJWA: {
    dPoPSigningAlgValues: ['ES256', 'ES384', 'PS256', 'PS384', 'PS512', 'RS256', 'Ed25519', 'EdDSA'],
  },
  // Only the client_credentials grant is used: no login pages (devInteractions off), no
  // session cookies; the cookie keys only keep the provider from warning about defaults.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'read', 'admin', 'mcp:tools', 'mcp:admin'],
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    // RFC 9449 at the token endpoint (on by default in oidc-provider 9, spelled out here):
    // a DPoP proof binds the token (`cnf.jkt`, token_type DPoP); no nonce is asked for;
    // a proof's jti is remembered (the in-memory adapter) so a replay is refused.
    dPoP: { enabled: true, requireNonce: () => false, allowReplay: false },
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
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: rs.alg } },
        };
      },
    },
  },
});
// A plain-http issuer needs no setting: oidc-provider takes its endpoints' URLs from the
// issuer. `proxy` (trust X-Forwarded-*) is off by default and stays off: nothing sits in front.
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({ issuer, port: bound })}\n`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
