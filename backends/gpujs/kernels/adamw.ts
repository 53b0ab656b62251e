// GPU.js kernels for the in-place AdamW update (decoupled decay, global-norm clipping), so
// that training runs on the device: no value leaves it, the clip coefficient included.
// Omits: a fused single kernel (GPU.js kernels write one output; m, v, param are three).
//
// Per element, in the order of src/ops/adamw.ts:
//   coef = maxGradNorm > 0 ? min(1, maxGradNorm / (√gradNormSq + 1e-6)) : 1   (on device)
//   g = gradScale·coef·grad;  m' = β1·m + (1−β1)·g;  v' = β2·v + (1−β2)·g²
//   param' = param·(1 − lr·wd) − lr·(m'/bc1) / (√(v'/bc2) + eps)
// Per-step values (lr, bias corrections, …) are float scalar arguments, not constants, so
// the three kernels compile once per parameter size, not once per step.
// Sizes and parameters come checked from the op table (src/op-specs.ts).
// NOTE: the host computes 1−β, bc = 1−β^step and 1 − lr·wd in float64 and passes them
// rounded to float32; the device then works in float32 (the reference in float64).

import type { AdamWParams, AdamWSizes } from '../../../src/backend.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { kernelSource } from './snippets.ts';

const GRAD = `const x = this.thread.x;
  let coef = 1.0;
  if (maxNorm > 0) { coef = Math.min(1.0, maxNorm / (Math.sqrt(gns[0]) + 0.000001)); }
  const g = scale * coef * grad[x];`;

const M_NEW = kernelSource(['m', 'grad', 'gns', 'scale', 'maxNorm', 'b1', 'ob1'], `${GRAD}
  return b1 * m[x] + ob1 * g;`);

const V_NEW = kernelSource(['v', 'grad', 'gns', 'scale', 'maxNorm', 'b2', 'ob2'], `${GRAD}
  return b2 * v[x] + ob2 * g * g;`);

const P_NEW = kernelSource(['p', 'm', 'v', 'decay', 'lr', 'bc1', 'bc2', 'eps'], `const x = this.thread.x;
  return p[x] * decay - lr * (m[x] / bc1) / (Math.sqrt(v[x] / bc2) + eps);`);

export function adamw(
  rt: Runtime, z: AdamWSizes, param: GHandle, grad: GHandle, m: GHandle, v: GHandle, p: AdamWParams,
  gradNormSq: GHandle | null,
): void {
  const n = z.size;
  if (n === 0) return;
  const clip = p.maxGradNorm > 0; // the op table made sure gradNormSq is given then
  // Without clipping the kernels never read gns; any live tensor fills the argument slot.
  const gns = gradNormSq ?? grad;
  const maxNorm = clip ? p.maxGradNorm : 0;
  const mNew = rt.launch(`adamM:${n}:${gns.size}`, M_NEW, param.shape, {},
    [m, grad, gns, p.gradScale, maxNorm, p.beta1, 1 - p.beta1]);
  const vNew = rt.launch(`adamV:${n}:${gns.size}`, V_NEW, param.shape, {},
    [v, grad, gns, p.gradScale, maxNorm, p.beta2, 1 - p.beta2]);
  const bc1 = 1 - Math.pow(p.beta1, p.step), bc2 = 1 - Math.pow(p.beta2, p.step);
  const pNew = rt.launch(`adamP:${n}`, P_NEW, param.shape, {},
    [param, mNew, vNew, 1 - p.lr * p.weightDecay, p.lr, bc1, bc2, p.eps]);
  rt.replace(m, mNew);
  rt.replace(v, vNew);
  rt.replace(param, pNew);
}
