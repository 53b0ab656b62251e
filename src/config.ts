// The model config: the official GPT-NeoX keys TokenFormer uses, normalized to one type.
// Parsing (YAML/JSON, `-`/`_` spellings, validation) lives in src/config-parse.ts.
// Omits: training keys (the trainer reads its own flags) and every non-TokenFormer variant.

import type { Variant } from './backend.ts';

export interface ModelConfig {
  numLayers: number; // num_layers
  hiddenSize: number; // hidden_size (C)
  numHeads: number; // num_attention_heads (H)
  qkvSlots: number; // qkv_slot_num: tokens n of the query/key/value Pattention layers
  projSlots: number; // proj_slot_num: tokens n of the attention output Pattention layer
  ffnSlots: number; // ffn_slot_num: tokens n of the Pattention FFN
  maxPositions: number; // max_position_embeddings
  rotaryPct: number; // rotary_pct
  rotaryBase: number; // rotary_emb_base (default 10000)
  variant: Variant; // norm_activation_type (default l2_norm_gelu)
  tied: boolean; // !no_weight_tying
  eps: number; // layernorm_epsilon (default 1e-5)
  vocabSize: number; // vocab_size (explicit; GPT-NeoX pads the tokenizer's to 50304)
  /**
   * The normalization token count (the n inside √n) of each Pattention layer, by official
   * parameter-name prefix, e.g. "sequential.2.attention.query". Absent = the layer's
   * current token count. Growth with --init zero writes the old counts here.
   * Serialized as the config key `tokenformer_norm_slots` (our extension).
   */
  normSlots: Record<string, number>;
  /**
   * Per-layer token counts n, by official parameter-name prefix: a layer listed here has this
   * many key/value tokens instead of its kind's count (qkvSlots, projSlots or ffnSlots); e.g.
   * after growing single layers. Absent or {} = every layer has its kind's count.
   * Serialized as the config key `tokenformer_layer_slots` (our extension).
   */
  layerSlots?: Record<string, number>;
}

/**
 * Upper bounds no real TokenFormer reaches (the largest official one has 40 layers, hidden
 * 2048 and a few thousand tokens per layer), so an absurd value (num_layers 10⁶,
 * qkv_slot_num 10⁸) is refused at once instead of allocating for minutes. spec/config.md.
 */
export const CONFIG_LIMITS = {
  num_layers: 1024,
  hidden_size: 65_536,
  num_attention_heads: 65_536,
  qkv_slot_num: 1 << 20,
  proj_slot_num: 1 << 20,
  ffn_slot_num: 1 << 20,
  max_position_embeddings: 1 << 24,
  vocab_size: 1 << 24,
} as const;

/** Token counts in tokenformer_norm_slots / tokenformer_layer_slots share the slot limit. */
export const MAX_LAYER_SLOTS = 1 << 20;

/** Bytes a config file may have: the official ones are under 10 KB (cli/io.ts checks the same bound). */
export const MAX_CONFIG_BYTES = 16 * 2 ** 20;

/** Top-level keys a config file may have (the official ones have about 90). */
export const MAX_CONFIG_KEYS = 10_000;

/** ':', ',' and '?' characters a config file may hold: a cheap bound on its entries, checked before parsing. */
export const MAX_CONFIG_SEPARATORS = 20_000;

/** head_dim = hidden / heads. */
export function headDim(c: ModelConfig): number {
  return c.hiddenSize / c.numHeads;
}

/** int(head_dim · rotary_pct), as GPT-NeoX computes it. */
export function rotaryDim(c: ModelConfig): number {
  return Math.floor(headDim(c) * c.rotaryPct);
}
