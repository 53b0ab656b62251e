// `tokenformer forward` and `tokenformer grad` (the oracle contract). Both check every input
// and output before computing, run the (B, T) batch in chunks of whole rows within the memory
// plan (cli/chunked.ts), refuse non-finite results, and write atomically: forward streams
// each chunk's logits into the staged output file; grad sums gradients over chunks weighted by
// their share of the tokens (the loss is the mean over all B·T tokens).
// Omits: splitting a row (T ≤ max_position_embeddings) and sampling/generation.

import type { Command } from 'commander';
import type { Backend, Handle } from '../src/backend.ts';
import { loadBackend } from '../backends/index.ts';
import { TokenFormer } from '../src/model.ts';
import type { ModelConfig } from '../src/config.ts';
import { StagedWriter, commitStaged } from '../src/atomic.ts';
import { safetensorsHeader, stageSafetensors, tensorBytes } from '../src/safetensors.ts';
import { UserError } from '../src/errors.ts';
import { checkFreeSpace, quote } from '../src/fsguard.ts';
import { memoryBudget } from '../src/limits.ts';
import { checkBackendName, checkOutputs, readModelFiles, readTokens, type TokenBatch } from './io.ts';
import { checkFiniteLogits, firstNonFinite, planRows, type RowPlan } from './chunked.ts';

interface CommonOpts {
  config: string;
  weights: string;
  tokens: string;
  out: string;
  backend: string;
  maxMemory?: string;
  chunkTokens?: number;
}

interface Loaded {
  config: ModelConfig;
  weights: Map<string, Float32Array>;
  tok: TokenBatch;
  tgt?: TokenBatch;
}

/** Everything a run needs, checked before any backend work. */
function loadInputs(o: CommonOpts, targets?: string): Loaded {
  memoryBudget(o.maxMemory); // a bad --max-memory is reported first
  checkBackendName(o.backend);
  const inputs = [o.config, o.weights, o.tokens, ...(targets ? [targets] : [])];
  checkOutputs([['--out', o.out]], inputs);
  const { config, weights } = readModelFiles(o.config, o.weights, o);
  const tok = readTokens(o.tokens, config.vocabSize, 'tokens', o);
  if (tok.T > config.maxPositions) {
    throw new UserError(`sequence length ${tok.T} exceeds max_position_embeddings ${config.maxPositions}`);
  }
  if (!targets) return { config, weights, tok };
  const tgt = readTokens(targets, config.vocabSize, 'targets', o);
  if (tgt.B !== tok.B || tgt.T !== tok.T) {
    throw new UserError(`targets are (${tgt.B}, ${tgt.T}) but tokens are (${tok.B}, ${tok.T})`);
  }
  return { config, weights, tok, tgt };
}

async function withModel<R>(o: CommonOpts, l: Loaded, f: (m: TokenFormer<Handle>, be: Backend<Handle>) => Promise<R>): Promise<R> {
  const be = await loadBackend(o.backend);
  try {
    const model = TokenFormer.fromHost(be, l.config, l.weights);
    l.weights.clear(); // the backend holds the weights now
    return await f(model, be);
  } finally {
    await be.destroy();
  }
}

/** Rows [b0, b1) of a (B, T) batch, as a backend tensor. */
function uploadRows(be: Backend<Handle>, t: TokenBatch, b0: number, b1: number): Handle {
  return be.uploadInt(t.data.subarray(b0 * t.T, b1 * t.T), [b1 - b0, t.T]);
}

async function forwardCmd(o: CommonOpts): Promise<void> {
  const l = loadInputs(o);
  const { tok } = l;
  const V = l.config.vocabSize;
  const plan = planRows(l.config, tok.B, tok.T, 'forward', o);
  const { header, dataBytes } = safetensorsHeader([{ name: 'logits', dtype: 'F32', shape: [tok.B, tok.T, V] }]);
  checkFreeSpace(o.out, header.length + dataBytes, '--out');
  await withModel(o, l, async (model, be) => {
    const w = new StagedWriter(o.out);
    try {
      w.write(header);
      for (let b0 = 0; b0 < tok.B; b0 += plan.rows) {
        const b1 = Math.min(tok.B, b0 + plan.rows);
        const ids = uploadRows(be, tok, b0, b1);
        const fwd = model.forward(ids, null);
        const logits = await be.read(fwd.logits); // (b1 - b0, T, V)
        model.release(fwd);
        be.dispose(fwd.logits);
        be.dispose(ids);
        checkFiniteLogits(logits, b0, tok.T, V);
        w.write(tensorBytes(logits));
      }
      commitStaged([w.finish()]);
    } catch (e) {
      w.abort(); // removes the temp file (commitStaged already did when the rename failed)
      throw e;
    }
  });
}

