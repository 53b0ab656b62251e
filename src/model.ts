// The TokenFormer language model on any backend: embedding → L blocks → final LayerNorm →
// logits (tied embedding or separate head) → mean cross-entropy; full backward.
// Omits: mixed precision; sampling and the KV-cache decode path (src/decode.ts, src/sample.ts).

import type { Backend, Handle } from './backend.ts';
import type { ModelConfig } from './config.ts';
import { headDim, rotaryDim } from './config.ts';
import { blockBackward, blockForward, type BlockCache, type BlockParams, type BlockTrace } from './block.ts';
import {
  EMBEDDING, blockPattentions, checkParams, finalLinearName, finalNormPrefix, normSlotsOf, paramSpecs,
} from './params.ts';
import { UserError } from './errors.ts';

export interface ForwardResult<T> {
  logits: T; // (B, T, V)
  loss: T | null; // () mean cross-entropy, when targets were given
  /** Everything backward needs; freed by `backward` or `release`. */
  cache: ModelCache<T>;
}

interface ModelCache<T> {
  ids: T; // (B, T) i32, owned by the caller
  targets: T | null; // (N) i32 view
  x0: T; // (N, C) embedding output
  blocks: BlockCache<T>[];
  xL: T; // (N, C) last block output
  lnf: { y: T; mean: T; rstd: T };
  logits2: T; // (N, V) view of the logits
  lse: T | null; // (N)
}

const KEYS = ['q', 'k', 'v', 'proj', 'ffn'] as const;

export interface ForwardOptions<T> {
  /** Sees embed, block.{i}.{h … out} (see blockForward), final_norm and logits, in order
   *  (spec/conformance.md). Each handle is valid during the call only. Absent: no cost. */
  trace?: BlockTrace<T>;
}

export class TokenFormer<T extends Handle> {
  constructor(
    readonly backend: Backend<T>,
    readonly config: ModelConfig,
    /** Parameter handles by official state-dict name. */
    readonly params: Map<string, T>,
  ) {
    checkParams(config, params, 'model');
  }

  /** Uploads host weights (official names) to the backend. */
  static fromHost<T extends Handle>(
    be: Backend<T>, config: ModelConfig, host: Map<string, Float32Array>,
  ): TokenFormer<T> {
    const shaped = new Map<string, { shape: number[] }>();
    const specs = paramSpecs(config);
    for (const s of specs) {
      const data = host.get(s.name);
      if (data && data.length !== s.shape.reduce((a, b) => a * b, 1)) {
        throw new UserError(`'${s.name}' has ${data.length} values, config says [${s.shape}]`);
      }
      if (data) shaped.set(s.name, { shape: s.shape });
    }
    checkParams(config, shaped, 'weights');
    const params = new Map<string, T>();
    for (const s of specs) params.set(s.name, be.upload(host.get(s.name)!, s.shape));
    return new TokenFormer(be, config, params);
  }

  private p(name: string): T {
    const t = this.params.get(name);
    if (!t) throw new Error(`internal: parameter ${name} missing`);
    return t;
  }

  /** Block i's parameter handles and settings (also used by the KV-cache decode, src/decode.ts). */
  blockParams(i: number): BlockParams<T> {
    const c = this.config;
    const layers = blockPattentions(c, i);
    const pick = <R>(f: (prefix: string) => R) =>
      Object.fromEntries(KEYS.map((key, j) => [key, f(layers[j].prefix)])) as Record<(typeof KEYS)[number], R>;
    return {
      k: pick((pre) => this.p(`${pre}.key_param_tokens`)),
      v: pick((pre) => this.p(`${pre}.value_param_tokens`)),
      norm: pick((pre) => ({ variant: c.variant, normN: normSlotsOf(c, pre) })),
      rotary: { rotaryDim: rotaryDim(c), base: c.rotaryBase },
      heads: c.numHeads,
      eps: c.eps,
    };
  }

  /** The output head's (V, C) weight: the embedding when tied. */
  headWeight(): T {
    return this.p(this.config.tied ? EMBEDDING : finalLinearName(this.config));
  }

