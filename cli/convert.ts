// `tokenformer convert IN OUT`: weights between torch.save (.bin/.pt) and safetensors, chosen by
// OUT's extension (IN's format is read from its content), optionally re-stored as f32, f16 or
// bf16 (rounded to nearest even, as torch's .half()/.bfloat16()); and `--to neox OUT --config C`,
// the checkpoint folder the official GPT-NeoX trainer loads with `load:` (src/neox/export.ts).
// IN may also be such a folder (DIR or DIR/global_step<N>), which is the way back. Every check
// runs before any output is written; outputs are atomic (a file, or the whole folder).
// Omits: sharded checkpoints, float64, and model-parallel (mp_rank_01…) checkpoints.

import type { Command } from 'commander';
import { mkdirSync, realpathSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import { commitStaged } from '../src/atomic.ts';
import { readConfigFile } from '../src/config-parse.ts';
import { UserError } from '../src/errors.ts';
import { checkFreeSpace, checkInputFile, quote } from '../src/fsguard.ts';
import { checkMemory, formatBytes, memoryBudget } from '../src/limits.ts';
import { checkExpressible, neoxParallelism, readNeoxConfig } from '../src/neox/config.ts';
import { MARKER, officialStateDict, writeNeoxFiles } from '../src/neox/export.ts';
import { checkOutputFolder, writeFolderAtomic } from '../src/neox/folder.ts';
import { isFolder, readNeoxCheckpoint } from '../src/neox/read.ts';
import { EMBEDDING } from '../src/params.ts';
import { ITEMSIZE } from '../src/safetensors-dtypes.ts';
import type { SafeTensors } from '../src/safetensors.ts';
import { stageTorchBin, type TensorOut } from '../src/torch-bin/write.ts';
import { stageSafetensorsAny } from '../src/torch-bin/write-safetensors.ts';
import { readWeightsFile } from '../src/weights.ts';
import { checkOutputs, MAX_CONFIG_BYTES } from './io.ts';

interface ConvertOpts {
  dtype?: string;
  to?: string;
  config?: string;
  iteration: number;
  maxMemory?: string;
}

const DTYPES: Record<string, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const FLOATS = new Set(['F32', 'F16', 'BF16']);
type OutFormat = 'torch' | 'safetensors' | 'neox';

function intFlag(v: string): number {
  const x = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(x)) throw new UserError(`--iteration expects a non-negative integer, got ${quote(v, 40)}`);
  return x;
}

/** The output format, from --to or OUT's extension; bad flag combinations are refused here. */
function outFormat(out: string, o: ConvertOpts): OutFormat {
  if (o.dtype !== undefined && DTYPES[o.dtype] === undefined) throw new UserError(`--dtype must be f32, f16 or bf16, got ${quote(o.dtype, 40)}`);
  if (o.to !== undefined) {
    if (o.to !== 'neox') throw new UserError(`--to must be neox (other formats follow OUT's extension), got ${quote(o.to, 40)}`);
    if (o.config === undefined) throw new UserError('--to neox needs --config (the official GPT-NeoX config of the model)');
    return 'neox';
  }
  if (o.config !== undefined) throw new UserError('--config is only used with --to neox');
  const ext = extname(out).toLowerCase();
  if (ext === '.bin' || ext === '.pt') return 'torch';
  if (ext === '.safetensors') return 'safetensors';
  throw new UserError(`OUT ${quote(out)} has the extension ${quote(ext)}: expected .safetensors, .bin or .pt (or --to neox for a folder)`);
}

/** Refuses a folder output that holds the input (replacing it would delete the input). */
function checkNotInside(inp: string, out: string): void {
  let a: string;
  let b: string;
  try {
    a = realpathSync(inp);
    b = realpathSync(out);
  } catch {
    return; // OUT absent: it cannot hold IN
  }
  if (a === b || a.startsWith(b + sep)) throw new UserError(`OUT ${quote(out)} holds the input ${quote(inp)}; write to another folder`);
}

/** The input's tensors: a weights file (by content) or a GPT-NeoX checkpoint folder. */
function readInput(inp: string, o: ConvertOpts): SafeTensors {
  if (isFolder(inp)) return readNeoxCheckpoint(inp).tensors;
  const size = checkInputFile(inp, 'weights');
  // the file's records, the decoded floats (F16/BF16 double), then one output record at a time
  checkMemory(3 * size, `reading the weights ${quote(inp)} (${formatBytes(size)})`, o.maxMemory);
  return readWeightsFile(inp);
}

