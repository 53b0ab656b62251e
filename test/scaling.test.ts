// `tokenformer scaling` at toy size: the outputs and the fields the spec promises, both cost
// accountings recomputed here from the stage token counts and an independent FLOP count, zero
// growth leaving the loss where it was, the frozen variant leaving every old row untouched,
// and bad flags refused with exit 2 and one error line.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backends/cpu.ts';
import { main } from '../cli/main.ts';
import { growModel } from '../src/grow.ts';
import { initParams, paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { RowFreeze } from '../cli/scaling/freeze.ts';
import { StageRunner } from '../cli/scaling/loop.ts';
import { CPU_PRESET, sizeConfig } from '../cli/scaling/options.ts';
import { paddedVocab, tokenCorpus, validationWindows } from '../cli/scaling/tokens.ts';
import { expectUserError, runCli } from './helpers/cli.ts';

const TINY = ['--backend', 'cpu', '--layers', '1', '--hidden', '16', '--heads', '2', '--sizes', '4/4/8,8/8/16,16/16/32',
  '--steps', '6', '--fraction', '0.5', '--batch', '2', '--seq', '16', '--eval-every', '3', '--eval-windows', '4', '--seeds', '2'];

/** Training FLOPs per token, written out here from the shapes (not src/train/flops.ts). */
function flopsPerToken(L: number, C: number, T: number, V: number, s: { qkv: number; proj: number; ffn: number }): number {
  const pattention = L * (3 * s.qkv + s.proj + s.ffn) * 2 * (C + C);
  return 3 * (pattention + L * 4 * T * C + 2 * C * V);
}

describe('tokenformer scaling (tiny run, CPU reference)', () => {
  let dir: string;
  let rep: any;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tf-scaling-'));
    const r = runCli(['scaling', ...TINY, '--out', dir], { timeout: 120_000, env: { ...process.env, XDG_RUNTIME_DIR: tmpdir() } });
    expect(r.code, r.err).toBe(0);
    rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  });

  it('writes report.json, report.md and both figures with the promised fields', () => {
    for (const f of ['report.json', 'report.md', 'scaling.svg', 'scaling.png', 'curves.svg', 'curves.png']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(readFileSync(join(dir, 'scaling.png')).subarray(1, 4).toString()).toBe('PNG');
    for (const k of ['backend', 'corpus', 'tokenizer', 'wallSeconds', 'cpuSeconds', 'stageSeconds', 'load', 'options', 'protocol', 'accounting', 'headline', 'variants', 'seeds', 'histories']) {
      expect(rep, k).toHaveProperty(k);
    }
    expect(rep.cpuSeconds).toBeGreaterThan(0);
    const secs = (recs: any[]) => recs.reduce((a, r) => a + r.seconds, 0); // each rounded to 0.1 s
    expect(Math.abs(rep.stageSeconds.scratch - secs(rep.seeds.flatMap((s: any) => s.scratch)))).toBeLessThan(0.5);
    expect(Math.abs(rep.stageSeconds.paths.frozen - secs(rep.seeds.flatMap((s: any) => s.paths.frozen)))).toBeLessThan(0.5);
    expect(rep.headline).toMatchObject({ variant: 'zero', seeds: 2, goal: { lossRatio: 1.01, seriesRatio: 0.5 } });
    for (const k of ['lossRatio', 'pplRatio', 'seriesRatio', 'vsLargestRatio']) expect(rep.headline[k]).toMatchObject({ n: 2 });
    expect(rep.variants.map((v: any) => v.variant)).toEqual(['zero', 'renorm', 'random', 'frozen']);
    expect(rep.seeds.map((s: any) => s.seed)).toEqual([1234, 1235]);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    for (const s of ['Protocol', 'Headline', 'series cost ratio', 'Growth ablation', 'right after growth', 'scaling.png', 'CPU time', 'frozen path']) expect(md).toContain(s);
  });

  it('accounts costs as the paper does (cumulative series) and as the demo does', () => {
    const T = 16;
    const sizes = [{ qkv: 4, proj: 4, ffn: 8 }, { qkv: 8, proj: 8, ffn: 16 }, { qkv: 16, proj: 16, ffn: 32 }];
    const c = sizes.map((s) => flopsPerToken(1, 16, T, 256, s));
    const full = 6 * 2 * T; // tokens of every from-scratch run
    const stage = 3 * 2 * T; // tokens of a grown stage (fraction 0.5)
    expect(rep.protocol.sizes.map((s: any) => s.trainFlopsPerToken)).toEqual(c);
    const scratch = c.map((x) => x * full);
    const path = [scratch[0], scratch[0] + stage * c[1], scratch[0] + stage * (c[1] + c[2])];
    for (const seed of rep.seeds) {
      expect(seed.scratch.map((s: any) => s.flopsEnd)).toEqual(scratch);
      for (const v of ['zero', 'renorm', 'random', 'frozen']) {
        const acc = seed.accounting[v];
        expect(seed.paths[v].map((s: any) => s.flopsEnd)).toEqual(path.slice(1));
        expect(acc.final.seriesRatio).toBeCloseTo(path[2] / (scratch[0] + scratch[1] + scratch[2]), 12);
        expect(acc.final.vsLargestRatio).toBeCloseTo(path[2] / scratch[2], 12);
        expect(acc.sizes[1].seriesRatio).toBeCloseTo(path[1] / (scratch[0] + scratch[1]), 12);
        const grown = seed.paths[v][1].valEnd;
        const ref = seed.scratch[2].valEnd;
        expect(acc.final.lossRatio).toBeCloseTo(grown / ref, 12);
        expect(acc.final.pplRatio).toBeCloseTo(Math.exp(grown - ref), 12);
      }
    }
    const ratios = rep.seeds.map((s: any) => s.accounting.zero.final.lossRatio);
    expect(rep.headline.lossRatio.mean).toBeCloseTo((ratios[0] + ratios[1]) / 2, 12);
    expect(rep.headline.lossRatio.range).toBeCloseTo(Math.abs(ratios[0] - ratios[1]), 12);
  });

  it('zero growth leaves the validation loss where it was; random and renorm growth move it', () => {
    for (const seed of rep.seeds) {
      for (const st of seed.paths.zero) expect(st.valStart).toBe(st.valBeforeGrowth);
      for (const st of seed.paths.frozen) expect(st.valStart).toBe(st.valBeforeGrowth);
      expect(seed.paths.random[0].valStart).not.toBe(seed.paths.random[0].valBeforeGrowth);
      expect(seed.paths.renorm[0].valStart).not.toBe(seed.paths.renorm[0].valBeforeGrowth);
    }
  });
});

