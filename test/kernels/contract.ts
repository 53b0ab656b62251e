// The behaviour every backend shares beyond its numbers: views and disposal, transfers, the
// use-once saved state of the fused ops, and bad input (wrong shapes and dtypes, disposed
// handles, bad parameters, out-of-range ids), which must throw the one-line UserError the CPU
// backend throws, word for word: OP_SPECS (src/op-specs.ts) states each rule once, above every
// backend. On cpu each message is checked against the pattern below instead.
// Omits: device errors (each backend's own file) and the numbers (cases.ts).

import { expect, test } from 'vitest';
import type { AdamWParams, Backend, Handle, NormActParams, Shape } from '../../src/backend.ts';
import { attention, pattention } from '../../src/compose.ts';
import { UserError } from '../../src/errors.ts';
import { userError } from '../helpers/user-error.ts';

interface BadInput {
  name: string;
  /** The CPU backend's message. */
  want: RegExp;
  run<T extends Handle>(be: Backend<T>): unknown;
}

/** A value from untyped input (a config file, a caller without types): the wrong shapes of
 *  parameters that TypeScript would reject. */
function untyped<P>(json: string): P {
  return JSON.parse(json);
}

const f = <T extends Handle>(be: Backend<T>, shape: Shape): T => be.zeros(shape);
const ids = <T extends Handle>(be: Backend<T>, data: number[], shape: Shape = [data.length]): T =>
  be.uploadInt(Int32Array.from(data), shape);
const gone = <T extends Handle>(be: Backend<T>, shape: Shape): T => {
  const t = f(be, shape);
  be.dispose(t);
  return t;
};
const SOFTMAX: NormActParams = { variant: 'softmax', normN: 4 };
const ADAMW: AdamWParams = { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1, maxGradNorm: 0, gradScale: 1 };