/** Float tensors as --dtype (or as stored); integer ones keep their dtype where OUT has it. */
function toWrite(tensors: SafeTensors, dtype: string | undefined, fmt: OutFormat): Map<string, TensorOut> {
  const out = new Map<string, TensorOut>();
  for (const [name, t] of tensors) {
    let d = t.dtype;
    if (FLOATS.has(d)) d = dtype ?? d;
    else if (fmt !== 'safetensors' && d === 'U16') d = 'I32'; // torch has no uint16 storage before 2.3
    out.set(name, { dtype: d, shape: t.shape, data: t.data });
  }
  return out;
}

function bytesOf(tensors: ReadonlyMap<string, TensorOut>): number {
  let n = 0;
  for (const t of tensors.values()) n += t.data.length * ITEMSIZE[t.dtype];
  return n;
}

function writeNeox(inp: string, out: string, o: ConvertOpts, tensors: Map<string, TensorOut>): string {
  const configPath = o.config!;
  checkInputFile(configPath, 'config', MAX_CONFIG_BYTES);
  const c = readConfigFile(configPath, { vocabFromWeights: tensors.get(EMBEDDING)?.shape[0] });
  const cfg = readNeoxConfig(configPath);
  const par = neoxParallelism(cfg);
  checkExpressible(cfg, c);
  const { sd, dropped } = officialStateDict(c, tensors, quote(inp));
  checkFreeSpace(out, bytesOf(sd) + (1 << 20), 'OUT');
  const r = writeFolderAtomic(out, 'OUT', MARKER, (tmp) =>
    writeNeoxFiles(tmp, resolve(out), c, sd, cfg, par, o.iteration, (p) => mkdirSync(p)));
  const note = dropped.length > 0 ? `; left out ${dropped.length} buffer(s) the official model recomputes` : '';
  return `${r.layout === 'layers' ? 'pipeline layout (layer files)' : 'module layout'}, ${r.tag}, ${r.files.length} files${note}`;
}

async function runConvert(inp: string, out: string, o: ConvertOpts): Promise<void> {
  const t0 = performance.now();
  memoryBudget(o.maxMemory); // a bad --max-memory is reported first
  const fmt = outFormat(out, o);
  if (fmt === 'neox') {
    checkOutputFolder(out, 'OUT', MARKER);
    checkNotInside(inp, out);
  } else {
    checkOutputs([['OUT', out]], [inp]);
  }
  const tensors = toWrite(readInput(inp, o), o.dtype === undefined ? undefined : DTYPES[o.dtype], fmt);
  let what: string;
  if (fmt === 'neox') what = writeNeox(inp, out, o, tensors);
  else {
    checkFreeSpace(out, bytesOf(tensors) + (1 << 20), 'OUT');
    commitStaged([fmt === 'torch' ? stageTorchBin(out, tensors) : stageSafetensorsAny(out, tensors)]);
    what = fmt === 'torch' ? 'torch.save zip' : 'safetensors';
  }
  const dtypes = [...new Set([...tensors.values()].map((t) => t.dtype))].sort().join('/');
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(`wrote ${quote(out)}: ${tensors.size} tensors (${dtypes}, ${formatBytes(bytesOf(tensors))}), ${what}, in ${secs} s\n`);
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert weights between .bin (torch.save) and .safetensors, or write a GPT-NeoX checkpoint folder (--to neox)')
    .argument('<in>', 'weights (.bin/.pt or .safetensors, told apart by content) or a GPT-NeoX checkpoint folder (DIR or DIR/global_step<N>)')
    .argument('<out>', 'OUT.safetensors or OUT.bin/.pt (by extension); with --to neox, a new or empty folder')
    .option('--dtype <dtype>', 'store floating-point tensors as f32, f16 or bf16 (default: as stored in IN)')
    .option('--to <format>', 'neox: the folder the official GPT-NeoX trainer loads with load: (DIR/latest, DIR/global_step<N>/, DIR/neox.yml)')
    .option('--config <file>', 'with --to neox: the official GPT-NeoX config of the model; DIR/neox.yml is written from it')
    .option('--iteration <n>', 'with --to neox: the checkpoint tag global_step<N>', intFlag, 0)
    .option('--max-memory <size>', 'memory limit, e.g. 8G (default: TOKENFORMER_MAX_MEMORY or the machine\'s)')
    .action((inp: string, out: string, o: ConvertOpts) => runConvert(inp, out, o));
}
