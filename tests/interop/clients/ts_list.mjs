// The official TypeScript SDK client lists tools through the gateway.
// usage: node ts_list.mjs URL TOKEN  — prints {"tools": [...]} or {"error": "..."}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'interop-ts-list', version: '1.0.0' });
let out;
try {
  await client.connect(transport);
  out = { tools: (await client.listTools()).tools.map((t) => t.name).sort() };
} catch (e) {
  out = { error: `${e.constructor.name}: ${e.message}`.slice(0, 300) };
}
console.log(JSON.stringify(out));
await client.close().catch(() => {});
process.exit(0);
