// The demo as panva's npm `oauth4webapi` (a certified OAuth 2 / OIDC client) sees it, for
// tests/dpop_interop.rs. It asserts nothing: it prints one JSON object, and the Rust test
// judges it.
//
//   node interop/oauth4webapi-check.mjs --base http://127.0.0.1:D --issuer http://127.0.0.1:P
//
// 1. Challenges. oauth4webapi 3 keeps its WWW-Authenticate parser internal and runs it on
//    every protected resource response: `protectedResourceRequest` throws a
//    WWWAuthenticateChallengeError whose `cause` is the parsed challenges, and returns the
//    response when the header is absent or does not parse. Each probe is fetched here with
//    its own headers and the response handed to `protectedResourceRequest` (its
//    `customFetch`), so the parse is exactly the library's. Per probe: status, the
//    WWW-Authenticate value (field lines joined by ", " as fetch joins them), `parsed`
//    ([{scheme, parameters, token68}], null when the library found no challenge) and
//    `thrown` (the error's name when it was not the challenge error, else null).
// 2. RFC 9728 discovery of resource `--base/mcp`: `resourceDiscoveryRequest` +
//    `processResourceDiscoveryResponse` (allowInsecureRequests: http on loopback), and the
//    same document fetched from the /mcp challenge's `resource_metadata`.
// 3. The chain an MCP client follows: the document's first authorization server, its OIDC
//    discovery, a client_credentials token for the resource (scope mcp:tools), GET /mcp
//    with it; and a DPoP-bound token (oauth4webapi's own DPoP handle, ES256) used on /dpop.
//
// Output: {"resource", "probes": {NAME: PROBE}, "discovery": {...}, "flow": {...}}; a step
// that throws records {"thrown", "code", "message"} instead of its result.

import { parseArgs } from 'node:util';

import * as oauth from 'oauth4webapi';

const { values } = parseArgs({
  options: { base: { type: 'string' }, issuer: { type: 'string' } },
});
if (!values.base || !values.issuer) {
  console.error('--base and --issuer are required');
  process.exit(2);
}
const base = values.base.replace(/\/$/, '');
const resource = `${base}/mcp`;
const insecure = { [oauth.allowInsecureRequests]: true };
const client = { client_id: 'interop' };
const clientAuth = oauth.ClientSecretPost('interop-secret');

/** What a step threw, for the output. */
function failure(err) {
  const out = { thrown: err?.name ?? String(err), code: err?.code ?? null, message: err?.message ?? null };
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    Object.assign(out, { status: err.status, challenges: err.cause });
  }
  return out;
}

/** Runs `step`, giving its result or what it threw. */
async function attempt(step) {
  try {
    return await step();
  } catch (err) {
    return failure(err);
  }
}

/** The authorization server (oauth4webapi's OIDC discovery of `issuer`). */
async function authorizationServer(issuer) {
  const url = new URL(issuer);
  return oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, insecure));
}

/** A client_credentials access token for `resource`, DPoP-bound when `dpop` is given. */
async function token(as, scope, dpop) {
  const options = { ...insecure, ...(dpop ? { DPoP: dpop } : {}) };
  const params = { resource, scope };
  const res = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, params, options);
  return oauth.processClientCredentialsResponse(as, client, res);
}

/** GETs `path` with `headers`, and lets oauth4webapi parse the response's challenges. */
async function probe(path, headers = {}) {
  const url = new URL(path, `${base}/`);
  const response = await fetch(url, { headers, redirect: 'manual' });
  const out = {
    status: response.status,
    www_authenticate: response.headers.get('www-authenticate'),
    parsed: null,
    thrown: null,
  };
  try {
    // The access token is never sent: customFetch answers with the response above.
    await oauth.protectedResourceRequest('unused', 'GET', url, undefined, undefined, {
      ...insecure,
      [oauth.customFetch]: async () => response,
    });
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      out.parsed = err.cause.map(({ scheme, parameters, token68 }) => ({
        scheme,
        parameters,
        token68: token68 ?? null,
      }));
    } else {
      Object.assign(out, { thrown: err?.name ?? String(err), message: err?.message ?? null });
    }
  }
  return out;
}

const as = await authorizationServer(values.issuer);
const withScope = await token(as, 'mcp:tools');
// The /mcp resource grants only mcp:tools: asking for `read` alone gives a token without it.
const withoutScope = await token(as, 'read');
const dpopKeys = await oauth.generateKeyPair('ES256');
const dpopHandle = oauth.DPoP(client, dpopKeys);
const bound = await attempt(() => token(as, 'mcp:tools', dpopHandle));

const bearer = (t) => ({ authorization: `Bearer ${t}` });
const probes = {
  mcp_no_token: await probe('mcp'),
  mcp_bad_token: await probe('mcp', bearer('not-a-token')),
  mcp_no_scope: await probe('mcp', bearer(withoutScope.access_token)),
  me_no_token: await probe('me'),
  me_bad_token: await probe('me', bearer('not-a-token')),
  admin_no_scope: await probe('admin', bearer(withScope.access_token)),
  stepup_no_acr: await probe('stepup', bearer(withScope.access_token)),
  any_no_credentials: await probe('any'),
  basic_wrong: await probe('basic', { authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` }),
  dpop_no_credentials: await probe('dpop'),
  dpop_bad_proof: await probe('dpop', { authorization: `DPoP ${bound.access_token ?? 'x'}`, dpop: 'not-a-jwt' }),
  dpop_as_bearer: await probe('me', bearer(bound.access_token ?? 'x')),
};

// RFC 9728: the well-known URL derived from the resource, and the one the challenge names.
let requested = null;
const discovery = {
  requested_url: null,
  document: await attempt(async () => {
    const res = await oauth.resourceDiscoveryRequest(new URL(resource), {
      ...insecure,
      [oauth.customFetch]: (url, init) => {
        requested = url;
        return fetch(url, init);
      },
    });
    return oauth.processResourceDiscoveryResponse(new URL(resource), res);
  }),
  from_challenge: null,
};
discovery.requested_url = requested;
const pointer = probes.mcp_no_token.parsed?.[0]?.parameters?.resource_metadata;
if (pointer) {
  discovery.from_challenge = await attempt(async () => {
    const res = await fetch(pointer, { headers: { accept: 'application/json' } });
    return oauth.processResourceDiscoveryResponse(new URL(resource), res);
  });
}

// The chain an MCP client follows from the challenge to a successful call.
const flow = await attempt(async () => {
  const doc = discovery.from_challenge ?? discovery.document;
  const asUrl = doc.authorization_servers?.[0];
  const found = await authorizationServer(asUrl);
  const t = await token(found, 'mcp:tools');
  const res = await oauth.protectedResourceRequest(t.access_token, 'GET', new URL(resource), undefined, undefined, insecure);
  return {
    authorization_server: asUrl,
    token_endpoint: found.token_endpoint,
    token_type: t.token_type,
    scope: t.scope ?? null,
    mcp_status: res.status,
  };
});

const dpopCall = bound.thrown ? bound : await attempt(async () => {
  const res = await oauth.protectedResourceRequest(bound.access_token, 'GET', new URL(`${base}/dpop`), undefined, undefined, {
    ...insecure,
    DPoP: dpopHandle,
  });
  return { token_type: bound.token_type, status: res.status, body: await res.json().catch(() => null) };
});

process.stdout.write(`${JSON.stringify({ resource, probes, discovery, flow, dpop: dpopCall })}\n`);