/** Adds `g` to `acc` (float64 sums of float32 chunk gradients). */
function accumulate(acc: Map<string, Float64Array>, name: string, g: Float32Array): void {
  let a = acc.get(name);
  if (!a) acc.set(name, (a = new Float64Array(g.length)));
  for (let i = 0; i < g.length; i++) a[i] += g[i];
}

/**
 * Loss and gradients over the batch in row chunks: chunk i (n_i tokens) runs backward with
 * dLoss = n_i / N, so the sums are the gradients of the mean loss over all N tokens. One chunk
 * is exactly the unchunked computation (no float64 detour).
 */
async function gradChunks(model: TokenFormer<Handle>, be: Backend<Handle>, l: Loaded, plan: RowPlan): Promise<Map<string, Float32Array>> {
  const { tok, tgt } = l;
  const N = tok.B * tok.T;
  const acc = new Map<string, Float64Array>();
  const single = new Map<string, Float32Array>();
  let loss = 0;
  for (let b0 = 0; b0 < tok.B; b0 += plan.rows) {
    const b1 = Math.min(tok.B, b0 + plan.rows);
    const share = ((b1 - b0) * tok.T) / N;
    const ids = uploadRows(be, tok, b0, b1);
    const targets = uploadRows(be, tgt!, b0, b1);
    const fwd = model.forward(ids, targets);
    const lossI = (await be.read(fwd.loss!))[0];
    const grads = model.backward(fwd, plan.chunks === 1 ? 1 : share);
    for (const t of [fwd.logits, fwd.loss!, ids, targets]) be.dispose(t);
    if (!Number.isFinite(lossI)) throw new UserError(`grad produced a non-finite loss (rows ${b0}…${b1 - 1}); the weights overflow float32`);
    loss += plan.chunks === 1 ? lossI : share * lossI;
    for (const [name, g] of grads) {
      const host = await be.read(g);
      be.dispose(g);
      if (plan.chunks === 1) single.set(name, host);
      else accumulate(acc, name, host);
    }
  }
  const out = plan.chunks === 1 ? single : new Map([...acc].map(([n, a]) => [n, Float32Array.from(a)]));
  for (const [name, g] of out) {
    const i = firstNonFinite(g);
    if (i >= 0) throw new UserError(`grad produced a non-finite gradient of ${quote(name)} (first at index ${i}); the weights overflow float32`);
  }
  out.set('loss', new Float32Array([loss]));
  return out;
}

async function gradCmd(o: CommonOpts & { targets: string }): Promise<void> {
  const l = loadInputs(o, o.targets);
  const plan = planRows(l.config, l.tok.B, l.tok.T, 'grad', o);
  await withModel(o, l, async (model, be) => {
    const g = await gradChunks(model, be, l, plan);
    const shapes = new Map([...model.params].map(([n, t]) => [n, t.shape]));
    const tensors = new Map([...g].map(([name, data]) => [name, { shape: name === 'loss' ? [] : shapes.get(name)!, data }]));
    commitStaged([stageSafetensors(o.out, tensors)]);
  });
}

function positiveInt(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(x) || x < 1) throw new UserError(`${flag} expects a positive integer, got ${quote(v, 40)}`);
    return x;
  };
}

function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--config <path>', 'model config (official GPT-NeoX YAML or JSON)')
    .requiredOption('--weights <path>', 'weights (.safetensors, official names)')
    .requiredOption('--tokens <path>', 'JSON array of equal-length arrays of token ids, (B, T)')
    .requiredOption('--out <path>', 'output .safetensors (absent or a regular file; never an input)')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'cpu')
    .option('--max-memory <size>', 'memory budget, e.g. 8G (default TOKENFORMER_MAX_MEMORY or 75% of RAM)')
    .option('--chunk-tokens <n>', 'tokens per chunk, rounded down to whole rows (default: 256 MiB of activations)', positiveInt('--chunk-tokens'));
}

export function registerForwardGrad(program: Command): void {
  addModelOptions(program.command('forward').description('logits (B, T, vocab) for token ids'))
    .action(forwardCmd);
  addModelOptions(program.command('grad').description('loss and every parameter gradient'))
    .requiredOption('--targets <path>', 'JSON array of target ids, same shape as --tokens')
    .action(gradCmd);
}
