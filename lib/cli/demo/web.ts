/**
 * The HTTP service of `muxvisor demo`: a page listing the runs recorded in the home, and
 * `/healthz` for its readiness probe. Usage: node web.js <port> <home>
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const [portText = '0', home = '.'] = process.argv.slice(2);

function runs(): Array<Record<string, unknown>> {
  const dir = join(home, 'runs');
  const out: Array<Record<string, unknown>> = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, name, 'meta.json'), 'utf8')) as Record<string, unknown>);
    } catch {
      // being created
    }
  }
  return out.sort((a, b) => Number(b.openedAt ?? 0) - Number(a.openedAt ?? 0));
}

const escape = (s: unknown) => String(s ?? '').replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (req.url === '/runs.json') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(runs()));
    return;
  }
  const rows = runs().map((r) => `<tr><td>${escape(r.run)}</td><td>${escape(r.status ?? r.state)}</td><td>${escape(r.records)}</td></tr>`).join('');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    .end(`<!doctype html><title>muxvisor demo</title><h1>Runs in ${escape(home)}</h1><table><tr><th>run</th><th>status</th><th>records</th></tr>${rows}</table>`);
}).listen(Number(portText), '127.0.0.1', () => console.log(`demo-web listening on http://127.0.0.1:${portText}/`));
