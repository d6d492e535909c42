// A loopback proxy that adds `Authorization: Bearer $MCP_TOKEN` to every request it passes
// to TARGET (an MCP server's origin, e.g. http://127.0.0.1:3001), so the conformance suite,
// which sends no token, can test a server that needs one.
//
//   MCP_TOKEN=… node proxy.mjs http://127.0.0.1:3001
//   → prints {"url":"http://127.0.0.1:PORT"} once listening, then passes requests on.
//
// Bodies stream both ways (SSE answers arrive event by event). The `Host` a client sends for
// this proxy (localhost:PORT or 127.0.0.1:PORT) becomes TARGET's authority, as a client of
// TARGET would send it; any other `Host` is passed on as sent, so the server's own guard
// against DNS rebinding still sees it. A `Authorization` header of the client's is replaced.
import http from 'node:http';

const target = new URL(process.argv[2] ?? '');
const token = process.env.MCP_TOKEN;
if (!token) {
  console.error('MCP_TOKEN is required');
  process.exit(2);
}

let own = [];
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  if (!headers.host || own.includes(headers.host.toLowerCase())) headers.host = target.host;
  const upstream = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders();
      answer.pipe(res);
    },
  );
  upstream.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy: ${e.message}`);
  });
  // A client that goes away (an SSE stream cancelled) ends the upstream request too.
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  own = [`localhost:${port}`, `127.0.0.1:${port}`];
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` }));
});
