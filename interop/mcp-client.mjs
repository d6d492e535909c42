// An MCP client made of the official TypeScript SDK (npm `@modelcontextprotocol/sdk`, pinned
// by package-lock.json), for tests/mcp.rs and tests/mcp_auth.rs: it finds the authorization
// server of a protected MCP server the way the MCP authorization spec says and calls a tool.
//
//   node interop/mcp-client.mjs http://127.0.0.1:PORT/mcp
//
// 1. A request without a token must get 401 whose WWW-Authenticate names the RFC 9728
//    metadata (`resource_metadata`); the SDK's `extractWWWAuthenticateParams` reads it.
// 2. The SDK's `discoverOAuthProtectedResourceMetadata` and
//    `discoverAuthorizationServerMetadata` fetch that document and the authorization server
//    it names (RFC 8414, else OpenID discovery).
// 3. The SDK's own flow does the rest: `StreamableHTTPClientTransport` with a
//    `ClientCredentialsProvider` (client "interop" / "interop-secret" unless MCP_CLIENT_ID /
//    MCP_CLIENT_SECRET say otherwise) meets the same 401, runs `auth()` (discovery again,
//    then the client_credentials grant with `resource` = the metadata's resource and the
//    challenge's scope), retries with the token, and the client lists the tools and calls
//    `add` {a: 2, b: 3}.
// 4. Then it calls `admin-action`, which needs `mcp:admin` on top of `mcp:tools`: the server
//    answers 403 `insufficient_scope` naming every scope the call needs, the SDK asks for a
//    token with that scope (its upscoping) and retries. A challenge that named only the
//    tool's own scope would get a token without `mcp:tools`, refused in turn: the SDK
//    gives up ("403 after trying upscoping").
//
// With --authorization-code it is an interactive client instead, against an authorization
// server that approves without a person (interop/oidc-provider.mjs --auto-approve):
//
//   node interop/mcp-client.mjs --authorization-code http://127.0.0.1:PORT/mcp
//
// The SDK's `StreamableHTTPClientTransport` with an `OAuthClientProvider` of this script's
// (in memory; redirect URI http://localhost:PORT/callback, where nothing listens) meets the
// 401, discovers, registers the client dynamically (client_secret_post, grant types
// authorization_code and refresh_token) and sends it to the authorization endpoint with
// PKCE S256, the challenge's scope and the metadata's resource. The script plays the user
// agent: it fetches that URL without following redirects and takes the code from the first
// answer's Location (which must be the redirect URI, with this request's state), then
// `finishAuth(code)` exchanges it and a new connection lists the tools and calls `add`.
// Then `admin-action`: the server's 403 insufficient_scope makes the SDK ask for the scope
// it names (its upscoping) on its own, through the authorization endpoint again; the
// script hands it that code too and calls the tool once more on the same session.
// It prints one JSON line: every request the SDK and the script sent (method, URL,
// status, the challenge of a 401 or 403), the registration (without its secret), each
// authorization request (scope, resource, PKCE, the first answer), each token's fields and
// claims (never the token), the tools and both calls' results.
//
// On success it prints one JSON line (what it found; never the token itself) and exits 0.
// On any failure it prints the reason to stderr and exits 1.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
  UnauthorizedError,
} from '@modelcontextprotocol/sdk/client/auth.js';

const fail = (message) => {
  throw new Error(message);
};

