// The scaling experiment's figures, with the demo's stack (vega-lite → vega SVG → resvg PNG):
// the paper's Fig. 3 form (final validation loss of each size against the cumulative training
// FLOPs of the series, one line per path), and the validation curves of every run.
// Omits: error bars (the report gives the spread over seeds in numbers).

import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface SeriesPoint {
  path: string; // legend label
  flops: number; // cumulative training FLOPs of the series up to this size
  loss: number; // final validation loss of this size
  label: string; // e.g. "279k"
}

export interface CurvePoint {
  run: string;
  flops: number;
  loss: number;
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

const CONFIG = {
  font: FONT, axis: { labelFontSize: 12, titleFontSize: 13, gridColor: '#e6e6e6' }, legend: { labelFontSize: 12 },
  title: { fontSize: 16, subtitleFontSize: 12, subtitleColor: '#555' },
};

function yDomain(losses: number[]): [number, number] {
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const pad = 0.06 * (hi - lo || 1);
  return [Math.floor((lo - pad) * 50) / 50, Math.ceil((hi + pad) * 50) / 50];
}

function color(domain: string[]) {
  return { field: 'path', type: 'nominal', title: null, scale: { domain, range: COLORS }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 420 } } as const;
}

/** Fig. 3 form: one point per size, cumulative cost on a log axis, a line per path. */
export function seriesSpec(points: SeriesPoint[], title: string, subtitle: string[]): TopLevelSpec {
  const paths = [...new Set(points.map((p) => p.path))];
  const x = { field: 'flops', type: 'quantitative', title: 'cumulative training FLOPs of the series', scale: { type: 'log', nice: false, padding: 24 }, axis: { format: '.2~s' } } as const;
  const y = { field: 'loss', type: 'quantitative', title: 'final validation loss', scale: { zero: false, domain: yDomain(points.map((p) => p.loss)) } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle, anchor: 'start' }, width: 720, height: 420, background: 'white', padding: 12,
    data: { values: points },
    layer: [
      { mark: { type: 'line', point: { size: 60, filled: true }, strokeWidth: 2 }, encoding: { x, y, color: color(paths) } },
      { mark: { type: 'text', dx: 6, dy: -8, align: 'left', fontSize: 11 }, encoding: { x, y, text: { field: 'label' }, color: color(paths) } },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/** Validation loss against the run's cumulative FLOPs, one line per run. */
export function curvesSpec(points: CurvePoint[], title: string, subtitle: string[]): TopLevelSpec {
  const runs = [...new Set(points.map((p) => p.run))];
  const data = points.map((p) => ({ path: p.run, flops: p.flops, loss: p.loss }));
  const late = points.filter((p) => p.flops > 0.05 * Math.max(...points.map((q) => q.flops))).map((p) => p.loss);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle, anchor: 'start' }, width: 720, height: 420, background: 'white', padding: 12,
    data: { values: data },
    mark: { type: 'line', point: { size: 14 }, strokeWidth: 1.6, clip: true },
    encoding: {
      x: { field: 'flops', type: 'quantitative', title: 'cumulative training FLOPs of the run', axis: { format: '.2~s', tickCount: 8 } },
      y: { field: 'loss', type: 'quantitative', title: 'validation loss', scale: { zero: false, domain: yDomain(late.length > 0 ? late : points.map((p) => p.loss)) } },
      color: color(runs),
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** SVG text and PNG bytes (2× scale). */
export async function renderSpec(spec: TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 }, background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  }).render().asPng();
  return { svg, png: new Uint8Array(png) };
}
