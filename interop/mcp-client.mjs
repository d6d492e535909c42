// An MCP client made of the official TypeScript SDK (npm `@modelcontextprotocol/sdk`, pinned
// by package-lock.json), for tests/mcp.rs: it finds the authorization server of a protected
// MCP server the way the MCP authorization spec says and calls a tool.
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
// On success it prints one JSON line (what it found; never the token itself) and exits 0.
// On any failure it prints the reason to stderr and exits 1.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
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
  const target = process.argv[2] ?? fail('usage: node mcp-client.mjs http://HOST:PORT/mcp');
  const serverUrl = new URL(target);

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

try {
  await main();
  process.exit(0);
} catch (err) {
  const cause = err?.cause ? `\ncaused by: ${err.cause?.stack ?? err.cause}` : '';
  console.error(`mcp-client: ${err?.stack ?? err}${cause}`);
  process.exit(1);
}
