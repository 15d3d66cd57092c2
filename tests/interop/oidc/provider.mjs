// A real OpenID Provider (oidc-provider, certified) for the interop tests, on loopback.
//
// usage: node provider.mjs PORT RESOURCE_BASE
//   - issuer http://127.0.0.1:PORT
//   - RFC 8707 resource indicators: a token's `aud` is the requested resource; resources whose
//     path starts with /opaque/ get opaque tokens (RFC 7662 introspection), /short/ get 2-second
//     tokens, everything else RS256 JWT access tokens (RFC 9068).
//   - clients: `interop-cc` (client_credentials), `interop-web` (authorization code + PKCE, public),
//     `mcpgate` (the gateway, for introspection).
//   - POST /__rotate: a new signing key becomes current; the old one stays published.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const resourceBase = process.argv[3];
const issuer = `http://127.0.0.1:${port}`;
const SCOPES = ['openid', 'mcp:read', 'mcp:write', 'mcp:admin'];

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = [newKey()];

function build() {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'interop-cc',
        client_secret: 'interop-cc-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: 'interop-web',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
      {
        client_id: 'mcpgate',
        client_secret: 'mcpgate-introspection-secret',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    scopes: SCOPES,
    jwks: { keys },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.com`, email_verified: true }),
    }),
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? resourceBase,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          const path = new URL(resource).pathname;
          return {
            scope: 'mcp:read mcp:write mcp:admin',
            audience: resource,
            accessTokenTTL: path.startsWith('/short/') ? 2 : 300,
            accessTokenFormat: path.startsWith('/opaque/') ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  return provider;
}

let handler = build().callback();

createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__rotate') {
    keys = [newKey(), ...keys];
    handler = build().callback();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  handler(req, res);
}).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
