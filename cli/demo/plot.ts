// Loss-versus-training-FLOPs curves as SVG (vega-lite 5 compiled to vega, rendered headless by
// vega's View.toSVG) and PNG (the SVG rasterized by resvg). Omits: interactive output and
// canvas rendering (node-canvas is not a dependency).

import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One point of a curve. */
export interface CurvePoint {
  run: string; // legend label
  flops: number; // cumulative training FLOPs
  loss: number;
  kind: 'validation' | 'training'; // training points are drawn faint
}

export interface PlotMarks {
  /** Vertical rule: where growth happened (FLOPs). */
  growthFlops?: number;
  /** Horizontal rule: the target loss (the from-scratch final validation loss). */
  targetLoss?: number;
  title: string;
  /** One line or several (vega estimates text width without a canvas; keep lines short). */
  subtitle?: string | string[];
}

// NOTE: resvg draws text only with fonts it can find; DejaVu Sans ships with most Linux
// distributions, the rest are fallbacks. The SVG names the same families.
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

/**
 * The y range: from just under the lowest loss to the highest validation loss after the
 * first 10% of the FLOPs, so the steep first steps (≈ ln 256 = 5.5) do not flatten the
 * part of the curves where the runs differ. Points above are clipped.
 */
export function lossDomain(points: CurvePoint[]): [number, number] {
  const val = points.filter((p) => p.kind === 'validation');
  const maxF = Math.max(...val.map((p) => p.flops));
  const lo = Math.min(...points.map((p) => p.loss));
  const late = val.filter((p) => p.flops >= 0.1 * maxF).map((p) => p.loss);
  const hi = late.length > 0 ? Math.max(...late) : Math.max(...val.map((p) => p.loss));
  const pad = 0.05 * (hi - lo || 1);
  return [Math.floor((lo - pad) * 20) / 20, Math.ceil((hi + pad) * 20) / 20];
}

/** The vega-lite spec: validation curves as lines with points, training loss faint. */
export function curvesSpec(points: CurvePoint[], marks: PlotMarks): TopLevelSpec {
  const runs = [...new Set(points.map((p) => p.run))];
  const color = { field: 'run', type: 'nominal', title: null, scale: { domain: runs, range: ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'] }, legend: { orient: 'top-right', labelLimit: 400, symbolType: 'stroke', symbolStrokeWidth: 3, symbolOpacity: 1 } } as const;
  const x = { field: 'flops', type: 'quantitative', title: 'training FLOPs', axis: { format: '.2~s', tickCount: 8 } } as const;
  const y = { field: 'loss', type: 'quantitative', title: 'loss (nats per byte)', scale: { zero: false, domain: lossDomain(points) } } as const;
  const layers: object[] = [
    { transform: [{ filter: "datum.kind === 'validation'" }], mark: { type: 'line', point: { size: 18 }, strokeWidth: 2, clip: true }, encoding: { x, y, color } },
    { transform: [{ filter: "datum.kind === 'training'" }], mark: { type: 'line', strokeOpacity: 0.3, strokeWidth: 1, clip: true }, encoding: { x, y, color, detail: { field: 'run' } } },
  ];
  if (marks.growthFlops !== undefined) {
    layers.push({ data: { values: [{ flops: marks.growthFlops, label: 'growth' }] }, mark: { type: 'rule', strokeDash: [4, 4], color: '#555' }, encoding: { x: { field: 'flops', type: 'quantitative' } } });
    layers.push({ data: { values: [{ flops: marks.growthFlops, label: ' growth' }] }, mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, y: 0, color: '#555' }, encoding: { x: { field: 'flops', type: 'quantitative' }, text: { field: 'label' } } });
  }
  if (marks.targetLoss !== undefined) {
    layers.push({ data: { values: [{ loss: marks.targetLoss }] }, mark: { type: 'rule', strokeDash: [2, 3], color: '#1f77b4', strokeOpacity: 0.7 }, encoding: { y: { field: 'loss', type: 'quantitative' } } });
    layers.push({ data: { values: [{ loss: marks.targetLoss, label: 'target: from-scratch final validation loss' }] }, mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -2, x: 0, color: '#1f77b4' }, encoding: { y: { field: 'loss', type: 'quantitative' }, text: { field: 'label' } } });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: marks.title, subtitle: marks.subtitle ?? '', anchor: 'start' },
    width: 720, height: 420, background: 'white', padding: 12,
    data: { values: points },
    layer: layers,
    config: { font: FONT, axis: { labelFontSize: 12, titleFontSize: 13, gridColor: '#e6e6e6' }, legend: { labelFontSize: 12 }, title: { fontSize: 16, subtitleFontSize: 12, subtitleColor: '#555' } },
  } as TopLevelSpec;
}

/** SVG text and PNG bytes (2× scale) of the curves. */
export async function renderCurves(points: CurvePoint[], marks: PlotMarks): Promise<{ svg: string; png: Uint8Array }> {
  const vgSpec = compile(curvesSpec(points, marks)).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  }).render().asPng();
  return { svg, png: new Uint8Array(png) };
}