  /** ids, targets: i32 (B, T) on this backend. */
  forward(ids: T, targets: T | null, opts: ForwardOptions<T> = {}): ForwardResult<T> {
    const be = this.backend;
    const c = this.config;
    const [B, T_] = ids.shape;
    if (ids.shape.length !== 2) throw new UserError(`token ids must be (B, T), got [${ids.shape}]`);
    if (T_ > c.maxPositions) throw new UserError(`sequence length ${T_} exceeds max_position_embeddings ${c.maxPositions}`);
    if (targets && (targets.shape[0] !== B || targets.shape[1] !== T_)) {
      throw new UserError(`targets shape [${targets.shape}] differs from tokens [${ids.shape}]`);
    }
    const N = B * T_;
    const emb = be.ops.embedding(ids, this.p(EMBEDDING)); // (B, T, C)
    const x0 = be.reshape(emb, [N, c.hiddenSize]);
    be.dispose(emb);
    const trace = opts.trace;
    trace?.('embed', x0);
    let x = x0;
    const blocks: BlockCache<T>[] = [];
    for (let i = 0; i < c.numLayers; i++) {
      const r = blockForward(be, x, this.blockParams(i), B, T_, trace && ((p, t) => trace(`block.${i}.${p}`, t)));
      blocks.push(r.cache);
      x = r.out;
    }
    const norm = finalNormPrefix(c);
    const lnf = be.ops.layerNorm(x, this.p(`${norm}.weight`), this.p(`${norm}.bias`), c.eps);
    const logits2 = be.ops.matmul(lnf.y, this.headWeight(), false, true); // (N, V)
    const logits = be.reshape(logits2, [B, T_, c.vocabSize]);
    trace?.('final_norm', lnf.y);
    trace?.('logits', logits);
    let loss: T | null = null;
    let lse: T | null = null;
    let tflat: T | null = null;
    if (targets) {
      tflat = be.reshape(targets, [N]);
      const ce = be.ops.crossEntropy(logits2, tflat);
      loss = ce.loss;
      lse = ce.lse;
    }
    const cache = { ids, targets: tflat, x0, blocks, xL: x, lnf, logits2, lse };
    return { logits, loss, cache };
  }

  /** Gradients of dLoss·loss for every parameter, by name. Frees the forward cache
   *  (the caller still owns and frees `logits` and `loss`). */
  backward(fwd: ForwardResult<T>, dLoss = 1): Map<string, T> {
    const be = this.backend;
    const c = this.config;
    const k = fwd.cache;
    if (!k.targets || !k.lse) throw new Error('internal: backward needs a forward with targets');
    const grads = new Map<string, T>();
    const dLogits = be.ops.crossEntropyBackward(k.logits2, k.lse, k.targets, dLoss); // (N, V)
    const dHead = be.ops.matmul(dLogits, k.lnf.y, true, false); // (V, C)
    const dY = be.ops.matmul(dLogits, this.headWeight(), false, false); // (N, C)
    for (const t of [dLogits, k.logits2, k.lse, k.targets]) be.dispose(t);
    const norm = finalNormPrefix(c);
    const lf = be.ops.layerNormBackward(dY, k.xL, k.lnf.mean, k.lnf.rstd, this.p(`${norm}.weight`));
    grads.set(`${norm}.weight`, lf.dW!);
    grads.set(`${norm}.bias`, lf.dB!);
    for (const t of [dY, k.lnf.y, k.lnf.mean, k.lnf.rstd]) be.dispose(t);
    if (c.numLayers > 0) be.dispose(k.xL); // block outputs are ours; x0 is freed below
    let dX = lf.dX;
    for (let i = c.numLayers - 1; i >= 0; i--) {
      const bc = k.blocks[i];
      const r = blockBackward(be, dX, bc, this.blockParams(i));
      be.dispose(dX);
      if (i > 0) be.dispose(bc.x);
      dX = r.dX;
      const layers = blockPattentions(c, i);
      KEYS.forEach((key, j) => {
        grads.set(`${layers[j].prefix}.key_param_tokens`, r.grads.k[key]);
        grads.set(`${layers[j].prefix}.value_param_tokens`, r.grads.v[key]);
      });
    }
    be.dispose(k.x0);
    const dX3 = be.reshape(dX, [k.ids.shape[0], k.ids.shape[1], c.hiddenSize]);
    const dEmb = be.ops.embeddingBackward(k.ids, dX3, c.vocabSize); // (V, C)
    be.dispose(dX3);
    be.dispose(dX);
    if (c.tied) {
      grads.set(EMBEDDING, be.ops.add(dEmb, dHead));
      be.dispose(dEmb);
      be.dispose(dHead);
    } else {
      grads.set(EMBEDDING, dEmb);
      grads.set(finalLinearName(c), dHead);
    }
    return grads;
  }

  /** Frees a forward's cache without running backward (inference). */
  release(fwd: ForwardResult<T>): void {
    const be = this.backend;
    const k = fwd.cache;
    const seen = new Set<T>();
    const free = (t: T | null | undefined) => {
      if (t && !seen.has(t)) {
        seen.add(t);
        be.dispose(t);
      }
    };
    for (const b of k.blocks) {
      for (const t of [b.x, b.ln1.y, b.ln1.mean, b.ln1.rstd, b.qr, b.kr, b.v4, b.a, b.x1, b.ln2.y, b.ln2.mean, b.ln2.rstd]) free(t);
      for (const s of [b.sq, b.sk, b.sv, b.att, b.sp, b.sf]) s.release();
    }
    for (const t of [k.x0, k.xL, k.lnf.y, k.lnf.mean, k.lnf.rstd, k.logits2, k.lse, k.targets]) free(t);
  }

  async toHost(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.params) out.set(name, await this.backend.read(t));
    return out;
  }

  dispose(): void {
    for (const t of this.params.values()) this.backend.dispose(t);
  }
}
