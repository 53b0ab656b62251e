// PyTorch's view of what `tokenformer convert` writes (golden/verify_torch_outputs.py): every
// .bin loads with torch.load(weights_only=True) to the same tensors (f32 bit-exact, f16/bf16
// bit-equal to torch's .half()/.bfloat16()) and pickles as torch.save does; the GPT-NeoX folders
// load with strict=True into the official module tree (both layouts) and through the
// incremental-scaling path; a checkpoint shaped like DeepSpeed's own reads back. Needs Debian's
// python3 with torch; without it the suite skips with the reason, unless TOKENFORMER_REQUIRE
// names 'torch', where that is a failure.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { serializeSafetensors } from '../src/safetensors.ts';
import { serializeTorchBin } from '../src/torch-bin/write.ts';
import { required } from './helpers/backends.ts';
import { inPool, runCliAsync } from './helpers/cli.ts';
import { edgeValues, SMALL, writeOfficialConfig, writeWeights, type SmallModel } from './helpers/convert-fixtures.ts';

const PY = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'golden', 'verify_torch_outputs.py');
const probe = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' });
const reason = probe.error ? `${PY} not found` : probe.status !== 0 ? `${PY} has no torch` : '';
if (reason && !required('torch')) console.warn(`[skip] convert outputs under torch: ${reason}`);

const dir = mkdtempSync(join(tmpdir(), 'tf-convert-torch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function python(jobs: object[]): { status: number | null; out: string } {
  const file = join(dir, `jobs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ checks: jobs }));
  const r = spawnSync(PY, [SCRIPT, file], { encoding: 'utf8', timeout: 600_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const model = (m: SmallModel) => ({
  layers: m.layers, hidden: m.hidden, heads: m.heads, qkv: m.qkv, proj: m.proj, ffn: m.ffn, tied: m.tied, rotary_pct: 0.25, vocab: m.vocab,
});

describe.skipIf(reason !== '' && !required('torch'))('convert outputs under PyTorch', () => {
  test('torch.load, strict loads into the official modules, and the DeepSpeed-shaped way back', async () => {
    expect(reason).toBe('');
    const pipeModel: SmallModel = { ...SMALL, tied: false, pipe: 2, layers: 3 };
    const tied = writeOfficialConfig(dir, 'tied', SMALL);
    const pipe = writeOfficialConfig(dir, 'pipe', pipeModel);
    writeWeights(join(dir, 'w.safetensors'), tied.config, 21);
    writeWeights(join(dir, 'wp.safetensors'), pipe.config, 22);
    const edge = edgeValues(20000, 3);
    writeFileSync(join(dir, 'edge.safetensors'), serializeSafetensors({ edge: { shape: [edge.length], data: edge } }));
    const w = new Map([['edge', { dtype: 'F32', shape: [edge.length], data: edge }]]);
    writeFileSync(join(dir, 'zip64.bin'), serializeTorchBin(w, { forceZip64: true }));

    // a checkpoint as DeepSpeed saves it during GPT-NeoX training, for the way back
    const made = python([{ kind: 'make_deepspeed', dir: join(dir, 'ds'), ref: join(dir, 'w.safetensors'), tag: 'global_step3' }]);
    expect(made.status, made.out).toBe(0);

    const runs: Array<[string[], object]> = [];
    const bin = (src: string, out: string, dtype: string) => {
      runs.push([[src, out, ...(dtype === 'F32' ? [] : ['--dtype', dtype.toLowerCase()])],
        { kind: out.endsWith('.bin') ? 'state_dict' : 'safetensors', file: join(dir, out), ref: join(dir, src), dtype }]);
    };
    for (const d of ['F32', 'F16', 'BF16']) {
      bin('w.safetensors', `w-${d}.bin`, d);
      bin('edge.safetensors', `e-${d}.bin`, d);
      bin('edge.safetensors', `e-${d}.safetensors`, d);
    }
    const neox = (src: string, out: string, cfg: string, dtype: string, m: SmallModel) => {
      runs.push([[src, out, '--to', 'neox', '--config', cfg, ...(dtype === 'F32' ? [] : ['--dtype', dtype.toLowerCase()])],
        { kind: 'neox', dir: join(dir, out), ref: join(dir, src), dtype, model: model(m), pipe: m.pipe >= 2 }]);
    };
    neox('w.safetensors', 'n32', tied.path, 'F32', SMALL);
    neox('w.safetensors', 'n16', tied.path, 'F16', SMALL);
    neox('wp.safetensors', 'p32', pipe.path, 'F32', pipeModel);
    neox('wp.safetensors', 'pb16', pipe.path, 'BF16', pipeModel);
    runs.push([['ds', 'ds.safetensors'], { kind: 'safetensors', file: join(dir, 'ds.safetensors'), ref: join(dir, 'w.safetensors'), dtype: 'F16' }]);
    const results = await inPool(runs.map(([args]) => () => runCliAsync(['convert', ...args], { cwd: dir, timeout: 300_000 })));
    results.forEach((r, i) => expect({ args: runs[i][0], code: r.code, err: r.err }).toEqual({ args: runs[i][0], code: 0, err: '' }));

    const zip64 = { kind: 'state_dict', file: join(dir, 'zip64.bin'), ref: join(dir, 'edge.safetensors'), dtype: 'F32' };
    const checked = python([...runs.map(([, job]) => job), zip64]);
    console.log(checked.out.trim().split('\n').slice(-1)[0]);
    expect(checked.status, checked.out).toBe(0);
    expect(checked.out).toMatch(new RegExp(`^${runs.length + 1} passed, 0 failed$`, 'm'));
  }, 900_000);
});
