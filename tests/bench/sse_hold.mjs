// Idle SSE streams for the memory benchmark.
//   node sse_hold.mjs server PORT           — answers every GET with an SSE stream that stays open
//   node sse_hold.mjs client URL N          — opens N streams, prints "ready N failed M" once every
//                                             stream has received its first event (or failed),
//                                             then holds them
// Both ends hold one socket per stream: the caller raises RLIMIT_NOFILE (inherited) to fit N.
// The client keeps at most OPENING streams connecting at once, so that 10,000 streams do not
// overflow the gateway's accept queue (somaxconn) and wait for SYN retransmits.
import { createServer, request } from 'node:http';

const OPENING = 500;
const [mode, a, b] = process.argv.slice(2);
if (mode === 'server') {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': open\n\n');
  });
  server.listen({ port: Number(a), host: '127.0.0.1', backlog: 4096 }, () => console.log('listening'));
} else {
  const url = new URL(a);
  const n = Number(b);
  let started = 0;
  let open = 0;
  let failed = 0;
  const settled = () => {
    if (open + failed === n) console.log(`ready ${open} failed ${failed}`);
    else if (started < n) openOne();
  };
  const openOne = () => {
    started += 1;
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (ok) open += 1;
      else failed += 1;
      settled();
    };
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'GET', agent: false,
      headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) finish(false);
      res.once('data', () => finish(true));
    });
    req.on('error', () => finish(false));
    req.end();
  };
  for (let i = 0; i < Math.min(OPENING, n); i++) openOne();
}
