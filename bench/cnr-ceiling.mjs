// The ceiling of the CNR benchmark: a bare node:http server answering, from memory, the exact
// bytes `cnr serve` answered (status, headers, body) for each path of a JSON file.
// `node bench/cnr-ceiling.mjs PORT ANSWERS.json`, ANSWERS = {"/path": {status, headers, body: base64}}.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, file] = process.argv.slice(2);
const answers = new Map(Object.entries(JSON.parse(readFileSync(file, 'utf8'))).map(([path, a]) => [path, { ...a, body: Buffer.from(a.body, 'base64') }]));
const server = createServer((req, res) => {
  if (req.url === '/ready') return res.end('ok');
  const a = answers.get(req.url);
  if (!a) {
    res.statusCode = 404;
    return res.end();
  }
  res.writeHead(a.status, a.headers);
  res.end(a.body);
});
server.keepAliveTimeout = 72_000;
server.listen(Number(port), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
