// Benchmark peers that need crypto: writes a JWKS (RS256 + ES256 keys) and N tokens per
// algorithm for a resource, then serves RFC 7662 introspection (every token active) until killed.
// usage: node peers.mjs OUT_DIR ISSUER AUDIENCE COUNT INTROSPECTION_PORT UNIQUE_COUNT
// (also writes UNIQUE_COUNT distinct ES256 tokens to tokens-unique.txt for the cache-miss run)
import { generateKeyPairSync, sign, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [outDir, issuer, resource, count, port, unique] = process.argv.slice(2);
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keys = [
  { kid: 'bench-rs', alg: 'RS256', pair: rsa, sign: (d) => sign('sha256', d, rsa.privateKey) },
  { kid: 'bench-es', alg: 'ES256', pair: ec, sign: (d) => sign('sha256', d, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }) },
];
writeFileSync(`${outDir}/jwks.json`, JSON.stringify({
  keys: keys.map((k) => ({ ...k.pair.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })),
}));
const now = Math.floor(Date.now() / 1000);
const mint = (k, n, prefix) => {
  const tokens = [];
  for (let i = 0; i < n; i++) {
    const header = b64({ alg: k.alg, typ: 'at+jwt', kid: k.kid });
    const claims = b64({ iss: issuer, sub: `${prefix}-${i}`, aud: resource, exp: now + 7200, iat: now, scope: 'mcp:read mcp:write', client_id: 'bench', jti: randomUUID() });
    const input = `${header}.${claims}`;
    tokens.push(`${input}.${k.sign(Buffer.from(input)).toString('base64url')}`);
  }
  return tokens.join('\n') + '\n';
};
for (const k of keys) {
  writeFileSync(`${outDir}/tokens-${k.alg}.txt`, mint(k, Number(count), 'user'));
}
writeFileSync(`${outDir}/tokens-unique.txt`, mint(keys[1], Number(unique || 0), 'unique'));
createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ active: true, sub: 'svc', aud: resource, scope: 'mcp:read mcp:write', exp: now + 7200, client_id: 'bench' }));
  });
}).listen(Number(port), '127.0.0.1', () => console.log('ready'));
