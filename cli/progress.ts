// Training progress for the CLI: a cli-progress bar (step, loss, tokens/s, ETA) on a TTY,
// plain log lines otherwise (CI logs, pipes). Omits: multi-bar layouts and colours.

import cliProgress from 'cli-progress';
import type { HistoryPoint } from '../src/train/checkpoint.ts';

export interface Reporter {
  update(p: HistoryPoint): void;
  /** A message on its own line (keeps the bar intact on a TTY). */
  log(msg: string): void;
  stop(): void;
}

function fmt(x: number | undefined, digits = 4): string {
  return x === undefined ? '—' : x.toFixed(digits);
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/**
 * A reporter for steps (start.step, total]. Tokens/s is measured over this process's steps
 * only; `tty` defaults to whether stdout is a terminal.
 */
export function makeReporter(
  label: string, start: { step: number; tokens: number }, total: number, tty = Boolean(process.stdout.isTTY),
): Reporter {
  const t0 = performance.now();
  const startStep = start.step;
  let lastVal: number | undefined;
  const rate = (p: HistoryPoint) => {
    const s = (performance.now() - t0) / 1000;
    return s > 0 ? (p.tokens - start.tokens) / s : 0;
  };
  const plainEvery = Math.max(1, Math.round((total - startStep) / 20));
  if (tty) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {value}/{total} | loss {loss} | val {val} | {tps} tok/s | ETA {eta_formatted}`,
      stream: process.stdout, hideCursor: true, barsize: 24, etaBuffer: 20,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, startStep, { loss: '—', val: '—', tps: '0' });
    return {
      update(p) {
        if (p.valLoss !== undefined) lastVal = p.valLoss;
        bar.update(p.step, { loss: fmt(p.loss), val: fmt(lastVal), tps: rate(p).toFixed(0) });
      },
      log(msg) {
        bar.stop();
        process.stdout.write(`${msg}\n`);
        bar.start(total, bar.getProgress() * total, {});
      },
      stop() {
        bar.stop();
      },
    };
  }
  return {
    update(p) {
      if (p.valLoss !== undefined) lastVal = p.valLoss;
      if (p.step % plainEvery !== 0 && p.valLoss === undefined && p.step !== total) return;
      const done = p.step - startStep;
      const elapsed = (performance.now() - t0) / 1000;
      const eta = done > 0 ? (elapsed / done) * (total - p.step) : NaN;
      const val = p.valLoss !== undefined ? ` | val ${fmt(p.valLoss)}` : '';
      process.stdout.write(`${label} step ${p.step}/${total} | loss ${fmt(p.loss)}${val} | lr ${p.lr.toExponential(2)} | ${rate(p).toFixed(0)} tok/s | ETA ${fmtTime(eta)}\n`);
    },
    log(msg) {
      process.stdout.write(`${msg}\n`);
    },
    stop() {},
  };
}
