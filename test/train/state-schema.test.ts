// state.json is validated, not trusted: a fast-check property over every field (top level,
// config, args, a history point) and every kind of bad value (huge, zero, negative, fractional,
// wrong type, NaN, missing): refused with one UserError line, or accepted and kept exactly.
// In-process (validateState), so hundreds of cases take well under a second.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { validateState } from '../../src/train/state-schema.ts';
import { DEFAULT_TRAIN_ARGS } from '../../src/train/args.ts';
import { FIXTURE_CONFIG, fixtureRng } from './fixtures/ckpt-state.ts';

const PATH = '/ck/state.json';

function goodState(): Record<string, unknown> {
  return {
    version: 1, step: 3, dataRng: fixtureRng(3), config: structuredClone(FIXTURE_CONFIG), args: { ...DEFAULT_TRAIN_ARGS },
    history: [
      { step: 0, tokens: 0, flops: 0, lr: 0, valLoss: 5.5 },
      { step: 1, tokens: 32, flops: 1e6, lr: 1e-3, loss: 5.4, gradNorm: 1.2 },
      { step: 3, tokens: 96, flops: 3e6, lr: 2e-3, loss: 5.1, gradNorm: 0.8, valLoss: 5.2 },
    ],
    optStep: 3, offsetTokens: 0, offsetFlops: 0,
  };
}

type Kind = 'version' | 'rng' | 'size' | 'pos' | 'count' | 'int' | 'real>0' | 'real>=0' | 'real' | 'fraction'
  | 'bool' | 'choice' | 'object' | 'array' | 'str|null' | 'pos|null';

/** Field path, kind, required. */
const FIELDS: [path: (string | number)[], kind: Kind, required: boolean][] = [
  [['version'], 'version', true], [['step'], 'count', true], [['dataRng'], 'rng', true],
  ...(['numLayers', 'hiddenSize', 'numHeads', 'qkvSlots', 'projSlots', 'ffnSlots', 'maxPositions', 'vocabSize'] as const)
    .map((k): [string[], Kind, boolean] => [['config', k], 'size', true]),
  [['config', 'rotaryPct'], 'real>0', true], [['config', 'rotaryBase'], 'real>0', true], [['config', 'eps'], 'real>0', true],
  [['config', 'variant'], 'choice', true], [['config', 'tied'], 'bool', true], [['config', 'normSlots'], 'object', true],
  [['config', 'layerSlots'], 'object', false],
  ...(['steps', 'batch', 'seq', 'accum', 'evalBatches'] as const).map((k): [string[], Kind, boolean] => [['args', k], 'pos', true]),
  [['args', 'evalEvery'], 'count', true], [['args', 'saveEvery'], 'count', true], [['args', 'seed'], 'int', true],
  [['args', 'lr'], 'real>=0', true], [['args', 'minLr'], 'real>=0', true], [['args', 'warmup'], 'fraction', true],
  [['args', 'decayIters'], 'pos|null', true], [['args', 'data'], 'str|null', true],
  [['history'], 'array', true], [['history', 1, 'step'], 'count', true], [['history', 1, 'tokens'], 'real>=0', true],
  [['history', 1, 'flops'], 'real>=0', true], [['history', 1, 'lr'], 'real>=0', true], [['history', 1, 'loss'], 'real', false],
  [['history', 1, 'gradNorm'], 'real>=0', false], [['history', 1, 'valLoss'], 'real', false],
  [['optStep'], 'count', false], [['offsetTokens'], 'real>=0', false], [['offsetFlops'], 'real>=0', false],
];

