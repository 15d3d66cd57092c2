// An MCP upstream that answers tools/list in ways a filter may fail to read — for the interop
// scenario where the official TypeScript SDK client lists tools through the gateway.
// usage: node odd_lists.mjs PORT  — serves /<variant>/mcp, variants: bom, utf8, array, gzip, ssebom.
// Every answer lists `echo` and the hidden `write_note` (the gateway's rule needs mcp:write).
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';

const port = Number(process.argv[2]);
const tools = (id) => JSON.stringify({
  jsonrpc: '2.0', id, result: { tools: [
    { name: 'echo', inputSchema: { type: 'object' } },
    { name: 'write_note', inputSchema: { type: 'object' } },
  ] },
});
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function listAnswer(variant, id, res) {
  const body = Buffer.from(tools(id));
  switch (variant) {
    case 'bom': return send(res, 'application/json', Buffer.concat([BOM, body]));
    case 'utf8': { const b = Buffer.from(body); b[b.indexOf('echo')] = 0xff; return send(res, 'application/json', b); }
    case 'array': return send(res, 'application/json', Buffer.concat([Buffer.from('['), body, Buffer.from(']')]));
    case 'gzip': return send(res, 'application/json', gzipSync(body), { 'content-encoding': 'gzip' });
    case 'ssebom': return send(res, 'text/event-stream', Buffer.concat([BOM, Buffer.from(`event: message\ndata: ${body}\n\n`)]));
    default: return send(res, 'application/json', body);
  }
}

function send(res, type, body, extra = {}) {
  res.writeHead(200, { 'content-type': type, 'content-length': body.length, ...extra });
  res.end(body);
}

createServer((req, res) => {
  const variant = req.url.split('/')[1];
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST') { res.writeHead(405).end(); return; }
    const msg = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    if (msg.id === undefined) { res.writeHead(202).end(); return; }
    if (msg.method === 'initialize') {
      return send(res, 'application/json', Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {
        protocolVersion: msg.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'odd-lists', version: '1' },
      } })));
    }
    if (msg.method === 'tools/list') return listAnswer(variant, msg.id, res);
    send(res, 'application/json', Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} })));
  });
}).listen(port, '127.0.0.1');