/** A JWT's claims, unverified (the token is never printed, only what it says). */
function claimsOf(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

/**
 * The SDK's client_credentials provider, remembering what `auth()` discovered and what the
 * token it got says.
 */
class WatchedProvider extends ClientCredentialsProvider {
  discovered = undefined;
  savedTokens = undefined;
  /** The transport whose last challenge's scope the next token request asks for. */
  transport = undefined;

  // The SDK resolves the scope to ask for from the challenge (SEP-835) for interactive
  // flows, but its client_credentials request sends the provider's configured scope. Ask for
  // the scope of the challenge the transport last read, as an interactive client would.
  get clientMetadata() {
    const scope = this.transport?._scope ?? super.clientMetadata.scope;
    return { ...super.clientMetadata, scope };
  }

  saveDiscoveryState(state) {
    this.discovered = state;
  }

  discoveryState() {
    return this.discovered;
  }

  saveTokens(tokens) {
    super.saveTokens(tokens);
    this.savedTokens = tokens;
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'authorization-code': { type: 'boolean', default: false } },
  });
  const target = positionals[0]
    ?? fail('usage: node mcp-client.mjs [--authorization-code] http://HOST:PORT/mcp');
  const serverUrl = new URL(target);
  if (values['authorization-code']) {
    await authorizationCode(serverUrl);
    return;
  }

  // 1. No token: 401 and the metadata's URL. The body is what an MCP client sends first.
  const probe = await fetch(serverUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'probe', version: '0' },
      },
    }),
  });
  await probe.body?.cancel();
  if (probe.status !== 401) fail(`without a token: status ${probe.status}, expected 401`);
  const wwwAuthenticate = probe.headers.get('www-authenticate')
    ?? fail('the 401 has no WWW-Authenticate');
  const challenge = extractWWWAuthenticateParams(probe);
  const metadataUrl = challenge.resourceMetadataUrl
    ?? fail(`the challenge names no resource_metadata: ${wwwAuthenticate}`);

  // 2. The protected resource's metadata, then its authorization server's.
  const prm = await discoverOAuthProtectedResourceMetadata(serverUrl, {
    resourceMetadataUrl: metadataUrl,
  });
  const issuer = prm.authorization_servers?.[0]
    ?? fail(`the metadata names no authorization server: ${JSON.stringify(prm)}`);
  const asMetadata = await discoverAuthorizationServerMetadata(issuer)
    ?? fail(`no authorization server metadata at ${issuer}`);
  const scope = challenge.scope ?? prm.scopes_supported?.join(' ');

  // 3. The SDK's whole flow. The credentials are bound to the authorization server the
  // metadata names: a real client pins the issuer it was registered with instead.
  const provider = new WatchedProvider({
    clientId: process.env.MCP_CLIENT_ID || 'interop',
    clientSecret: process.env.MCP_CLIENT_SECRET || 'interop-secret',
    clientName: 'auth-diagnostics interop',
    scope,
    expectedIssuer: issuer,
  });
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  provider.transport = transport;
  const client = new Client({ name: 'auth-diagnostics-interop', version: '1.0.0' });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    if (result.isError) fail(`add failed: ${JSON.stringify(result.content)}`);
    const tokens = provider.savedTokens ?? fail('the SDK got no token');
    const claims = claimsOf(tokens.access_token);
    const admin = await client.callTool({ name: 'admin-action', arguments: {} });
    if (admin.isError) fail(`admin-action failed: ${JSON.stringify(admin.content)}`);
    const upscoped = provider.savedTokens ?? fail('the SDK got no token');
    process.stdout.write(`${JSON.stringify({
      server: serverUrl.href,
      challenge: {
        status: probe.status,
        www_authenticate: wwwAuthenticate,
        resource_metadata: metadataUrl.href,
        scope: challenge.scope ?? null,
        error: challenge.error ?? null,
      },
      resource_metadata: prm,
      authorization_server: {
        issuer: asMetadata.issuer,
        token_endpoint: asMetadata.token_endpoint,
        discovered_by_sdk: provider.discovered?.authorizationServerUrl ?? null,
      },
      token: {
        token_type: tokens.token_type,
        scope: tokens.scope ?? null,
        iss: claims.iss ?? null,
        aud: claims.aud ?? null,
        sub: claims.sub ?? null,
      },
      server_info: client.getServerVersion() ?? null,
      tools: tools.map((t) => t.name),
      result: { content: result.content, structured: result.structuredContent ?? null },
      admin: {
        structured: admin.structuredContent ?? null,
        token_scope: upscoped.scope ?? null,
        token_claims_scope: claimsOf(upscoped.access_token).scope ?? null,
      },
    })}\n`);
  } finally {
    await client.close();
  }
}

// --authorization-code -------------------------------------------------------------------

/** Where the authorization server sends the code: nothing listens there. */
const REDIRECT_URL = 'http://localhost:33418/callback';

/**
 * An in-memory interactive `OAuthClientProvider` whose user agent is this script: it
 * follows no redirect and reads the code from the authorization endpoint's first answer.
 */
class AutoApprovedProvider {
  redirectUrl = REDIRECT_URL;
  clientMetadata = {
    client_name: 'auth-diagnostics interop (authorization code)',
    redirect_uris: [REDIRECT_URL],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  };
  #client = undefined;
  #tokens = undefined;
  #verifier = undefined;
  #discovery = undefined;
  #state = undefined;
  /** The code of the last authorization, until handed to `finishAuth`. */
  pendingCode = undefined;
  /** Each authorization request: what it asked and what the first answer was. */
  authorizations = [];
  /** Each token response's fields and claims. */
  tokenLog = [];

  state() {
    this.#state = randomBytes(16).toString('base64url');
    return this.#state;
  }

  clientInformation() {
    return this.#client;
  }

  saveClientInformation(info) {
    this.#client = info;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
    const { access_token: accessToken, refresh_token: refreshToken, ...fields } = tokens;
    const claims = claimsOf(accessToken);
    this.tokenLog.push({ ...fields, refresh_token: refreshToken !== undefined, claims });
  }

  saveCodeVerifier(verifier) {
    this.#verifier = verifier;
  }

