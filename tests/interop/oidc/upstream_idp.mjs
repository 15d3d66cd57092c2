// The upstream identity provider of the login scenarios, as Entra ID or Google Workspace behave
// toward mcpgate: an OpenID Provider (oidc-provider) with NO client registration — mcpgate is
// its one confidential client, registered by an administrator — on loopback.
//
// usage: node upstream_idp.mjs PORT GATEWAY_CALLBACK_URL
//   - issuer http://127.0.0.1:PORT, discovery, RS256 ID tokens, RFC 9207 `iss` on the callback
//   - client `mcpgate` / `upstream-secret` (client_secret_basic), redirect_uris
//     [GATEWAY_CALLBACK_URL], grants authorization_code + refresh_token
//   - accounts (type the name at the login form, any password):
//       alice   alice@example.com    groups [mcp-admins]
//       bob     bob@example.com      groups [staff]
//       mallory mallory@evil.example groups [mcp-admins]
//       carol   carol@example.com    no groups (the IdP's own check disables her)
//     ID tokens carry email, email_verified, name and groups (as Entra and Google put them there)
//   - POST /__disable?sub=NAME: the account is disabled — findAccount no longer finds it, so a
//     refresh grant answers invalid_grant, and a sign-in (a new one, or with the session the
//     browser still has) ends with access_denied at the client's redirect URI, as Entra ID
//     refuses a disabled user; POST /__enable?sub=NAME undoes it
//   - the login and consent pages are oidc-provider's devInteractions forms (plain HTML forms:
//     a browser or an HTTP client can fill them in)
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors, interactionPolicy } from 'oidc-provider';

const port = Number(process.argv[2]);
const callback = process.argv[3];
const issuer = `http://127.0.0.1:${port}`;

const ACCOUNTS = {
  alice: { email: 'alice@example.com', name: 'Alice Admin', groups: ['mcp-admins'] },
  bob: { email: 'bob@example.com', name: 'Bob Builder', groups: ['staff'] },
  mallory: { email: 'mallory@evil.example', name: 'Mallory', groups: ['mcp-admins'] },
  carol: { email: 'carol@example.com', name: 'Carol', groups: [] },
};
const disabled = new Set();
const counts = { refresh_ok: 0, refresh_refused: 0, token_ok: 0 };

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

// Checked before any prompt: a signed-in session whose account is disabled (or unknown — the
// login form takes any name) ends the authorization with access_denied.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check('account_disabled', 'the account is disabled', (ctx) => {
  const sub = ctx.oidc.session.accountId;
  if (sub && (!ACCOUNTS[sub] || disabled.has(sub))) throw new errors.AccessDenied('the account is disabled');
  return interactionPolicy.Check.NO_NEED_TO_PROMPT;
}), 0);

const provider = new Provider(issuer, {
  interactions: { policy },
  clients: [
    {
      client_id: 'mcpgate',
      client_secret: 'upstream-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [callback],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
  ],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Entra and Google put the scopes' claims in the ID token of a code flow too.
  conformIdTokenClaims: false,
  jwks: { keys: [signingKey()] },
  findAccount: async (_ctx, sub) => {
    const who = ACCOUNTS[sub];
    if (!who || disabled.has(sub)) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, email: who.email, email_verified: true, name: who.name, groups: who.groups }),
    };
  },
  // Like an Entra app whose offline_access the tenant admin consented to: the registered
  // client gets a refresh token with every code (oidc-provider's default wants offline_access
  // and prompt=consent, as Google wants access_type=offline and prompt=consent).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    registration: { enabled: false },
    devInteractions: { enabled: true },
  },
  ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
});
provider.proxy = false;
provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params.grant_type === 'refresh_token') counts.refresh_ok += 1;
  else counts.token_ok += 1;
});
provider.on('grant.error', (ctx, err) => {
  if (ctx.oidc.params?.grant_type === 'refresh_token') counts.refresh_refused += 1;
  console.log(`grant error: ${err.error} (${err.error_description})`);
});
provider.on('server_error', (_ctx, err) => console.log(`server_error: ${err.stack}`));

const handler = provider.callback();

createServer((req, res) => {
  const url = new URL(req.url, issuer);
  const admin = { '/__disable': (s) => disabled.add(s), '/__enable': (s) => disabled.delete(s) }[url.pathname];
  if (admin && req.method === 'POST') {
    const sub = url.searchParams.get('sub');
    admin(sub);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sub, disabled: disabled.has(sub) }));
    return;
  }
  if (url.pathname === '/__counts') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(counts));
    return;
  }
  handler(req, res);
}).listen(port, '127.0.0.1', () => {
  console.log(`upstream IdP (no client registration) listening on ${issuer}`);
});
