// Idle SSE streams for the memory benchmark.
//   node sse_hold.mjs server PORT           — answers every GET with an SSE stream that stays open
//   node sse_hold.mjs client URL N          — opens N streams, prints "ready N" once every stream
//                                             has received its first event, then holds them
import { createServer, request } from 'node:http';

const [mode, a, b] = process.argv.slice(2);
if (mode === 'server') {
  createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': open\n\n');
  }).listen(Number(a), '127.0.0.1', () => console.log('listening'));
} else {
  const url = new URL(a);
  const n = Number(b);
  let open = 0;
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'GET', agent: false,
      headers: { accept: 'text/event-stream' } }, (res) => {
      let counted = false;
      res.on('data', () => {
        if (!counted) {
          counted = true;
          open += 1;
          if (open + failed === n) console.log(`ready ${open} failed ${failed}`);
        }
      });
    });
    req.on('error', () => {
      failed += 1;
      if (open + failed === n) console.log(`ready ${open} failed ${failed}`);
    });
    req.end();
  }
}
