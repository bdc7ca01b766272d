/**
 * The layers import one way (GUIDE.md section 3): protocol/ knows nothing of lib/ or supervisor/;
 * lib/ and supervisor/ never import each other; in lib/ only transport.ts touches node:net.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

/** Every import specifier of a file, relative ones resolved to a path from the repo root. */
function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)]
    .map((m) => (m[1] ?? m[2]) as string);
  return specs.map((s) => (s.startsWith('.') ? relative(root, resolve(root, dirname(file), s)) : s));
}

const layerOf = (path: string) => path.split('/')[0];

describe('layering', () => {
  it('protocol/ imports nothing from lib/ or supervisor/', () => {
    for (const file of sources('protocol')) {
      for (const spec of imports(file)) expect(['lib', 'supervisor'], `${file} imports ${spec}`).not.toContain(layerOf(spec));
    }
  });

  it('lib/ and supervisor/ never import each other', () => {
    for (const file of sources('lib')) for (const spec of imports(file)) expect(layerOf(spec), `${file} imports ${spec}`).not.toBe('supervisor');
    for (const file of sources('supervisor')) for (const spec of imports(file)) expect(layerOf(spec), `${file} imports ${spec}`).not.toBe('lib');
  });

  it('in lib/, only transport.ts touches node:net', () => {
    for (const file of sources('lib')) {
      if (file === 'lib/transport.ts') continue;
      expect(imports(file), file).not.toContain('node:net');
    }
  });

  it('sees the imports it checks (the scanner itself works)', () => {
    expect(imports('lib/index.ts')).toContain('protocol/errors.js');
    expect(imports('protocol/messages.ts')).toContain('protocol/codec.js');
  });
});
