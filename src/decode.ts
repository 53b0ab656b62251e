// Incremental decoding with a key/value cache, forward only, on any backend (the official
// GPT-NeoX `layer_past` path): the prompt runs as one batch, then each new token attends to
// the cached rotated keys and values of every earlier position. spec/decode.md.
// Omits: backward (inference only), rows of different lengths in one batch (padding), beam
// search, cache eviction or sliding windows, and a fused cached-attention kernel (see NOTE).
//
// Dimension legend: B batch, Tq new tokens this step, past cached positions, Tk = past + Tq,
// C hidden, H heads, D head dim, G = B·H, V vocab.
//   h = LN₀(x); q, k, v = Pattention_{q,k,v}(h)               (B·Tq, C)
//   q, k ← rotary at positions past … Tk−1                    (B, Tq, H, D)
//   K = [K_past; k], V = [V_past; v]                          (B, H, Tk, D)   the new cache
//   a = softmax(q·Kᵀ/√D, row i keeps columns ≤ past + i)·V    (B, Tq, H, D)
//   x = x + Pattention_proj(a);  x = x + Pattention_ffn(LN₀(x))
// NOTE: the backend contract has no concat, slice or non-square causal softmax, so rows move
// with `embedding` (a row gather) and `embeddingBackward` (a row scatter into zeros). Both copy
// values exactly (0 + x = x), so on the CPU reference a cached step computes bit for bit what a
// full recompute computes for those rows. The new queries' scores become the last Tq rows of a
// (G, Tk, Tk) square for `causalSoftmax`, whose row past + i keeps exactly columns ≤ past + i;
// the other rows are thrown away. That square costs O(G·Tk²) per layer and step (Tk·Tk·4 bytes
// per head): small next to the Pattention layers up to about a thousand positions; a kernel for
// a (Tq, Tk) causal softmax would make it O(G·Tq·Tk).

import type { Backend, Handle } from './backend.ts';
import type { BlockParams } from './block.ts';
import { attention, pattention } from './compose.ts';
import { UserError } from './errors.ts';
import type { TokenFormer } from './model.ts';
import { EMBEDDING, finalNormPrefix } from './params.ts';

/** One block's cache: rotated keys and values of every cached position. */
export interface LayerKV<T> {
  k: T; // (B, H, past, D)
  v: T; // (B, H, past, D)
}

/** The whole model's cache; `layers` is empty while nothing is cached. */
export interface KVCache<T> {
  batch: number;
  /** Cached positions (past). */
  length: number;
  layers: LayerKV<T>[];
}

export function emptyCache<T>(batch: number): KVCache<T> {
  return { batch, length: 0, layers: [] };
}

export function releaseCache<T extends Handle>(be: Backend<T>, cache: KVCache<T>): void {
  for (const l of cache.layers) {
    be.dispose(l.k);
    be.dispose(l.v);
  }
  cache.layers = [];
  cache.length = 0;
}

/** Row ids that move (G, ·, ·) rows into a (G, Tk, ·) layout, made once per step. */
interface Placement<T> {
  G: number;
  past: number;
  Tk: number;
  old: T | null; // i32 (1, G·past): row g·Tk + t of cached row (g, t)
  fresh: T; // i32 (1, G·Tq): row g·Tk + past + i of new row (g, i)
}

function placement<T extends Handle>(be: Backend<T>, G: number, past: number, Tq: number): Placement<T> {
  const Tk = past + Tq;
  const old = new Int32Array(G * past), fresh = new Int32Array(G * Tq);
  for (let g = 0; g < G; g++) {
    for (let t = 0; t < past; t++) old[g * past + t] = g * Tk + t;
    for (let i = 0; i < Tq; i++) fresh[g * Tq + i] = g * Tk + past + i;
  }
  return {
    G, past, Tk,
    old: past > 0 ? be.uploadInt(old, [1, G * past]) : null,
    fresh: be.uploadInt(fresh, [1, G * Tq]),
  };
}

function releasePlacement<T extends Handle>(be: Backend<T>, pl: Placement<T>): void {
  if (pl.old) be.dispose(pl.old);
  be.dispose(pl.fresh);
}

/** rows (G, n, W) scattered to rows `ids` of a zero (G·Tk, W) tensor. */
function scatterRows<T extends Handle>(be: Backend<T>, rows: T, ids: T, pl: Placement<T>): T {
  const W = rows.shape[rows.shape.length - 1];
  const flat = be.reshape(rows, [1, rows.size / W, W]);
  const out = be.ops.embeddingBackward(ids, flat, pl.G * pl.Tk); // (G·Tk, W)
  be.dispose(flat);
  return out;
}

