// A full MCP session with the official TypeScript SDK client, through the gateway.
// usage: node ts_client.mjs URL TOKEN   — prints one JSON object of what the client saw.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token] = process.argv.slice(2);
const out = { steps: [] };
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'interop-ts', version: '1.0.0' });
const text = (r) => (r.content ?? r.contents ?? r.messages ?? []).map((p) => (p.content ?? p).text ?? '').join(' ');

await client.connect(transport);
out.protocol = transport.protocolVersion ?? null;
out.steps.push('initialize');
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
out.steps.push('tools/list');
out.echo = text(await client.callTool({ name: 'echo', arguments: { text: 'hello from typescript' } }));
out.steps.push('tools/call');
out.resource = text(await client.readResource({ uri: 'notes://readme' }));
out.steps.push('resources/read');
out.prompt = text(await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } }));
out.steps.push('prompts/get');
const stamps = [];
const start = performance.now();
const counted = await client.callTool({ name: 'count', arguments: { n: 5 } }, undefined, {
  onprogress: () => stamps.push(performance.now()),
});
out.count = text(counted);
out.progress_offsets = stamps.map((s) => Math.round(s - start) / 1000);
out.count_elapsed = Math.round(performance.now() - start) / 1000;
out.steps.push('progress');
try {
  const r = await client.callTool({ name: 'write_note', arguments: { text: 'x' } });
  out.write = r.isError ? 'error' : 'ok';
} catch (e) {
  out.write = `refused: ${e.constructor.name}`;
}
await transport.terminateSession();
out.steps.push('DELETE');
await client.close();
console.log(JSON.stringify(out));
