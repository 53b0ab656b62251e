// Per-kernel GPU time from timestamp queries, for tuning (bench, not tests): while enabled,
// every dispatch gets its own compute pass with begin/end timestamps, labelled by kernel key.
// Omits: overlap accounting (passes are serialized anyway), CPU-side encode time.
// NOTE: needs the 'timestamp-query' feature; open.ts requests it when the adapter has it.

import { MAP_READ, USAGE } from './usage.ts';

/** Query pairs per batch; GpuContext flushes at this many dispatches. */
export const PROFILE_SLOTS = 512;

export interface KernelTime {
  count: number;
  ms: number;
}

export class Profiler {
  private readonly set: GPUQuerySet;
  private labels: string[] = [];
  private readonly pendingReads: Promise<void>[] = [];
  readonly totals = new Map<string, KernelTime>();

  constructor(private readonly device: GPUDevice) {
    this.set = device.createQuerySet({ type: 'timestamp', count: 2 * PROFILE_SLOTS });
  }

  /** Timestamp writes for the next dispatch's pass. */
  next(label: string): GPUComputePassTimestampWrites {
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  get full(): boolean {
    return this.labels.length >= PROFILE_SLOTS;
  }

  /** Encodes the resolve of this batch's queries; call before finish(). */
  resolve(enc: GPUCommandEncoder): (() => void) | null {
    const n = this.labels.length;
    if (n === 0) return null;
    const bytes = 16 * n;
    const res = this.device.createBuffer({ size: bytes, usage: USAGE.QUERY_RESOLVE | USAGE.COPY_SRC });
    const stage = this.device.createBuffer({ size: bytes, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    enc.resolveQuerySet(this.set, 0, 2 * n, res, 0);
    enc.copyBufferToBuffer(res, 0, stage, 0, bytes);
    const labels = this.labels;
    this.labels = [];
    // After submit: read the times back asynchronously.
    return () => {
      this.pendingReads.push(stage.mapAsync(MAP_READ).then(() => {
        const t = new BigUint64Array(stage.getMappedRange());
        labels.forEach((label, i) => {
          const k = this.totals.get(label) ?? { count: 0, ms: 0 };
          k.count++;
          k.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
          this.totals.set(label, k);
        });
        stage.unmap();
        stage.destroy();
        res.destroy();
      }));
    };
  }

  /** Waits for every batch's times. */
  async settle(): Promise<Map<string, KernelTime>> {
    await Promise.all(this.pendingReads.splice(0));
    return this.totals;
  }

  destroy(): void {
    this.set.destroy();
  }
}
