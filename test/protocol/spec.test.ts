/**
 * PROTOCOL.md and the code must say the same thing: every hex example decodes to the JSON printed
 * after it and encodes back to the same bytes, and the tables list exactly the kinds and error
 * codes the code knows.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage, encodeMessage, ErrorCode, FrameDecoder, isFatalCode, Kind, kindName, type Message,
} from '../../protocol/index.js';

const spec = readFileSync(new URL('../../PROTOCOL.md', import.meta.url), 'utf8');

interface Example {
  line: number;
  bytes: Buffer;
  json: Record<string, unknown>;
}

/** Every ```hex block and the ```json block that follows it. */
function examples(): Example[] {
  const found: Example[] = [];
  const fence = /```(\w+)\n([\s\S]*?)```/g;
  let pending: { line: number; bytes: Buffer } | null = null;
  for (let m = fence.exec(spec); m !== null; m = fence.exec(spec)) {
    const [, lang, body] = m as unknown as [string, string, string];
    const line = spec.slice(0, m.index).split('\n').length;
    if (lang === 'hex') {
      expect(pending, `hex block at line ${pending?.line} has no json block after it`).toBeNull();
      const hex = body.split('\n').map((l) => l.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
      expect(hex, `hex block at line ${line}`).toMatch(/^([0-9a-f]{2})+$/);
      pending = { line, bytes: Buffer.from(hex, 'hex') };
    } else if (lang === 'json' && pending) {
      found.push({ ...pending, json: JSON.parse(body) });
      pending = null;
    }
  }
  expect(pending).toBeNull();
  return found;
}

const kindByName = new Map(Object.values(Kind).map((k) => [kindName(k), k]));

function fromJson(json: Record<string, unknown>): Message {
  const kind = kindByName.get(json.kind as string);
  expect(kind, `unknown kind ${String(json.kind)}`).toBeDefined();
  return { ...json, kind } as Message;
}

function toJson(message: Message): Record<string, unknown> {
  return { ...message, kind: kindName(message.kind) };
}

/** Rows of the markdown table whose header row starts with `headerStart` ("| code | kind |"). */
function tableRows(headerStart: string): string[][] {
  const lines = spec.split('\n');
  const start = lines.findIndex((l) => l.startsWith(headerStart));
  expect(start, `table starting with ${headerStart}`).toBeGreaterThan(-1);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]?.startsWith('|'); i++) {
    rows.push((lines[i] as string).split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

describe('PROTOCOL.md', () => {
  const all = examples();

  it('shows the frames the issue asks for: a hello, a publish, a request and its response, an error', () => {
    const kinds = all.map((e) => e.json.kind);
    for (const kind of ['hello', 'publish', 'request', 'response', 'error']) expect(kinds).toContain(kind);
  });

  it.each(all.map((e) => [e.line, e] as const))('example at line %i decodes to the JSON after it', (_line, example) => {
    const messages: Message[] = [];
    const decoder = new FrameDecoder((f) => messages.push(decodeMessage(f)));
    decoder.push(example.bytes);
    decoder.end();
    expect(messages).toHaveLength(1);
    expect(toJson(messages[0] as Message)).toEqual(example.json);
    // The header's length field matches what the example's comment and layout claim.
    expect(example.bytes.readUInt32LE(4)).toBe(example.bytes.length - 16);
  });

  it.each(all.map((e) => [e.line, e] as const))('example at line %i is what the encoder writes, byte for byte', (_line, example) => {
    expect(encodeMessage(fromJson(example.json)).toString('hex')).toBe(example.bytes.toString('hex'));
  });

  it('lists exactly the message kinds the code knows, with their codes', () => {
    const rows = tableRows('| code | kind |').filter((r) => /^0x[0-9a-f]{2}$/.test(r[0] as string));
    const documented = rows.map((r) => [Number.parseInt(r[0] as string, 16), (r[1] as string).toLowerCase()]);
    const known = Object.values(Kind).map((k) => [k, kindName(k)]);
    expect(documented.sort()).toEqual(known.sort());
  });

  it('lists exactly the error codes the code knows, and which of them close the connection', () => {
    const rows = tableRows('| code | closes the connection |');
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.values(ErrorCode).sort());
    for (const [code, closes] of rows) expect(closes, code).toBe(isFatalCode(code as string) ? 'yes' : 'no');
  });

  it('states the header constants the decoder uses', () => {
    expect(spec).toContain('   0      1    magic    0xC1');
    expect(spec).toContain('16 MiB, 16777216 bytes');
  });
});