  codeVerifier() {
    return this.#verifier ?? fail('no code verifier saved');
  }

  saveDiscoveryState(state) {
    this.#discovery = state;
  }

  discoveryState() {
    return this.#discovery;
  }

  /** The registration as the SDK keeps it, without its secret. */
  registration() {
    const { client_secret: secret, registration_access_token: _rat, ...rest } = this.#client ?? {};
    return { ...rest, client_secret_issued: typeof secret === 'string' && secret.length > 0 };
  }

  async redirectToAuthorization(url) {
    const asked = Object.fromEntries(url.searchParams);
    const res = await fetch(url, { redirect: 'manual' });
    await res.body?.cancel();
    const location = res.headers.get('location');
    const back = location ? new URL(location, url) : undefined;
    const entry = {
      endpoint: `${url.origin}${url.pathname}`,
      scope: asked.scope ?? null,
      resource: asked.resource ?? null,
      code_challenge_method: asked.code_challenge_method ?? null,
      prompt: asked.prompt ?? null,
      status: res.status,
      to_redirect_uri: back ? `${back.origin}${back.pathname}` === REDIRECT_URL : false,
      code: Boolean(back?.searchParams.get('code')),
      state_matches: back?.searchParams.get('state') === this.#state,
      iss: back?.searchParams.get('iss') ?? null,
      error: back?.searchParams.get('error') ?? null,
    };
    this.authorizations.push(entry);
    if (!entry.to_redirect_uri || !entry.code || !entry.state_matches) {
      fail(`the authorization endpoint's first answer carries no code for us: ${res.status} ${location}`);
    }
    this.pendingCode = back.searchParams.get('code');
  }
}

/** `fetch`, logging each request (method, URL, status, a 401's or 403's challenge). */
function recordingFetch(log) {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = typeof input === 'string' ? input : input.href ?? input.url;
    const entry = { method: init?.method ?? 'GET', url: String(url), status: res.status };
    if (res.status === 401 || res.status === 403) {
      entry.www_authenticate = res.headers.get('www-authenticate');
    }
    log.push(entry);
    return res;
  };
}

/** The authorization code flow and the step-up, by the SDK, with this script as user agent. */
async function authorizationCode(serverUrl) {
  const provider = new AutoApprovedProvider();
  const requests = [];
  const transportOptions = { authProvider: provider, fetch: recordingFetch(requests) };
  const connect = async (transport) => {
    const client = new Client({ name: 'auth-diagnostics-interop', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };
  /** Hands the pending code to `transport`: the SDK exchanges it. */
  const finish = async (transport, why) => {
    const code = provider.pendingCode ?? fail(`${why}, but no authorization code is pending`);
    provider.pendingCode = undefined;
    await transport.finishAuth(code);
  };

  // The first connection meets the 401 and ends at the authorization endpoint.
  const first = new StreamableHTTPClientTransport(serverUrl, transportOptions);
  let client;
  try {
    client = await connect(first);
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    await finish(first, 'the first connection was refused');
    await first.close();
  }
  let transport = first;
  if (!client) {
    transport = new StreamableHTTPClientTransport(serverUrl, transportOptions);
    client = await connect(transport);
  }
  try {
    const { tools } = await client.listTools();
    const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    if (result.isError) fail(`add failed: ${JSON.stringify(result.content)}`);

    // The step-up: the SDK's own answer to the 403 is a new authorization request.
    let admin;
    let steppedUp = false;
    try {
      admin = await client.callTool({ name: 'admin-action', arguments: {} });
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      steppedUp = true;
      await finish(transport, 'admin-action was refused');
      admin = await client.callTool({ name: 'admin-action', arguments: {} });
    }
    if (admin.isError) fail(`admin-action failed: ${JSON.stringify(admin.content)}`);

    process.stdout.write(`${JSON.stringify({
      server: serverUrl.href,
      requests,
      registration: provider.registration(),
      authorizations: provider.authorizations,
      tokens: provider.tokenLog,
      discovered: {
        authorization_server: provider.discoveryState()?.authorizationServerUrl ?? null,
        resource: provider.discoveryState()?.resourceMetadata?.resource ?? null,
      },
      server_info: client.getServerVersion() ?? null,
      tools: tools.map((t) => t.name),
      result: { structured: result.structuredContent ?? null },
      admin: { stepped_up: steppedUp, structured: admin.structuredContent ?? null },
    })}\n`);
  } finally {
    await client.close();
  }
}

try {
  await main();
  process.exit(0);
} catch (err) {
  const cause = err?.cause ? `\ncaused by: ${err.cause?.stack ?? err.cause}` : '';
  console.error(`mcp-client: ${err?.stack ?? err}${cause}`);
  process.exit(1);
}
