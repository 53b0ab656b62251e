// The `tokenformer` CLI: forward and grad (the oracle contract), plus the commands other
// modules register. Bad input: `error: …` on stderr, exit code 2, and no output file.

import { Command, CommanderError } from 'commander';
import type { Backend, Handle } from '../backend.ts';
import { BackendUnavailable, loadBackend } from '../../backends/index.ts';
import { TokenFormer } from '../model.ts';
import { writeSafetensorsAtomic } from '../safetensors.ts';
import { UserError } from '../errors.ts';
import { readModelFiles, readTokens } from './io.ts';
import { extraCommands } from './commands.ts';

interface CommonOpts {
  config: string;
  weights: string;
  tokens: string;
  out: string;
  backend: string;
}

async function withModel<R>(o: CommonOpts, f: (m: TokenFormer<Handle>, be: Backend<Handle>) => Promise<R>): Promise<R> {
  const { config, weights } = readModelFiles(o.config, o.weights);
  const be = await loadBackend(o.backend);
  try {
    const model = TokenFormer.fromHost(be, config, weights);
    return await f(model, be);
  } finally {
    await be.destroy();
  }
}

async function forwardCmd(o: CommonOpts): Promise<void> {
  await withModel(o, async (model, be) => {
    const tok = readTokens(o.tokens, model.config.vocabSize);
    const ids = be.uploadInt(tok.data, [tok.B, tok.T]);
    const fwd = model.forward(ids, null);
    const logits = await be.read(fwd.logits);
    writeSafetensorsAtomic(o.out, { logits: { shape: [tok.B, tok.T, model.config.vocabSize], data: logits } });
  });
}

async function gradCmd(o: CommonOpts & { targets: string }): Promise<void> {
  await withModel(o, async (model, be) => {
    const V = model.config.vocabSize;
    const tok = readTokens(o.tokens, V);
    const tgt = readTokens(o.targets, V, 'targets');
    if (tgt.B !== tok.B || tgt.T !== tok.T) {
      throw new UserError(`targets are (${tgt.B}, ${tgt.T}) but tokens are (${tok.B}, ${tok.T})`);
    }
    const ids = be.uploadInt(tok.data, [tok.B, tok.T]);
    const targets = be.uploadInt(tgt.data, [tgt.B, tgt.T]);
    const fwd = model.forward(ids, targets);
    const grads = model.backward(fwd);
    const out: Record<string, { shape: readonly number[]; data: Float32Array }> = {
      loss: { shape: [], data: await be.read(fwd.loss!) },
    };
    for (const [name, g] of grads) out[name] = { shape: g.shape, data: await be.read(g) };
    writeSafetensorsAtomic(o.out, out);
  });
}

function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--config <path>', 'model config (official GPT-NeoX YAML or JSON)')
    .requiredOption('--weights <path>', 'weights (.safetensors, official names)')
    .requiredOption('--tokens <path>', 'JSON array of equal-length arrays of token ids, (B, T)')
    .requiredOption('--out <path>', 'output .safetensors')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'cpu');
}

export function buildProgram(): Command {
  const program = new Command('tokenformer')
    .description('TokenFormer: Pattention transformers, a reference oracle and trainer')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  addModelOptions(program.command('forward').description('logits (B, T, vocab) for token ids'))
    .action(forwardCmd);
  addModelOptions(program.command('grad').description('loss and every parameter gradient'))
    .requiredOption('--targets <path>', 'JSON array of target ids, same shape as --tokens')
    .action(gradCmd);
  for (const register of extraCommands) register(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message; help and version exit 0
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UserError || e instanceof BackendUnavailable) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`error: internal: ${msg.split('\n')[0]}\n`);
    if (process.env.TOKENFORMER_DEBUG) console.error(e);
    return 1;
  }
}
