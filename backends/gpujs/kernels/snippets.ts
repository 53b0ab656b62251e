// Source snippets shared by the GPU.js kernels: exact integer div/mod on float indices, and
// the erf-form GELU with its derivative. Kernels are source strings (GPU.js parses them), so
// no transpiler can rewrite what GPU.js sees.
// Omits: a tanh GELU (TokenFormer uses the exact erf form).

/**
 * Lines declaring q = floor(x / d) and r = x − q·d for integer-valued x ≥ 0 and the kernel
 * constant d (with its reciprocal `inv_<d>`; see `inv`).
 * NOTE: WGSL and GLSL division is not correctly rounded, so floor(x / d) can land one below
 * an exact multiple. Here (x + ½)·(1/d) sits ≥ ½/d from every integer, and the remainder,
 * exact in float32 below 2^24, corrects the quotient by one either way if it still slips.
 */
export function divmod(q: string, r: string, x: string, d: string): string {
  const D = `this.constants.${d}`, I = `this.constants.inv_${d}`;
  return `let ${q} = Math.floor((${x} + 0.5) * ${I});
  let ${r} = ${x} - ${q} * ${D};
  if (${r} < 0) { ${q} = ${q} - 1; ${r} = ${r} + ${D}; }
  if (${r} >= ${D}) { ${q} = ${q} + 1; ${r} = ${r} - ${D}; }`;
}

/** Adds inv_<name> = 1/value for each named constant, for `divmod`. */
export function inv(c: Record<string, number>, ...names: string[]): Record<string, number> {
  const out = { ...c };
  for (const n of names) out[`inv_${n}`] = 1 / c[n];
  return out;
}

/**
 * Lines declaring `cdf` = Φ(x) = ½·erfc(−x/√2) for the expression x (suffix keeps names unique).
 * erfc is Numerical Recipes' `erfcc` (Press, Teukolsky, Vetterling, Flannery, Numerical
 * Recipes in C, 2nd ed., 1992, §6.2): a Chebyshev fit with fractional error below 1.2e-7
 * everywhere, i.e. at float32 resolution, and relative (not absolute) accuracy in the tail,
 * so gelu(x) for very negative x keeps its relative accuracy like the CPU reference's erfc.
 */
export function normalCdf(cdf: string, x: string, sfx: string): string {
  const z = `z_${sfx}`, t = `t_${sfx}`, e = `e_${sfx}`;
  return `let ${z} = Math.abs(${x}) * 0.7071067811865476;
  let ${t} = 1.0 / (1.0 + 0.5 * ${z});
  let ${e} = ${t} * Math.exp(-${z} * ${z} - 1.26551223 + ${t} * (1.00002368 + ${t} * (0.37409196 + ${t} * (0.09678418 + ${t} * (-0.18628806 + ${t} * (0.27886807 + ${t} * (-1.13520398 + ${t} * (1.48851587 + ${t} * (-0.82215223 + ${t} * 0.17087277)))))))));
  let ${cdf} = 0.5 * ${e};
  if (${x} >= 0) { ${cdf} = 1.0 - 0.5 * ${e}; }`;
}

/** Lines declaring y = gelu(x) = x·Φ(x). */
export function gelu(y: string, x: string, sfx: string): string {
  return `${normalCdf(`cdf_${sfx}`, x, sfx)}
  let ${y} = ${x} * cdf_${sfx};`;
}

/** Lines declaring dy = gelu'(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π). */
export function geluGrad(dy: string, x: string, sfx: string): string {
  return `${normalCdf(`cdf_${sfx}`, x, sfx)}
  let ${dy} = cdf_${sfx} + ${x} * 0.3989422804014327 * Math.exp(-0.5 * ${x} * ${x});`;
}

/** Terms per partial sum in `sum`. */
export const BLOCK = 16;

/**
 * Lines declaring `acc` = Σ_{k < bound} term, with `pre` lines run before each term (the loop
 * variable is k). The sum is blocked: partial sums of BLOCK terms are added to the total.
 * NOTE: float32 accumulation; blocking cuts the worst-case rounding growth from ~K·ε to
 * ~(K/BLOCK + BLOCK)·ε (matmul 256³: max error 5.3e-5 → 1.1e-5). Kahan summation would
 * do better on paper, but GPU shader compilers may reassociate it away. Needs the kernel
 * constant <bound>_blocks (see `blocks`).
 */
export function sum(acc: string, k: string, bound: string, term: string, pre = ''): string {
  const N = `this.constants.${bound}`, NB = `this.constants.${bound}_blocks`;
  return `let ${acc} = 0.0;
  for (let kb_${acc} = 0; kb_${acc} < ${NB}; kb_${acc}++) {
    let part_${acc} = 0.0;
    for (let kk_${acc} = 0; kk_${acc} < ${BLOCK}; kk_${acc}++) {
      const ${k} = kb_${acc} * ${BLOCK} + kk_${acc};
      if (${k} < ${N}) {
        ${pre}
        part_${acc} += ${term};
      }
    }
    ${acc} += part_${acc};
  }`;
}

/** Adds <name>_blocks = ⌈value/BLOCK⌉ for each named constant, for `sum`. */
export function blocks(c: Record<string, number>, ...names: string[]): Record<string, number> {
  const out = { ...c };
  for (const n of names) out[`${n}_blocks`] = Math.ceil(c[n] / BLOCK);
  return out;
}

/** Lines declaring y = gelu(x) and dy = gelu'(x) from one Φ(x). */
export function geluWithGrad(y: string, dy: string, x: string, sfx: string): string {
  return `${normalCdf(`cdf_${sfx}`, x, sfx)}
  let ${y} = ${x} * cdf_${sfx};
  let ${dy} = cdf_${sfx} + ${x} * 0.3989422804014327 * Math.exp(-0.5 * ${x} * ${x});`;
}

/** Wraps kernel body lines into the GPU.js source `function (args) { body }`. */
export function kernelSource(args: readonly string[], body: string): string {
  return `function (${args.join(', ')}) {
  ${body}
}`;
}
