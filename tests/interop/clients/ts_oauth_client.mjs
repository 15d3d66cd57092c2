// The official TypeScript SDK client logging in through mcpgate's front door with its own
// OAuthClientProvider, knowing nothing but the route's URL, then calling across a token refresh.
//
// usage: node ts_oauth_client.mjs URL USER CLIENT_METADATA_URL PYTHON
//   The client's id is CLIENT_METADATA_URL (a Client ID Metadata Document). Its
//   redirectToAuthorization hands the URL to the person at the browser — login_driver.py run by
//   PYTHON, signing in as USER — and finishAuth gets the code from where the browser landed.
// Prints one JSON object with what the client saw (the orchestrator asserts on it).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [url, user, metadataUrl, python] = process.argv.slice(2);
const REDIRECT = 'http://127.0.0.1:33419/callback';
const driver = fileURLToPath(new URL('./login_driver.py', import.meta.url));
const out = { logins: [], tokens_saved: 0 };

class Provider {
  constructor() {
    this.clientMetadataUrl = metadataUrl;
    this.saved = {};
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'Interop TypeScript SDK client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  state() { this.sentState = randomBytes(16).toString('base64url'); return this.sentState; }
  clientInformation() { return this.saved.client; }
  saveClientInformation(c) { this.saved.client = c; }
  tokens() { return this.saved.tokens; }
  saveTokens(t) { this.saved.tokens = t; out.tokens_saved += 1; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  redirectToAuthorization(authorizationUrl) {
    const landed = JSON.parse(execFileSync(python, [driver, authorizationUrl.href, user, REDIRECT], { encoding: 'utf8' }));
    out.logins.push({ pages: landed.pages, params: Object.keys(landed.params ?? {}).sort(), stopped: landed.stopped });
    this.landed = landed;
  }
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const text = (r) => (r.content ?? []).map((c) => c.text ?? '').join(' ');

const provider = new Provider();
const client = new Client({ name: 'interop-ts-oauth', version: '1.0.0' });
try {
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.landed?.params?.code) throw e;
    const p = provider.landed.params;
    out.state_round_trip = p.state === provider.sentState;
    out.iss = p.iss;
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    await transport.finishAuth(p.code);
    await client.connect(transport);
  }
  out.client_id = provider.saved.client?.client_id;
  const first = provider.saved.tokens.access_token;
  const c = claims(first);
  out.token = { iss: c.iss, aud: c.aud, sub: c.sub, email: c.email, scope: c.scope, client_id: c.client_id };
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  out.echo = text(await client.callTool({ name: 'echo', arguments: { text: 'hello from typescript' } }));
  // The SDK refreshes when the gateway answers 401 (it keeps no clock of its own): once past
  // the token's exp plus the gateway's leeway. Call once a second until it has.
  while (Date.now() / 1000 <= c.exp + 0.5) await new Promise((r) => setTimeout(r, 200));
  for (;;) {
    const at = Date.now() / 1000;
    out.after_expiry = text(await client.callTool({ name: 'echo', arguments: { text: 'after expiry' } }));
    if (provider.saved.tokens.access_token !== first || at > c.exp + 90) break;
    out.old_token_accepted_after_exp = Math.round(at - c.exp);
    await new Promise((r) => setTimeout(r, 1000));
  }
  out.refreshed = provider.saved.tokens.access_token !== first && out.logins.length === 1;
  await client.close();
} catch (e) {
  out.failed = `${e?.name}: ${String(e?.message ?? e).slice(0, 300)}`;
}
console.log(JSON.stringify(out));
process.exit(0);
