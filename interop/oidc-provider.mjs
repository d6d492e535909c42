// A real OpenID provider (npm `oidc-provider`, pinned by package-lock.json) on 127.0.0.1,
// for tests/oidc.rs: client_credentials grants with resource indicators, JWT access tokens
// (RFC 9068, `typ: at+jwt`) signed RS256 or ES256 by keys generated fresh on every start.
//
//   node interop/oidc-provider.mjs --port N     (0: any free port)
//
// Once listening it prints one JSON line, {"issuer":"http://127.0.0.1:PORT","port":PORT},
// and runs until SIGTERM or SIGINT. Nothing else goes to stdout.
//
// Client: client_id "interop", secret "interop-secret" (client_secret_post or
// client_secret_basic), grant client_credentials only. Resources:
//   urn:demo:rs256  RS256, scope "read admin", tokens live 300 s
//   urn:demo:es256  ES256, scope "read admin", tokens live 300 s
//   urn:demo:short  RS256, scope "read admin", tokens live 1 s (for expiry tests)
// A token request without `resource` gets urn:demo:rs256; any other resource is
// invalid_target.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

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

const keys = [
  signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
];

const TTL = 300;
const RESOURCES = {
  'urn:demo:rs256': { alg: 'RS256', ttl: TTL },
  'urn:demo:es256': { alg: 'ES256', ttl: TTL },
  'urn:demo:short': { alg: 'RS256', ttl: 1 },
};

// The issuer carries the port, so the provider is built once the server listens.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const bound = server.address().port;
const issuer = `http://127.0.0.1:${bound}`;

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
  // Only the client_credentials grant is used: no login pages (devInteractions off), no
  // session cookies; the cookie keys only keep the provider from warning about defaults.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'read', 'admin'],
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf ?? 'urn:demo:rs256',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const rs = RESOURCES[resource];
        if (!rs) throw new errors.InvalidTarget();
        return {
          audience: resource,
          scope: 'read admin',
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