/** [cached; fresh] along time: (B, H, past, D) and (B, H, Tq, D) → (B, H, Tk, D). */
function appendTime<T extends Handle>(be: Backend<T>, cached: T | null, fresh: T, pl: Placement<T>): T {
  const [B, H, , D] = fresh.shape;
  if (!cached || !pl.old) return be.reshape(fresh, fresh.shape);
  const a = scatterRows(be, cached, pl.old, pl); // (G·Tk, D), fresh rows 0
  const b = scatterRows(be, fresh, pl.fresh, pl); // (G·Tk, D), cached rows 0
  const sum = be.ops.add(a, b);
  const out = be.reshape(sum, [B, H, pl.Tk, D]);
  for (const t of [a, b, sum]) be.dispose(t);
  return out;
}

/** Causal attention of the new queries on the whole cache. q: (B, Tq, H, D); K, V: (B, H, Tk, D). */
function cachedAttention<T extends Handle>(be: Backend<T>, q: T, K: T, V: T, pl: Placement<T>): T {
  const [B, Tq, H, D] = q.shape;
  const qh = be.ops.permute0213(q); // (B, H, Tq, D)
  const s = be.ops.matmul(qh, K, false, true); // (B, H, Tq, Tk)
  const placed = scatterRows(be, s, pl.fresh, pl); // (G·Tk, Tk): s at rows past…Tk−1 of each square
  const square = be.reshape(placed, [pl.G, pl.Tk, pl.Tk]);
  const pSquare = be.ops.causalSoftmax(square, 1 / Math.sqrt(D)); // (G, Tk, Tk)
  const pRows = be.reshape(pSquare, [pl.G * pl.Tk, pl.Tk]);
  const p1 = be.ops.embedding(pl.fresh, pRows); // (1, G·Tq, Tk): the new queries' rows back
  const p = be.reshape(p1, [B, H, Tq, pl.Tk]);
  const oh = be.ops.matmul(p, V, false, false); // (B, H, Tq, D)
  const out = be.ops.permute0213(oh); // (B, Tq, H, D)
  for (const t of [qh, s, placed, square, pSquare, pRows, p1, p, oh]) be.dispose(t);
  return out;
}

/** Pattention, forward only. x: (N, C) → (N, C). */
function patt<T extends Handle>(be: Backend<T>, x: T, k: T, v: T, p: BlockParams<T>['norm']['q']): T {
  const r = pattention(be, x, k, v, p);
  r.saved.release();
  return r.out;
}

/** LN₀ (non-parametric), forward only. */
function ln0<T extends Handle>(be: Backend<T>, x: T, eps: number): T {
  const r = be.ops.layerNorm(x, null, null, eps);
  be.dispose(r.mean);
  be.dispose(r.rstd);
  return r.y;
}

/** The attention half of a block: x (B·Tq, C) → a (B·Tq, C) and this layer's new cache. */
function attentionStep<T extends Handle>(
  be: Backend<T>, h: T, p: BlockParams<T>, kv: LayerKV<T> | null, pl: Placement<T>, B: number, Tq: number,
): { a: T; kv: LayerKV<T> } {
  const C = h.shape[1];
  const heads4 = [B, Tq, p.heads, C / p.heads];
  const q = patt(be, h, p.k.q, p.v.q, p.norm.q); // (B·Tq, C)
  const k = patt(be, h, p.k.k, p.v.k, p.norm.k);
  const v = patt(be, h, p.k.v, p.v.v, p.norm.v);
  const [q4, k4, v4] = [q, k, v].map((t) => be.reshape(t, heads4)); // (B, Tq, H, D)
  const rot = { ...p.rotary, offset: pl.past }; // positions past … Tk−1
  const qr = be.ops.rotary(q4, rot, false);
  const kr = be.ops.rotary(k4, rot, false);
  const kh = be.ops.permute0213(kr); // (B, H, Tq, D)
  const vh = be.ops.permute0213(v4);
  const next = { k: appendTime(be, kv?.k ?? null, kh, pl), v: appendTime(be, kv?.v ?? null, vh, pl) };
  let att: T;
  if (pl.past === 0) {
    // Nothing cached: the training path's causal attention (fused where the backend has it).
    const r = attention(be, qr, kr, v4);
    r.saved.release();
    att = r.out;
  } else {
    att = cachedAttention(be, qr, next.k, next.v, pl);
  }
  const a = be.reshape(att, [B * Tq, C]);
  for (const t of [q, k, v, q4, k4, v4, qr, kr, kh, vh, att]) be.dispose(t);
  return { a, kv: next };
}