const BAD: BadInput[] = [
  // transfers and views
  { name: 'upload with the wrong length', want: /tensor data has 5 elements, shape \[2,3\] needs 6/,
    run: (be) => be.upload(new Float32Array(5), [2, 3]) },
  { name: 'uploadInt with the wrong length', want: /tensor data has 1 elements, shape \[2\] needs 2/,
    run: (be) => be.uploadInt(Int32Array.of(1), [2]) },
  { name: 'zeros with a fractional dim', want: /zeros: dims must be integers ≥ 0, got \[2,1.5\]/,
    run: (be) => be.zeros([2, 1.5]) },
  { name: 'reshape to a different size', want: /reshape: \[2,3\] has 6 elements, not 4/,
    run: (be) => be.reshape(f(be, [2, 3]), [4]) },
  { name: 'reshape of a disposed tensor', want: /reshape: tensor \[2,3\] was already disposed/,
    run: (be) => be.reshape(gone(be, [2, 3]), [6]) },
  // shapes
  { name: 'matmul inner dims', want: /matmul: inner dims differ: a \[2,3\] · b \[4,2\]/,
    run: (be) => be.ops.matmul(f(be, [2, 3]), f(be, [4, 2]), false, false) },
  { name: 'matmul inner dims, transposed', want: /matmul: inner dims differ: a \[3,4\]ᵀ · b \[5,6\]ᵀ/,
    run: (be) => be.ops.matmul(f(be, [3, 4]), f(be, [5, 6]), true, true) },
  { name: 'matmul 1-D a', want: /matmul: a must be at least 2-D, got \[3\]/,
    run: (be) => be.ops.matmul(f(be, [3]), f(be, [3, 1]), false, false) },
  { name: 'matmul leading dims', want: /matmul: b \[3,3,2\] must be 2-D or share a's leading dims \[2\]/,
    run: (be) => be.ops.matmul(f(be, [2, 2, 3]), f(be, [3, 3, 2]), false, false) },
  { name: 'add shapes', want: /add: shapes differ: \[3,4\] vs \[5,6\]/,
    run: (be) => be.ops.add(f(be, [3, 4]), f(be, [5, 6])) },
  { name: 'normActBackward dA shape', want: /normActBackward dA: expected shape \[2,4\], got \[4,2\]/,
    run: (be) => be.ops.normActBackward(f(be, [2, 4]), f(be, [4, 2]), SOFTMAX) },
  { name: 'layerNorm weight shape', want: /layerNorm weight: expected shape \[3\], got \[2\]/,
    run: (be) => be.ops.layerNorm(f(be, [2, 3]), f(be, [2]), null, 1e-5) },
  { name: 'layerNorm bias shape', want: /layerNorm bias: expected shape \[3\], got \[4\]/,
    run: (be) => be.ops.layerNorm(f(be, [2, 3]), null, f(be, [4]), 1e-5) },
  { name: 'layerNormBackward mean shape', want: /layerNormBackward mean: expected shape \[2\], got \[3\]/,
    run: (be) => be.ops.layerNormBackward(f(be, [2, 3]), f(be, [2, 3]), f(be, [3]), f(be, [2]), null) },
  { name: 'rotary rank', want: /rotary x \[B, T, H, D\]: expected a 4-D tensor, got \[2,3\]/,
    run: (be) => be.ops.rotary(f(be, [2, 3]), { rotaryDim: 2, base: 1e4 }, false) },
  { name: 'permute0213 rank', want: /permute0213 x: expected a 4-D tensor, got \[2,3\]/,
    run: (be) => be.ops.permute0213(f(be, [2, 3])) },
  { name: 'causalSoftmax not square', want: /causalSoftmax s: expected square \[..., T, T\], got \[2,3\]/,
    run: (be) => be.ops.causalSoftmax(f(be, [2, 3]), 1) },
  { name: 'causalSoftmaxBackward dP shape', want: /causalSoftmaxBackward dP: expected shape \[1,3,3\], got \[3,3\]/,
    run: (be) => be.ops.causalSoftmaxBackward(f(be, [1, 3, 3]), f(be, [3, 3]), 1) },
  { name: 'embedding table rank', want: /embedding table \[V, C\]: expected a 2-D tensor, got \[8\]/,
    run: (be) => be.ops.embedding(ids(be, [0]), f(be, [8])) },
  { name: 'embeddingBackward dOut shape', want: /embeddingBackward dOut: expected shape \[1,2,3\], got \[2,3\]/,
    run: (be) => be.ops.embeddingBackward(ids(be, [0, 1], [1, 2]), f(be, [2, 3]), 4) },
  { name: 'crossEntropy row count', want: /crossEntropy: 2 logit rows but 1 targets \(\[1\]\)/,
    run: (be) => be.ops.crossEntropy(f(be, [2, 3]), ids(be, [0])) },
  { name: 'crossEntropyBackward lse shape', want: /crossEntropyBackward lse: expected shape \[2\], got \[3\]/,
    run: (be) => be.ops.crossEntropyBackward(f(be, [2, 3]), f(be, [3]), ids(be, [0, 1]), 1) },
  { name: 'adamw shape', want: /adamw grad: expected shape \[2\], got \[3\]/,
    run: (be) => be.ops.adamw(f(be, [2]), f(be, [3]), f(be, [2]), f(be, [2]), ADAMW, null) },
  { name: 'adamw gradNormSq not a scalar', want: /adamw gradNormSq: expected a scalar, got \[2\]/,
    run: (be) => be.ops.adamw(f(be, [2]), f(be, [2]), f(be, [2]), f(be, [2]), { ...ADAMW, maxGradNorm: 1 }, f(be, [2])) },
  { name: 'pattention d_in', want: /pattention: x \[2,3\] has d_in 3, key tokens \[4,2\] have 2/,
    run: (be) => pattention(be, f(be, [2, 3]), f(be, [4, 2]), f(be, [4, 2]), SOFTMAX) },
  { name: 'pattention n mismatch', want: /pattention: 4 key tokens but 3 value tokens/,
    run: (be) => pattention(be, f(be, [2, 3]), f(be, [4, 3]), f(be, [3, 2]), SOFTMAX) },
  { name: 'pattention key tokens rank', want: /pattention key tokens \[n, d_in\]: expected a 2-D tensor, got \[1,4,3\]/,
    run: (be) => pattention(be, f(be, [2, 3]), f(be, [1, 4, 3]), f(be, [4, 2]), SOFTMAX) },
  { name: 'attention shapes', want: /attention v: expected shape \[1,2,1,4\], got \[1,1,2,4\]/,
    run: (be) => attention(be, f(be, [1, 2, 1, 4]), f(be, [1, 2, 1, 4]), f(be, [1, 1, 2, 4])) },
  { name: 'attention rank', want: /attention q \[B, T, H, D\]: expected a 4-D tensor, got \[2,4\]/,
    run: (be) => attention(be, f(be, [2, 4]), f(be, [2, 4]), f(be, [2, 4])) },
  // dtypes
  { name: 'matmul of i32 ids', want: /matmul a: expected an f32 tensor, got i32/,
    run: (be) => be.ops.matmul(ids(be, [1, 2], [1, 2]), f(be, [2, 1]), false, false) },
  { name: 'embedding of f32 ids', want: /embedding ids: expected an i32 tensor, got f32/,
    run: (be) => be.ops.embedding(f(be, [1, 2]), f(be, [4, 2])) },
  { name: 'crossEntropy of f32 targets', want: /crossEntropy targets: expected an i32 tensor, got f32/,
    run: (be) => be.ops.crossEntropy(f(be, [2, 3]), f(be, [2])) },
  { name: 'sumSquares of i32 ids', want: /sumSquares \[1\]: expected an f32 tensor, got i32/,
    run: (be) => be.ops.sumSquares([f(be, [2]), ids(be, [1])]) },
  // disposed handles
  { name: 'add of a disposed tensor', want: /add a: tensor \[2,2\] was already disposed/,
    run: (be) => be.ops.add(gone(be, [2, 2]), f(be, [2, 2])) },
  { name: 'layerNorm of a disposed weight', want: /layerNorm weight: tensor \[3\] was already disposed/,
    run: (be) => be.ops.layerNorm(f(be, [2, 3]), gone(be, [3]), null, 1e-5) },
  { name: 'pattention of disposed value tokens', want: /pattention v: tensor \[4,2\] was already disposed/,
    run: (be) => pattention(be, f(be, [2, 3]), f(be, [4, 3]), gone(be, [4, 2]), SOFTMAX) },
  // parameters
  { name: 'normAct unknown variant', want: /normAct: unknown norm activation 'relu'/,
    run: (be) => be.ops.normAct(f(be, [2, 2]), untyped<NormActParams>('{"variant":"relu","normN":2}')) },
  { name: 'normAct normN ≤ 0', want: /normAct: normN must be > 0, got 0/,
    run: (be) => be.ops.normAct(f(be, [2, 2]), { variant: 'softmax', normN: 0 }) },
  { name: 'pattention normN NaN', want: /pattention: normN must be > 0, got NaN/,
    run: (be) => pattention(be, f(be, [2, 3]), f(be, [4, 3]), f(be, [4, 2]), { variant: 'softmax', normN: NaN }) },
  { name: 'layerNorm eps < 0', want: /layerNorm: eps must be ≥ 0, got -1/,
    run: (be) => be.ops.layerNorm(f(be, [2, 3]), null, null, -1) },
  { name: 'rotary odd rotaryDim', want: /rotary: rotaryDim must be even and in \[0, 4\], got 3/,
    run: (be) => be.ops.rotary(f(be, [1, 2, 1, 4]), { rotaryDim: 3, base: 1e4 }, false) },
  { name: 'rotary rotaryDim > D', want: /rotary: rotaryDim must be even and in \[0, 4\], got 6/,
    run: (be) => be.ops.rotary(f(be, [1, 2, 1, 4]), { rotaryDim: 6, base: 1e4 }, false) },
  { name: 'rotary base ≤ 0', want: /rotary: base must be > 0, got 0/,
    run: (be) => be.ops.rotary(f(be, [1, 2, 1, 4]), { rotaryDim: 2, base: 0 }, false) },
  { name: 'rotary fractional offset', want: /rotary: offset must be an integer ≥ 0, got 1.5/,
    run: (be) => be.ops.rotary(f(be, [1, 2, 1, 4]), { rotaryDim: 2, base: 1e4, offset: 1.5 }, false) },
  { name: 'embeddingBackward vocab 0', want: /embeddingBackward: vocab must be a positive integer, got 0/,
    run: (be) => be.ops.embeddingBackward(ids(be, [0], [1, 1]), f(be, [1, 1, 2]), 0) },
  { name: 'adamw step 0', want: /adamw: step must be an integer ≥ 1, got 0/,
    run: (be) => be.ops.adamw(f(be, [2]), f(be, [2]), f(be, [2]), f(be, [2]), { ...ADAMW, step: 0 }, null) },
  { name: 'adamw clipping without gradNormSq', want: /adamw: gradNormSq is required when maxGradNorm > 0/,
    run: (be) => be.ops.adamw(f(be, [2]), f(be, [2]), f(be, [2]), f(be, [2]), { ...ADAMW, maxGradNorm: 1 }, null) },
  { name: 'adamw aliased param and m', want: /adamw: param, grad, m and v must be distinct tensors/,
    run: (be) => {
      const w = f(be, [2]);
      return be.ops.adamw(w, f(be, [2]), w, f(be, [2]), ADAMW, null);
    } },
  // ids out of range
  { name: 'embedding id out of range', want: /token id 4 at position 1 is out of range \[0, 4\)/,
    run: (be) => be.ops.embedding(ids(be, [0, 4], [1, 2]), f(be, [4, 2])) },
  { name: 'embedding negative id', want: /token id -1 at position 0 is out of range \[0, 4\)/,
    run: (be) => be.ops.embedding(ids(be, [-1], [1, 1]), f(be, [4, 2])) },
  { name: 'embeddingBackward id ≥ vocab', want: /token id 5 at position 0 is out of range \[0, 4\)/,
    run: (be) => be.ops.embeddingBackward(ids(be, [5], [1, 1]), f(be, [1, 1, 2]), 4) },
  { name: 'crossEntropy target out of range', want: /target 3 at position 1 is out of range \[0, 3\)/,
    run: (be) => be.ops.crossEntropy(f(be, [2, 3]), ids(be, [0, 3])) },
  { name: 'crossEntropyBackward target out of range', want: /target -2 at position 0 is out of range \[0, 3\)/,
    run: (be) => be.ops.crossEntropyBackward(f(be, [2, 3]), f(be, [2]), ids(be, [-2, 0]), 1) },
  // the fused ops' saved state
  { name: 'pattention backward with the wrong dOut shape', want: /pattentionBackward dOut: expected shape \[2,2\], got \[2,3\]/,
    run: (be) => pattention(be, f(be, [2, 3]), f(be, [4, 3]), f(be, [4, 2]), SOFTMAX).saved.backward(f(be, [2, 3])) },
  { name: 'pattention backward twice', want: /pattentionBackward: its saved state was already used/,
    run: (be) => {
      const r = pattention(be, f(be, [2, 3]), f(be, [4, 3]), f(be, [4, 2]), SOFTMAX);
      r.saved.backward(f(be, [2, 2]));
      return r.saved.backward(f(be, [2, 2]));
    } },
  { name: 'attention backward after release', want: /attentionBackward: its saved state was already used/,
    run: (be) => {
      const r = attention(be, f(be, [1, 3, 2, 4]), f(be, [1, 3, 2, 4]), f(be, [1, 3, 2, 4]));
      r.saved.release();
      r.saved.release(); // a second release is a no-op
      return r.saved.backward(f(be, [1, 3, 2, 4]));
    } },
  { name: 'attention backward after an input was disposed', want: /attentionBackward input 1: tensor \[1,3,2,4\] was already disposed/,
    run: (be) => {
      const k = f(be, [1, 3, 2, 4]);
      const r = attention(be, f(be, [1, 3, 2, 4]), k, f(be, [1, 3, 2, 4]));
      be.dispose(k);
      return r.saved.backward(f(be, [1, 3, 2, 4]));
    } },
];

