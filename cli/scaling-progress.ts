// Progress of `tokenformer scaling`: a cli-progress bar per stage (a plain line every ~10% of a
// stage when stdout is not a terminal) showing the stage's ETA and the whole run's, estimated
// from the measured seconds per update of each size (unseen sizes: scaled by FLOPs per token).
// Omits: multi-bar layouts (stages run one after another).

import cliProgress from 'cli-progress';
import type { PlannedStage, ScalingHooks } from './scaling/experiment.ts';
import type { StagePoint } from './scaling/loop.ts';

function fmtTime(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Seconds per update of each size, measured as stages finish; estimates for the rest. */
export class RunClock {
  private readonly perStep = new Map<number, number>();
  private done = 0;

  constructor(private readonly plan: PlannedStage[], private readonly flopsPerToken: number[]) {}

  /** Seconds per update of a size: measured, else the nearest measured size scaled by FLOPs. */
  secondsPerStep(size: number): number | null {
    const own = this.perStep.get(size);
    if (own !== undefined) return own;
    const known = [...this.perStep.keys()];
    if (known.length === 0) return null;
    const near = known.reduce((a, b) => (Math.abs(b - size) < Math.abs(a - size) ? b : a));
    return this.perStep.get(near)! * Math.max(1, this.flopsPerToken[size] / this.flopsPerToken[near]);
  }

  finishStage(p: PlannedStage, seconds: number): void {
    this.perStep.set(p.size, seconds / p.steps);
    this.done++;
  }

  /**
   * Seconds left: the current stage's `left` updates of size `size` at `current` seconds each
   * (its own rate so far), then every later stage (sizes never seen yet: scaled from this one).
   */
  remaining(size: number, left: number, current: number | null): number {
    const provisional = !this.perStep.has(size) && current !== null;
    if (provisional) this.perStep.set(size, current);
    let s = (current ?? this.secondsPerStep(size) ?? NaN) * left;
    for (const p of this.plan.slice(this.done + 1)) s += (this.secondsPerStep(p.size) ?? NaN) * p.steps;
    if (provisional) this.perStep.delete(size);
    return s;
  }

  get index(): number {
    return this.done;
  }
}

export function scalingHooks(plan: PlannedStage[], flopsPerToken: number[], tty = Boolean(process.stdout.isTTY)): ScalingHooks {
  const clock = new RunClock(plan, flopsPerToken);
  return {
    log: (msg) => process.stdout.write(`${msg}\n`),
    stage(p) {
      const t0 = performance.now();
      const label = `[${clock.index + 1}/${plan.length}] seed ${p.seed} ${p.label}`;
      let lastVal: number | undefined;
      const etas = (pt: StagePoint) => {
        const el = (performance.now() - t0) / 1000;
        const per = pt.step > 0 ? el / pt.step : null;
        return { stage: fmtTime(per === null ? NaN : per * (p.steps - pt.step)), run: fmtTime(clock.remaining(p.size, p.steps - pt.step, per)) };
      };
      const bar = tty ? new cliProgress.SingleBar({
        format: `${label} [{bar}] {value}/{total} | loss {loss} | val {val} | ETA {stageEta} | run ETA {runEta}`,
        stream: process.stdout, hideCursor: true, barsize: 20,
      }, cliProgress.Presets.shades_classic) : null;
      bar?.start(p.steps, 0, { loss: '—', val: '—', stageEta: '?', runEta: '?' });
      const every = Math.max(1, Math.round(p.steps / 10));
      return {
        step(pt) {
          if (pt.valLoss !== undefined) lastVal = pt.valLoss;
          const e = etas(pt);
          const val = lastVal === undefined ? '—' : lastVal.toFixed(4);
          if (bar) bar.update(pt.step, { loss: pt.loss?.toFixed(4) ?? '—', val, stageEta: e.stage, runEta: e.run });
          else if (pt.step % every === 0 || pt.step === p.steps) {
            process.stdout.write(`${label} ${pt.step}/${p.steps} | loss ${pt.loss?.toFixed(4)} | val ${val} | ETA ${e.stage} | run ETA ${e.run}\n`);
          }
        },
        done() {
          bar?.stop();
          clock.finishStage(p, (performance.now() - t0) / 1000);
        },
      };
    },
  };
}
