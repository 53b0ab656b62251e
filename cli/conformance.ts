// `tokenformer conformance export | run | check`: the conformance kit's commands (the format and
// the rules: spec/conformance.md). export writes a suite; run writes one of our backends' outputs
// for a suite; check compares any candidate's outputs with the suite and prints a report.
// Omits: the work itself (cli/conformance/).

import { readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { readConfigFile, NEOX_20B_VOCAB } from '../src/config-parse.ts';
import { UserError } from '../src/errors.ts';
import { checkSuite } from './conformance/check.ts';
import { exportSuite } from './conformance/export.ts';
import { CLASSES, type ClassName } from './conformance/format.ts';
import { formatReport, reportJson } from './conformance/report.ts';
import { runSuite } from './conformance/run-backend.ts';

function intFlag(name: string, min: number) {
  return (v: string): number => {
    const x = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(x) || x < min) throw new UserError(`--${name} expects an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return x;
  };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

interface ExportOpts { config?: string; seed: number; only?: string; batch: number; seq: number; vocab?: number; quiet?: boolean }

async function exportCmd(dir: string, o: ExportOpts): Promise<void> {
  let config;
  if (o.config) {
    let c;
    try {
      c = readConfigFile(o.config, o.vocab !== undefined ? { vocabFromWeights: o.vocab } : {});
    } catch (e) {
      if (!(e instanceof UserError) || !/missing vocab_size/.test(e.message)) throw e;
      c = readConfigFile(o.config, { vocabFromWeights: NEOX_20B_VOCAB });
      process.stderr.write(`note: ${o.config} has no vocab_size; using ${NEOX_20B_VOCAB} (GPT-NeoX-20B's padded tokenizer; --vocab changes it)\n`);
    }
    const stem = basename(o.config, extname(o.config)).replace(/[^A-Za-z0-9_.-]/g, '_');
    config = { config: c, stem, batch: o.batch, seq: Math.min(o.seq, c.maxPositions) };
  }
  const t0 = performance.now();
  const names = await exportSuite(dir, {
    seed: o.seed, only: o.only, config, version: version(),
    command: `tokenformer conformance export ${process.argv.slice(4).join(' ')}`.trim(),
    log: o.quiet ? undefined : (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(`wrote ${names.length} cases to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

interface CheckOpts { class: string; json?: boolean; only?: string }

async function checkCmd(suite: string, candidate: string, o: CheckOpts): Promise<void> {
  if (!(CLASSES as readonly string[]).includes(o.class)) throw new UserError(`--class must be one of ${CLASSES.join(', ')}, got ${JSON.stringify(o.class)}`);
  const report = checkSuite(suite, candidate, o.class as ClassName, o.only);
  const text = o.json ? reportJson(report) : formatReport(report);
  if (report.summary.failed === 0) {
    process.stdout.write(text);
    return;
  }
  // NOTE: a failed check exits 1 (2 is bad input). The CLI's main maps only errors to exit codes
  // (UserError 2, anything else 1 with "error: internal"), so exit here, once stdout has drained.
  await new Promise<void>((done) => process.stdout.write(text, () => done()));
  process.exit(1);
}

interface RunOpts { backend: string; only?: string }

async function runCmd(suite: string, out: string, o: RunOpts): Promise<void> {
  const r = await runSuite(suite, out, o.backend, o.only);
  process.stdout.write(`${r.backend}: wrote outputs of ${r.ran} cases to ${out}${r.unsupported ? ` (${r.unsupported} declared unsupported)` : ''}\n`);
}

export function registerConformance(program: Command): void {
  const cmd = program.command('conformance').description('a conformance kit for any TokenFormer implementation (spec/conformance.md)');
  cmd.command('export <dir>')
    .description('write the conformance suite (expected values from the CPU reference)')
    .option('--config <path>', 'an official GPT-NeoX YAML (or JSON) config: only its model, train and grow cases')
    .option('--seed <s>', 'seed of every input', intFlag('seed', 0), 1234)
    .option('--only <globs>', 'comma-separated globs over case names, e.g. "model_*,pattention_*"')
    .option('--batch <b>', 'batch size of the --config cases', intFlag('batch', 1), 2)
    .option('--seq <t>', 'sequence length of the --config cases', intFlag('seq', 1), 8)
    .option('--vocab <v>', 'vocab_size for a config without one (default 50304)', intFlag('vocab', 1))
    .option('--quiet', 'no line per case')
    .action(exportCmd);
  cmd.command('check <suite> <candidate>')
    .description('compare a candidate\'s outputs (CANDIDATE/<case>/outputs.safetensors) with the suite; exit 1 on any failure')
    .option('--class <name>', `tolerance class: ${CLASSES.join(', ')}`, 'reference-f32')
    .option('--json', 'the report as JSON')
    .option('--only <globs>', 'check only these cases')
    .action(checkCmd);
  cmd.command('run <suite> <out>')
    .description('run one of our backends on a suite and write its outputs as a candidate folder')
    .option('--backend <name>', 'cpu | webgpu | gpujs-<mode>', 'cpu')
    .option('--only <globs>', 'run only these cases')
    .action(runCmd);
}