/** The contract tests on the backend `get` returns when they run; `reference` (the CPU
 *  backend) gives the messages to match, or null when the backend under test is the CPU
 *  backend itself (then the patterns above are the reference). */
export function defineContract<T extends Handle, R extends Handle>(get: () => Backend<T>, reference: Backend<R> | null): void {
  test.each(BAD.map((c) => [c.name, c] as const))('bad input: %s → the CPU backend\'s UserError', (_n, c) => {
    const be = get();
    const got = userError(() => c.run(be));
    if (reference) expect(got).toBe(userError(() => c.run(reference)));
    expect(got).toMatch(c.want);
  });

  test('read of a disposed tensor rejects with the CPU backend\'s UserError', async () => {
    const message = async <U extends Handle>(b: Backend<U>): Promise<string> => {
      const err: unknown = await b.read(gone(b, [2])).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      return String(err);
    };
    const got = await message(get());
    if (reference) expect(got).toBe(await message(reference));
    expect(got).toMatch(/read: tensor \[2\] was already disposed/);
  });

  test('reshape views share storage; storage lives until its last handle is disposed', async () => {
    const be = get();
    const t = be.upload(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
    const v = be.reshape(t, [3, 2]);
    expect(v.shape).toEqual([3, 2]);
    be.dispose(t);
    const y = be.ops.add(v, v);
    expect(Array.from(await be.read(y))).toEqual([2, 4, 6, 8, 10, 12]);
    expect(Array.from(await be.read(v))).toEqual([1, 2, 3, 4, 5, 6]);
    be.dispose(v);
    expect(() => be.ops.add(v, v)).toThrow(UserError);
  });

  test('a tensor disposed right after use still feeds the kernels launched before', async () => {
    const be = get();
    const x = be.upload(Float32Array.of(1, -2, 3), [3]);
    const y = be.ops.add(x, x);
    be.dispose(x);
    const z = be.ops.add(y, y);
    be.dispose(y);
    expect(Array.from(await be.read(z))).toEqual([4, -8, 12]);
  });

  test('zeros read as zeros; uploadInt reads back as f32; upload copies its input', async () => {
    const be = get();
    expect(Array.from(await be.read(be.zeros([2, 2])))).toEqual([0, 0, 0, 0]);
    const back = await be.read(be.uploadInt(Int32Array.of(3, 0, 7, -1), [2, 2]));
    expect(back).toBeInstanceOf(Float32Array);
    expect(Array.from(back)).toEqual([3, 0, 7, -1]);
    const src = Float32Array.of(1, 2);
    const t = be.upload(src, [2]);
    src[0] = 9;
    expect(Array.from(await be.read(t))).toEqual([1, 2]);
  });

  test('adamw updates param, m and v in place and returns nothing', async () => {
    const be = get();
    const [p, g, m, v] = [[1, -2], [0.5, 0.25], [0, 0], [0, 0]].map((d) => be.upload(Float32Array.from(d), [2]));
    expect(be.ops.adamw(p, g, m, v, { ...ADAMW, lr: 0.1 }, null)).toBeUndefined();
    // step 1 from zero moments: m = 0.1·g, v = 0.1·g², update = lr·m̂/(√v̂ + eps) = lr·sign(g)
    const mv = await be.read(m), pv = await be.read(p);
    expect(mv[0]).toBeCloseTo(0.05, 6);
    expect(mv[1]).toBeCloseTo(0.025, 6);
    expect(pv[0]).toBeCloseTo(0.9, 5);
    expect(pv[1]).toBeCloseTo(-2.1, 5);
  });
}