/** One block on the new rows x (B·Tq, C) → (B·Tq, C), with this layer's new cache. */
function blockStep<T extends Handle>(
  be: Backend<T>, x: T, p: BlockParams<T>, kv: LayerKV<T> | null, pl: Placement<T>, B: number, Tq: number,
): { out: T; kv: LayerKV<T> } {
  const h = ln0(be, x, p.eps);
  const att = attentionStep(be, h, p, kv, pl, B, Tq);
  const proj = patt(be, att.a, p.k.proj, p.v.proj, p.norm.proj);
  const x1 = be.ops.add(x, proj);
  const h2 = ln0(be, x1, p.eps);
  const ffn = patt(be, h2, p.k.ffn, p.v.ffn, p.norm.ffn);
  const out = be.ops.add(x1, ffn);
  for (const t of [h, att.a, proj, x1, h2, ffn]) be.dispose(t);
  return { out, kv: att.kv };
}

function checkStep<T extends Handle>(model: TokenFormer<T>, ids: T, cache: KVCache<T>): void {
  const c = model.config;
  if (ids.shape.length !== 2) throw new UserError(`token ids must be (B, T), got [${ids.shape}]`);
  const [B, Tq] = ids.shape;
  if (Tq < 1) throw new UserError('a decode step needs at least one new token');
  if (cache.batch !== B) throw new UserError(`the cache holds batch ${cache.batch}, the ids have ${B} rows`);
  if (cache.length + Tq > c.maxPositions) {
    throw new UserError(`sequence length ${cache.length + Tq} exceeds max_position_embeddings ${c.maxPositions}`);
  }
}

/** x (B·Tq, C) → its last row per batch (B, C), a copy. */
function lastRows<T extends Handle>(be: Backend<T>, x: T, B: number, Tq: number): T {
  const ids = be.uploadInt(Int32Array.from({ length: B }, (_, b) => b * Tq + Tq - 1), [1, B]);
  const picked = be.ops.embedding(ids, x); // (1, B, C)
  const out = be.reshape(picked, [B, x.shape[1]]);
  be.dispose(ids);
  be.dispose(picked);
  return out;
}

/** Final LayerNorm and head: x (R, C) → logits (R, V). */
function head<T extends Handle>(model: TokenFormer<T>, x: T): T {
  const be = model.backend;
  const norm = finalNormPrefix(model.config);
  const lnf = be.ops.layerNorm(x, model.params.get(`${norm}.weight`)!, model.params.get(`${norm}.bias`)!, model.config.eps);
  const logits = be.ops.matmul(lnf.y, model.headWeight(), false, true); // (R, V)
  for (const t of [lnf.y, lnf.mean, lnf.rstd]) be.dispose(t);
  return logits;
}

export interface StepOptions {
  /** Only the last position's logits, (B, 1, V): what sampling needs, Tq× less head work. */
  lastOnly?: boolean;
}

/**
 * Runs the new tokens ids (i32 (B, Tq)) at positions cache.length … cache.length + Tq − 1 and
 * returns their logits (B, Tq, V) (or (B, 1, V) with lastOnly) and the cache extended by them.
 * The old cache's tensors are consumed (freed); the caller owns the logits and the new cache.
 */
export function decodeStep<T extends Handle>(
  model: TokenFormer<T>, ids: T, cache: KVCache<T>, opts: StepOptions = {},
): { logits: T; cache: KVCache<T> } {
  checkStep(model, ids, cache);
  const be = model.backend;
  const c = model.config;
  const [B, Tq] = ids.shape;
  const pl = placement(be, B * c.numHeads, cache.length, Tq);
  const emb = be.ops.embedding(ids, model.params.get(EMBEDDING)!); // (B, Tq, C)
  let x = be.reshape(emb, [B * Tq, c.hiddenSize]);
  be.dispose(emb);
  const layers: LayerKV<T>[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const r = blockStep(be, x, model.blockParams(i), cache.layers[i] ?? null, pl, B, Tq);
    be.dispose(x);
    x = r.out;
    layers.push(r.kv);
  }
  releaseCache(be, cache);
  releasePlacement(be, pl);
  const rows = opts.lastOnly ? lastRows(be, x, B, Tq) : x;
  const logits2 = head(model, rows); // (B·Tq or B, V)
  if (rows !== x) be.dispose(rows);
  be.dispose(x);
  const logits = be.reshape(logits2, [B, opts.lastOnly ? 1 : Tq, c.vocabSize]);
  be.dispose(logits2);
  return { logits, cache: { batch: B, length: pl.Tk, layers } };
}