const MISSING = Symbol('missing');
const ALL: Kind[] = ['version', 'rng', 'size', 'pos', 'count', 'int', 'real>0', 'real>=0', 'real', 'fraction', 'bool', 'choice', 'object', 'array', 'str|null', 'pos|null'];
const but = (...ok: Kind[]) => ALL.filter((k) => !ok.includes(k));
const NUMERIC: Kind[] = ['size', 'pos', 'count', 'int', 'real>0', 'real>=0', 'real', 'fraction', 'pos|null'];
/** Values, and the kinds for which each can never be valid. */
const VALUES: [label: string, v: unknown, bad: Kind[]][] = [
  ['huge', 1e9, but('pos', 'count', 'int', 'real>0', 'real>=0', 'real', 'pos|null')],
  ['absurd', 1e30, but('real>0', 'real>=0', 'real')],
  ['above 2^53', 2 ** 60, but('real>0', 'real>=0', 'real')],
  ['zero', 0, but('count', 'int', 'real>=0', 'real', 'fraction')],
  ['negative', -5, but('int', 'real')],
  ['fraction', 2.5, but('real>0', 'real>=0', 'real')],
  ['string', '8', but('str|null')], ['boolean', true, but('bool')], ['array', [8], but('array')],
  ['object', { a: 1 }, but('object')], ['NaN', NaN, ALL], ['Infinity', Infinity, ALL],
  ['null', null, but('str|null', 'pos|null')],
  ['valid small', 4, but(...NUMERIC.filter((k) => k !== 'fraction'))],
  ['valid fraction', 0.5, but('real>0', 'real>=0', 'real', 'fraction')],
  ['missing', MISSING, []],
];

function setAt(o: Record<string, unknown>, path: (string | number)[], v: unknown): void {
  let cur = o as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (v === MISSING) delete cur[last];
  else cur[last] = v;
}

function getAt(o: unknown, path: (string | number)[]): unknown {
  return path.reduce((cur, k) => (cur as Record<string | number, unknown>)[k], o);
}

/** The one-line UserError message, or null when validateState accepts. */
function refusal(raw: unknown): string | null {
  try {
    validateState(raw, PATH);
    return null;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg).not.toMatch(/\n/);
    expect(msg.startsWith(`${PATH}: `), msg).toBe(true);
    expect(msg.length).toBeLessThan(400);
    return msg;
  }
}

describe('state.json schema', () => {
  it('accepts a good state, and the fixture state the checkpoint tests use', () => {
    expect(refusal(goodState())).toBeNull();
  });

  test.prop([fc.constantFrom(...FIELDS), fc.constantFrom(...VALUES)], { numRuns: 500 })(
    'every field × every kind of bad value: one UserError line, or accepted and kept', ([path, kind, required], [label, v, bad]) => {
      const raw = goodState();
      setAt(raw, path, v);
      const msg = refusal(raw);
      const must = bad.includes(kind) || (v === MISSING && required);
      if (must) expect(msg, `${path.join('.')} = ${label} was accepted`).not.toBeNull();
      if (msg === null && v !== MISSING) expect(getAt(raw, path)).toBe(v); // accepted as given, never coerced
    },
  );

  it('the red-team cases: each refused with a line that says what is wrong', () => {
    const cases: [(s: Record<string, unknown>) => void, RegExp][] = [
      [(s) => (s.history = null), /history must be an array, got null/],
      [(s) => delete (s.config as Record<string, unknown>).normSlots, /missing tokenformer_norm_slots/],
      [(s) => (s.step = -5), /step must be an integer ≥ 0, got -5/],
      [(s) => ((s.config as Record<string, unknown>).normSlots = { 'sequential.2.mlp': 1e9 }), /exceeds the limit of 1048576 tokens per layer/],
      [(s) => ((s.config as Record<string, unknown>).tied = 'no'), /must be true or false, got "no"/],
      [(s) => (((s.history as unknown[])[2] as Record<string, unknown>).valLoss = null), /history\[2\]\.valLoss must be a finite number, got null/],
      [(s) => (((s.history as unknown[])[2] as Record<string, unknown>).step = 9), /history\[2\]\.step 9 is out of order/],
      [(s) => (((s.history as unknown[])[1] as Record<string, unknown>).step = 0), /history\[1\]\.step 0 is out of order/],
      [(s) => ((s.args as Record<string, unknown>).lr = -1), /args .*learning rates need 0 ≤ min_lr ≤ lr/],
      [(s) => ((s.args as Record<string, unknown>).batch = 0), /args .*--batch must be a positive integer, got 0/],
      [(s) => (s.dataRng = [1, 0, 0, 0, 0, 0, 0]), /dataRng: rng state is all zero/],
      [(s) => (s.extra = 1), /unknown field "extra"/],
      [(s) => (s.version = 2), /version must be 1, got 2/],
    ];
    for (const [mutate, re] of cases) {
      const s = goodState();
      mutate(s);
      expect(refusal(s)).toMatch(re);
    }
    expect(refusal([1, 2])).toMatch(/must be a JSON object/);
  });
});
