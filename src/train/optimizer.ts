// AdamW with the official GPT-NeoX recipe (β 0.9/0.95, eps 1e-8, weight decay 0.1 except
// LayerNorm parameters, global-norm clipping at 1.0), its moments living on the backend, plus
// gradient accumulation and host save/load of the state. Omits: ZeRO sharding, fp16 loss
// scaling and per-group learning rates.

import type { AdamWParams, Backend, Handle } from '../backend.ts';
import { numel } from '../backend.ts';
import { UserError } from '../errors.ts';

export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 disables. */
  maxGradNorm: number;
}

/** configs/tokenformer/*.yml: optimizer Adam (AdamW decay), betas [0.9, 0.95], eps 1e-8,
 *  weight_decay 0.1, gradient_clipping 1.0. */
export const OFFICIAL_ADAMW: AdamWHyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 };

/** What the optimizer needs to know of a parameter (a subset of params.ts ParamSpec). */
export interface OptimParam {
  name: string;
  shape: readonly number[];
  noDecay: boolean;
}

/**
 * Sums a micro-batch's gradients into the running sum (ops.add), freeing both inputs'
 * handles that are no longer needed. acc null = the first micro-batch (taken as is).
 */
export function accumulateGrads<T extends Handle>(
  be: Backend<T>, acc: Map<string, T> | null, grads: Map<string, T>,
): Map<string, T> {
  if (!acc) return grads;
  for (const [name, g] of grads) {
    const prev = acc.get(name);
    if (!prev) throw new Error(`internal: gradient '${name}' missing from the accumulator`);
    acc.set(name, be.ops.add(prev, g));
    be.dispose(prev);
    be.dispose(g);
  }
  return acc;
}

export function disposeAll<T extends Handle>(be: Backend<T>, ts: Iterable<T>): void {
  for (const t of ts) be.dispose(t);
}

export class AdamW<T extends Handle> {
  /** Updates taken so far (the next update uses step + 1 for bias correction). */
  step = 0;
  readonly m = new Map<string, T>();
  readonly v = new Map<string, T>();
  private readonly specs = new Map<string, OptimParam>();

  constructor(
    readonly backend: Backend<T>,
    params: readonly OptimParam[],
    readonly hyper: AdamWHyper = OFFICIAL_ADAMW,
  ) {
    for (const p of params) {
      this.specs.set(p.name, p);
      this.m.set(p.name, backend.zeros(p.shape));
      this.v.set(p.name, backend.zeros(p.shape));
    }
  }

  /**
   * One update of every parameter from the (already averaged) gradients. Gradient
   * accumulation scales the loss instead, as DeepSpeed does for GPT-NeoX: each micro-batch's
   * backward runs with dLoss = 1/accum, so the summed gradients are the mean and the clip
   * norm is Σ g² of exactly what is applied (gradScale stays 1). Returns that Σ g² as a []
   * tensor the caller owns (read it for logging, then dispose).
   */
  update(params: Map<string, T>, grads: Map<string, T>, lr: number): T {
    const be = this.backend;
    const names = [...this.specs.keys()];
    const gs = names.map((n) => {
      const g = grads.get(n);
      if (!g) throw new Error(`internal: no gradient for '${n}'`);
      return g;
    });
    const normSq = be.ops.sumSquares(gs);
    this.step += 1;
    names.forEach((n, i) => {
      const spec = this.specs.get(n)!;
      const p: AdamWParams = {
        lr, beta1: this.hyper.beta1, beta2: this.hyper.beta2, eps: this.hyper.eps,
        weightDecay: spec.noDecay ? 0 : this.hyper.weightDecay,
        step: this.step, maxGradNorm: this.hyper.maxGradNorm, gradScale: 1,
      };
      const param = params.get(n);
      if (!param) throw new Error(`internal: no parameter '${n}'`);
      be.ops.adamw(param, gs[i], this.m.get(n)!, this.v.get(n)!, p, this.hyper.maxGradNorm > 0 ? normSq : null);
    });
    return normSq;
  }

  /** The moments as host tensors named m.<param> and v.<param>. */
  async toHost(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, spec] of this.specs) {
      out.set(`m.${name}`, { shape: [...spec.shape], data: await this.backend.read(this.m.get(name)!) });
      out.set(`v.${name}`, { shape: [...spec.shape], data: await this.backend.read(this.v.get(name)!) });
    }
    return out;
  }

  /** Replaces the moments with saved ones (from `toHost`); every parameter must be there. */
  loadHost(host: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>, step: number, source: string): void {
    for (const [name, spec] of this.specs) {
      for (const which of ['m', 'v'] as const) {
        const t = host.get(`${which}.${name}`);
        if (!t) throw new UserError(`${source}: missing optimizer moment '${which}.${name}'`);
        if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
          throw new UserError(`${source}: '${which}.${name}' has shape [${t.shape}], expected [${spec.shape}]`);
        }
        const map = which === 'm' ? this.m : this.v;
        this.backend.dispose(map.get(name)!);
        map.set(name, this.backend.upload(t.data, spec.shape));
      }
    }
    this.step = step;
  }

  /**
   * Re-targets the state at a grown parameter list. A parameter whose leading dim grew
   * (tokens appended) keeps its moments as the prefix with zeros after; a new parameter
   * starts at zero; every other dim must match. The step count carries over.
   */
  async grow(params: readonly OptimParam[]): Promise<void> {
    const be = this.backend;
    for (const p of params) {
      const old = this.specs.get(p.name);
      this.specs.set(p.name, p);
      if (!old) {
        this.m.set(p.name, be.zeros(p.shape));
        this.v.set(p.name, be.zeros(p.shape));
        continue;
      }
      if (old.shape.length === p.shape.length && old.shape.every((d, i) => d === p.shape[i])) continue;
      const tail = old.shape.slice(1);
      if (p.shape.length !== old.shape.length || p.shape[0] < old.shape[0] || p.shape.slice(1).some((d, i) => d !== tail[i])) {
        throw new UserError(`cannot grow '${p.name}' from [${old.shape}] to [${p.shape}]: only appending rows is supported`);
      }
      for (const map of [this.m, this.v]) {
        const prev = map.get(p.name)!;
        const data = new Float32Array(numel(p.shape));
        data.set(await be.read(prev)); // old rows first, zeros after
        be.dispose(prev);
        map.set(p.name, be.upload(data, p.shape));
      }
    }
  }

  dispose(): void {
    disposeAll(this.backend, this.m.values());
    disposeAll(this.backend, this.v.values());
  }
}
