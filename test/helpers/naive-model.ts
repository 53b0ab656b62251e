// An independent, naive float64 forward of a TokenFormer (logits and loss) written from the
// paper and spec/model.md, for tests that check the model's plumbing (√n of each layer,
// rotary base, layer order) against something that shares no code with src/.
// Omits: backward, the softmax Θ variant's stability tricks (tests use small scores), speed.
//
// Shapes: B = batch, T = time, C = hidden, H = heads, D = C/H, rd = rotary dims, V = vocab.
//   h = LN₀(x);  q, k, v = Patt(h);  rotary(q, k) on the first rd dims (NeoX half layout)
//   x ← x + Patt_proj(causal softmax(q·kᵀ/√D)·v);  x ← x + Patt_ffn(LN₀(x))
//   logits = (LN(x)·w + b)·Eᵀ (tied) or ·Wᵀ (untied)

import type { ModelConfig } from '../../src/config.ts';

/** erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), enough for 1e-4 comparisons. */
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - poly * Math.exp(-a * a));
}

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

type Mat = number[][]; // rows of numbers

/** The options a test may override: the n inside √n of a layer, the rotary base. */
export interface NaiveOptions {
  /** prefix → normalization count; default: the layer's token count (its key rows). */
  normN?: (prefix: string, n: number) => number;
  rotaryBase?: number;
}

function rowsOf(w: Float32Array, cols: number): Mat {
  const out: Mat = [];
  for (let i = 0; i < w.length / cols; i++) out.push(Array.from(w.subarray(i * cols, i * cols + cols)));
  return out;
}

function ln0(x: number[], eps: number): number[] {
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length;
  return x.map((xi) => (xi - m) / Math.sqrt(v + eps));
}

/** Θ(x·Kᵀ)·V for one row x, with the variant's Θ and √normN. */
export function naivePattentionRow(x: number[], K: Mat, V: Mat, variant: ModelConfig['variant'], normN: number): number[] {
  const s = K.map((k) => k.reduce((a, kj, j) => a + kj * x[j], 0));
  const norm = (r: number[]) => Math.sqrt(r.reduce((a, b) => a + b * b, 0));
  let th: number[];
  if (variant === 'l2_norm_gelu') th = s.map((si) => gelu((si / norm(s)) * Math.sqrt(normN)));
  else if (variant === 'gelu_l2_norm') {
    const g = s.map(gelu);
    th = g.map((gi) => (gi / norm(g)) * Math.sqrt(normN));
  } else {
    const e = s.map(Math.exp), z = e.reduce((a, b) => a + b, 0);
    th = e.map((ei) => (normN * ei) / z);
  }
  const out = new Array<number>(V[0].length).fill(0);
  th.forEach((t, i) => V[i].forEach((vij, j) => (out[j] += t * vij)));
  return out;
}

/** Rotates one head vector (D) at position t: pairs (j, j + rd/2) by t·base^(−2j/rd). */
function rotate(x: number[], t: number, rd: number, base: number): number[] {
  const y = x.slice(), half = rd / 2;
  for (let j = 0; j < half; j++) {
    const th = t * Math.pow(base, (-2 * j) / rd);
    y[j] = x[j] * Math.cos(th) - x[j + half] * Math.sin(th);
    y[j + half] = x[j + half] * Math.cos(th) + x[j] * Math.sin(th);
  }
  return y;
}

/** Logits (B·T·V, row-major) and mean cross-entropy loss of ids/targets (B, T). */
export function naiveForward(
  c: ModelConfig, w: ReadonlyMap<string, Float32Array>, ids: Int32Array, targets: Int32Array, B: number, T: number,
  opt: NaiveOptions = {},
): { logits: Float64Array; loss: number } {
  const C = c.hiddenSize, H = c.numHeads, D = C / H, rd = Math.floor(D * c.rotaryPct);
  const base = opt.rotaryBase ?? c.rotaryBase;
  const get = (name: string) => {
    const t = w.get(name);
    if (!t) throw new Error(`naiveForward: no '${name}'`);
    return t;
  };
  const patt = (prefix: string, xs: Mat) => {
    const K = rowsOf(get(`${prefix}.key_param_tokens`), C), V = rowsOf(get(`${prefix}.value_param_tokens`), C);
    const nN = opt.normN ? opt.normN(prefix, K.length) : K.length;
    return xs.map((x) => naivePattentionRow(x, K, V, c.variant, nN));
  };
  const E = rowsOf(get('sequential.0.word_embeddings.weight'), C);
  let x: Mat = Array.from(ids, (id) => E[id].slice()); // (B·T, C)
  for (let l = 0; l < c.numLayers; l++) {
    const p = `sequential.${l + 2}`;
    const h = x.map((r) => ln0(r, c.eps));
    const [q, k, v] = ['query', 'key', 'value'].map((n) => patt(`${p}.attention.${n}`, h));
    const a: Mat = x.map(() => new Array<number>(C).fill(0));
    for (let b = 0; b < B; b++) {
      for (let hd = 0; hd < H; hd++) {
        const head = (m: Mat, t: number) => m[b * T + t].slice(hd * D, hd * D + D);
        const qs = Array.from({ length: T }, (_, t) => rotate(head(q, t), t, rd, base));
        const ks = Array.from({ length: T }, (_, t) => rotate(head(k, t), t, rd, base));
        for (let i = 0; i < T; i++) {
          const sc = ks.slice(0, i + 1).map((kj) => kj.reduce((s, kv, d) => s + kv * qs[i][d], 0) / Math.sqrt(D));
          const mx = Math.max(...sc), e = sc.map((s) => Math.exp(s - mx)), z = e.reduce((s, t) => s + t, 0);
          e.forEach((ej, j) => head(v, j).forEach((vd, d) => (a[b * T + i][hd * D + d] += (ej / z) * vd)));
        }
      }
    }
    const pr = patt(`${p}.attention.proj`, a);
    x = x.map((r, i) => r.map((xi, j) => xi + pr[i][j]));
    const f = patt(`${p}.mlp`, x.map((r) => ln0(r, c.eps)));
    x = x.map((r, i) => r.map((xi, j) => xi + f[i][j]));
  }
  const norm = `sequential.${c.numLayers + 3}.norm`;
  const lw = get(`${norm}.weight`), lb = get(`${norm}.bias`);
  const head = c.tied ? E : rowsOf(get(`sequential.${c.numLayers + 4}.final_linear.weight`), C);
  const logits = new Float64Array(B * T * c.vocabSize);
  let loss = 0;
  x.forEach((r, i) => {
    const y = ln0(r, c.eps).map((yi, j) => yi * lw[j] + lb[j]);
    const row = head.map((e) => e.reduce((s, ej, j) => s + ej * y[j], 0));
    logits.set(row, i * c.vocabSize);
    const mx = Math.max(...row), lse = mx + Math.log(row.reduce((s, l) => s + Math.exp(l - mx), 0));
    loss += (lse - row[targets[i]]) / x.length;
  });
  return { logits, loss };
}