describe('frozen growth variant', () => {
  it('trains only the appended rows: old rows, embedding and norm stay bit-identical', async () => {
    const be = createCpuBackend();
    const o = { ...CPU_PRESET, layers: 1, hidden: 16, heads: 2, sizes: [{ qkv: 4, proj: 4, ffn: 8 }, { qkv: 8, proj: 6, ffn: 16 }], seq: 16 };
    const c0 = sizeConfig(o, 0, 256);
    const g = growModel(c0, initParams(c0, new Rng(3)), { qkv: 8, proj: 6, ffn: 16 }, 'zero', new Rng(4));
    const corpus = tokenCorpus(null, null);
    const rows = new Map<string, number>();
    const before = new Map(paramSpecs(c0).map((s) => [s.name, s.shape[0]]));
    for (const s of paramSpecs(g.config)) if (before.get(s.name)! < s.shape[0]) rows.set(s.name, before.get(s.name)!);
    expect(rows.size).toBe(10); // 5 Pattention layers × key and value
    const r = StageRunner.create(be, g.config, g.weights, corpus.train, validationWindows(corpus.val, 2, 16, 2), 2, 16, new Rng(5), new Set(rows.keys()));
    r.freeze = RowFreeze.create(be, g.weights, new Map(paramSpecs(g.config).map((s) => [s.name, s.shape])), rows);
    await r.runStage({ steps: 4, lr: 1e-2, minLr: 1e-3, warmup: 0, evalEvery: 0 }, 'frozen');
    const after = await r.model.toHost();
    for (const s of paramSpecs(g.config)) {
      const w0 = g.weights.get(s.name)!;
      const w1 = after.get(s.name)!;
      const nOld = rows.get(s.name);
      const d = s.shape.length > 1 ? s.shape[1] : 1;
      const old = nOld === undefined ? w0.length : nOld * d;
      expect(Array.from(w1.subarray(0, old)), s.name).toEqual(Array.from(w0.subarray(0, old)));
      if (nOld !== undefined && s.name.endsWith('key_param_tokens')) expect(w1.subarray(old).some((x, i) => x !== w0[old + i]), s.name).toBe(true);
    }
    r.dispose();
    await be.destroy();
  });
});

describe('token corpus', () => {
  const docs = mkdtempSync(join(tmpdir(), 'tf-scaling-docs-'));
  for (let i = 0; i < 20; i++) writeFileSync(join(docs, `d${String(i).padStart(2, '0')}.txt`), i === 19 ? 'held out text' : `train text ${i}`);
  const chars = { name: 'chars', size: 300, encode: (t: string) => Array.from(t, (ch) => ch.charCodeAt(0)) };

  it('tokenizes the training and held-out texts separately, vocab padded as GPT-NeoX does', () => {
    const c = tokenCorpus(docs, chars);
    expect(c.vocabSize).toBe(384);
    expect(paddedVocab(50277)).toBe(50304);
    expect(String.fromCharCode(...c.val)).toBe('held out text');
    expect(String.fromCharCode(...c.train)).not.toContain('held out');
  });

  it('refuses ids outside the vocabulary', () => {
    expect(() => tokenCorpus(docs, { ...chars, encode: () => [0, 999] })).toThrow(/id 999, outside 0 … 383/);
  });
});

describe('bad flags', () => {
  async function run(args: string[]): Promise<{ code: number; err: string }> {
    const chunks: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => { chunks.push(String(s)); return true; }) as typeof process.stderr.write;
    try {
      const code = await main(['node', 'tokenformer', 'scaling', '--out', join(tmpdir(), 'tf-scaling-bad'), ...args]);
      return { code, err: chunks.join('') };
    } finally {
      process.stderr.write = write;
    }
  }

  it.each([
    [['--sizes', '4/4'], /--sizes expects/],
    [['--sizes', '8/8/16,4/4/8'], /fewer qkv tokens/],
    [['--sizes', '8/8/16'], /at least two sizes/],
    [['--fraction', '0'], /--fraction/],
    [['--fraction', 'abc'], /--fraction expects a number/],
    [['--variants', 'zero,bogus'], /--variants/],
    [['--preset', 'tpu'], /--preset/],
    [['--moments', 'keep'], /--moments/],
    [['--steps', '2.5'], /--steps must be a positive integer/],
    [['--hidden', '30', '--heads', '4'], /multiple of --heads/],
    [['--tokenizer', 'sentencepiece'], /--tokenizer/],
  ])('%j → exit 2, one error line', async (args, re) => {
    const r = await run(args as string[]);
    expectUserError({ code: r.code, signal: null, out: '', err: r.err }, re as RegExp);
  });

  it('exit 2 from the real process too', () => {
    expectUserError(runCli(['scaling', '--sizes', 'x']), /--sizes/);
  });
});
