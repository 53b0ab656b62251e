// The layering rules (.dependency-cruiser.cjs, run by `npm test` before vitest): the tree obeys
// them, and each rule really fires on a small planted tree that breaks it (so the check in
// test/run.sh cannot pass vacuously, e.g. on a config that no longer matches our paths).

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');

function cruise(cwd: string, dirs: string[]): { status: number | null; out: string } {
  const r = spawnSync(DEPCRUISE, [...dirs, '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err'], {
    cwd, encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('layering', () => {
  const planted = mkdtempSync(join(tmpdir(), 'tokenformer-layers-'));
  afterAll(() => rmSync(planted, { recursive: true, force: true }));

  it('the tree has no import cycle and no arrow running back up', () => {
    const r = cruise(ROOT, ['src', 'backends', 'cli', 'bin', 'bench', 'test']);
    expect(r.out).toMatch(/no dependency violations/);
    expect(r.status).toBe(0);
  }, 60_000);

  it('a planted tree breaking each rule fails, naming every rule', () => {
    const file = (p: string, text: string) => {
      mkdirSync(join(planted, p, '..'), { recursive: true });
      writeFileSync(join(planted, p), text);
    };
    file('src/a.ts', "import { b } from '../backends/b.ts';\nimport { t } from '../test/t.ts';\nexport const a = b + t;\n");
    file('src/d.ts', "import { c } from '../cli/c.ts';\nexport const d = c;\n");
    file('backends/b.ts', "import { c } from '../cli/c.ts';\nexport const b = c;\n");
    file('cli/c.ts', "import { a } from '../src/a.ts';\nexport const c = 1;\nexport const z = a;\n");
    file('test/t.ts', 'export const t = 2;\n');
    file('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }));
    const r = cruise(planted, ['src', 'backends', 'cli', 'test']);
    expect(r.status).not.toBe(0);
    for (const rule of ['no-cycles', 'library-below-backends', 'library-below-cli', 'backends-below-cli', 'no-tests-in-product']) {
      expect(r.out, rule).toContain(`error ${rule}:`);
    }
  }, 60_000);
});
