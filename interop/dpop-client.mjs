// A DPoP client (RFC 9449) built on panva's npm `dpop` (proofs) and plain fetch, for
// tests/dpop_interop.rs. It gets DPoP-bound access tokens from interop/oidc-provider.mjs
// (the proof goes to the token endpoint; the token comes back with `cnf.jkt`), then sends
// the demo's DPoP route right and wrong requests. It asserts nothing: it prints one JSON
// object with what each request got, and the Rust test judges it.
//
//   node interop/dpop-client.mjs --issuer http://127.0.0.1:P --resource http://127.0.0.1:D/mcp \
//        --url http://127.0.0.1:D/dpop [--bearer-url http://127.0.0.1:D/me]
//
// --resource is the resource indicator asked of the provider (its `aud` must be what the
// demo requires); --bearer-url defaults to /me on --url's origin.
//
// Output: {"token": {...}, "cases": {NAME: CASE, ...}} where token describes the DPoP-bound
// token (status, token_type, scope, cnf_jkt, thumbprint of the proof key) and each CASE is
// {"status", "www_authenticate" (the field lines joined by ", " as fetch joins them, or
// null), "dpop_nonce", "content_type", "reason", "error" (the problem body's members, or
// null), "body" (JSON, or the text)}. Cases:
//   no_credentials   GET --url with nothing
//   valid            a right ES256 proof (htm, htu, ath, fresh jti)
//   valid_ps256      a right PS256 proof with a token bound to that PS256 key
//   query_ignored    --url?x=1 with a proof whose htu has no query (RFC 9449 §4.3)
//   replayed         the proof of `valid` sent again (same jti)
//   wrong_htm        htm POST on a GET
//   wrong_htu        htu another path on the same origin
//   wrong_origin     htu the same path and host over https (the demo answers at http)
//   wrong_host       htu the same path on another host name
//   no_ath           a proof without ath
//   wrong_ath        ath the hash of another token
//   proof_missing    Authorization: DPoP with no DPoP header
//   proof_garbage    a DPoP header that is not a JWT
//   other_key        a right proof, but by a key other than the token's cnf.jkt
//   rs256_proof      a right proof signed RS256 (not in the demo's default algs)
//   unbound_token    a Bearer (unbound) token from the provider, sent with a right proof
//   as_bearer        the DPoP-bound token as `Authorization: Bearer` to --bearer-url
//   as_bearer_here   the DPoP-bound token as `Authorization: Bearer` to --url

import { parseArgs } from 'node:util';

import * as DPoP from 'dpop';

const { values } = parseArgs({
  options: {
    issuer: { type: 'string' },
    resource: { type: 'string' },
    url: { type: 'string' },
    'bearer-url': { type: 'string' },
  },
});
for (const name of ['issuer', 'resource', 'url']) {
  if (!values[name]) {
    console.error(`--${name} is required`);
    process.exit(2);
  }
}
const { issuer, resource, url } = values;
const bearerUrl = values['bearer-url'] ?? new URL('/me', url).href;
const tokenEndpoint = `${issuer}/token`;

/** An access token by the client_credentials grant, DPoP-bound to `keyPair` when given. */
async function token(keyPair) {
  const headers = {};
  if (keyPair) headers.dpop = await DPoP.generateProof(keyPair, tokenEndpoint, 'POST');
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers,
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'interop',
      client_secret: 'interop-secret',
      resource,
      scope: 'mcp:tools read',
    }),
  });
  const body = await res.json();
  if (res.status !== 200) {
    throw new Error(`token request: ${res.status} ${JSON.stringify(body)}`);
  }
  const claims = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url'));
  return { body, claims };
}

/** GET `target` with `headers`; what came back. */
async function get(target, headers) {
  const res = await fetch(target, { headers, redirect: 'manual' });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  const problem = body !== null && typeof body === 'object' ? body : {};
  return {
    status: res.status,
    www_authenticate: res.headers.get('www-authenticate'),
    dpop_nonce: res.headers.get('dpop-nonce'),
    content_type: res.headers.get('content-type'),
    reason: problem.reason ?? null,
    error: problem.error ?? null,
    body,
  };
}

const es256 = await DPoP.generateKeyPair('ES256');
const ps256 = await DPoP.generateKeyPair('PS256');
const stranger = await DPoP.generateKeyPair('ES256');
const rs256 = await DPoP.generateKeyPair('RS256');

const bound = await token(es256);
const boundPs = await token(ps256);
const unbound = await token();
const at = bound.body.access_token;

/** A proof by `keyPair`; `accessToken: null` leaves out `ath`. */
const proof = (keyPair, { htu = url, htm = 'GET', accessToken = at } = {}) => (
  DPoP.generateProof(keyPair, htu, htm, undefined, accessToken ?? undefined)
);
const dpopAuth = (tok, p) => ({ authorization: `DPoP ${tok}`, dpop: p });

const cases = {};
cases.no_credentials = await get(url, {});
const validProof = await proof(es256);
cases.valid = await get(url, dpopAuth(at, validProof));
cases.valid_ps256 = await get(url, dpopAuth(
  boundPs.body.access_token,
  await proof(ps256, { accessToken: boundPs.body.access_token }),
));
const withQuery = new URL(url);
withQuery.searchParams.set('x', '1');
cases.query_ignored = await get(withQuery.href, dpopAuth(at, await proof(es256)));
cases.replayed = await get(url, dpopAuth(at, validProof));
cases.wrong_htm = await get(url, dpopAuth(at, await proof(es256, { htm: 'POST' })));
cases.wrong_htu = await get(url, dpopAuth(at, await proof(es256, { htu: new URL('/elsewhere', url).href })));
const elsewhere = (origin) => {
  const u = new URL(url);
  Object.assign(u, origin);
  return u.href;
};
cases.wrong_origin = await get(url, dpopAuth(at, await proof(es256, { htu: elsewhere({ protocol: 'https:' }) })));
cases.wrong_host = await get(url, dpopAuth(at, await proof(es256, { htu: elsewhere({ hostname: 'other.test' }) })));
cases.no_ath = await get(url, dpopAuth(at, await proof(es256, { accessToken: null })));
cases.wrong_ath = await get(url, dpopAuth(at, await proof(es256, { accessToken: unbound.body.access_token })));
cases.proof_missing = await get(url, { authorization: `DPoP ${at}` });
cases.proof_garbage = await get(url, dpopAuth(at, 'not-a-jwt'));
cases.other_key = await get(url, dpopAuth(at, await proof(stranger)));
cases.rs256_proof = await get(url, dpopAuth(at, await proof(rs256)));
cases.unbound_token = await get(url, dpopAuth(
  unbound.body.access_token,
  await proof(es256, { accessToken: unbound.body.access_token }),
));
cases.as_bearer = await get(bearerUrl, { authorization: `Bearer ${at}` });
cases.as_bearer_here = await get(url, { authorization: `Bearer ${at}` });

const out = {
  token: {
    token_type: bound.body.token_type,
    scope: bound.body.scope ?? null,
    aud: bound.claims.aud,
    iss: bound.claims.iss,
    cnf_jkt: bound.claims.cnf?.jkt ?? null,
    thumbprint: await DPoP.calculateThumbprint(es256.publicKey),
    ps256_cnf_jkt: boundPs.claims.cnf?.jkt ?? null,
    ps256_thumbprint: await DPoP.calculateThumbprint(ps256.publicKey),
    unbound_token_type: unbound.body.token_type,
    unbound_cnf: unbound.claims.cnf ?? null,
  },
  cases,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
