// Tests for src/config-parse.ts: the official GPT-NeoX configs, key spellings, JSON, every
// rejection rule, and the configToYaml round trip.

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  NEOX_20B_VOCAB, configFromObject, configToYaml, parseConfig, readConfigFile,
} from '../src/config-parse.ts';
import { type ModelConfig, rotaryDim } from '../src/config.ts';
import { UserError } from '../src/errors.ts';
import { paramSpecs, pattentionLayers } from '../src/params.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'official-configs');
const official = (f: string) => readFileSync(join(DIR, f), 'utf8');
const V = { vocabFromWeights: NEOX_20B_VOCAB };

function sizes(c: ModelConfig) {
  return [c.numLayers, c.hiddenSize, c.numHeads, c.qkvSlots, c.projSlots, c.ffnSlots, c.maxPositions];
}

describe('official configs', () => {
  it('all five fixture files are present', () => {
    expect(readdirSync(DIR).filter((f) => f.endsWith('.yml')).length).toBe(5);
  });

  const expected: [string, number[]][] = [
    ['150M_eval.yml', [12, 768, 12, 768, 768, 3072, 2048]],
    ['150M_train_pile.yml', [12, 768, 12, 768, 768, 3072, 2048]],
    ['450M_eval.yml', [24, 1024, 16, 1024, 1024, 4096, 2048]],
    ['354M_train_openwebtext2_basemodel.yml', [24, 1024, 16, 768, 768, 3072, 1024]],
    ['354M_to_757M_train_openwebtext2_60k.yml', [24, 1024, 16, 1792, 1792, 7168, 1024]],
  ];
  for (const [file, want] of expected) {
    it(`${file} parses to the expected model`, () => {
      const c = readConfigFile(join(DIR, file), V);
      expect(sizes(c)).toEqual(want);
      expect(c).toMatchObject({
        rotaryPct: 0.25, rotaryBase: 10000, variant: 'l2_norm_gelu', tied: true, eps: 1e-5,
        vocabSize: 50304, normSlots: {},
      });
      expect(rotaryDim(c)).toBe(c.hiddenSize / c.numHeads / 4);
    });
  }

  it('the 354M → 757M pair differs only in token counts', () => {
    const a = readConfigFile(join(DIR, '354M_train_openwebtext2_basemodel.yml'), V);
    const b = readConfigFile(join(DIR, '354M_to_757M_train_openwebtext2_60k.yml'), V);
    expect({ ...b, qkvSlots: 0, projSlots: 0, ffnSlots: 0 }).toEqual({ ...a, qkvSlots: 0, projSlots: 0, ffnSlots: 0 });
    expect([a.qkvSlots, a.projSlots, a.ffnSlots]).toEqual([768, 768, 3072]);
    expect([b.qkvSlots, b.projSlots, b.ffnSlots]).toEqual([1792, 1792, 7168]);
  });

  it('without vocab_size or weights, says the official configs omit it', () => {
    expect(() => parseConfig(official('150M_eval.yml'), '150M_eval.yml'))
      .toThrow(/^150M_eval\.yml: missing vocab_size: the official configs omit it .*50304/);
  });

  it('keys spelled with "-" read the same as with "_"', () => {
    const text = official('150M_eval.yml');
    const dashed = text.replace(/"([a-z0-9_-]+)":/g, (_, k: string) => `"${k.replace(/_/g, '-')}":`);
    expect(dashed).toContain('"num-attention-heads"');
    expect(parseConfig(dashed, 'dashed', V)).toEqual(parseConfig(text, 'plain', V));
  });

  it('JSON with the same keys reads the same', () => {
    const obj = parseYaml(official('450M_eval.yml')) as Record<string, unknown>;
    const json = JSON.stringify({ ...obj, vocab_size: 50304 }, null, 2);
    expect(parseConfig(json, 'x.json')).toEqual(readConfigFile(join(DIR, '450M_eval.yml'), V));
  });
});

/** A small valid config as raw official keys; override fields per case. */
const base = {
  num_layers: 2, hidden_size: 32, num_attention_heads: 4, qkv_slot_num: 8, proj_slot_num: 8,
  ffn_slot_num: 16, max_position_embeddings: 64, rotary_pct: 0.25, vocab_size: 50,
};

describe('config defaults and extension keys', () => {
  it('applies the documented defaults', () => {
    expect(configFromObject(base, 'c')).toEqual({
      numLayers: 2, hiddenSize: 32, numHeads: 4, qkvSlots: 8, projSlots: 8, ffnSlots: 16,
      maxPositions: 64, rotaryPct: 0.25, rotaryBase: 10000, variant: 'l2_norm_gelu', tied: true,
      eps: 1e-5, vocabSize: 50, normSlots: {},
    });
    const { rotary_pct: _, ...noPct } = base;
    expect(configFromObject(noPct, 'c').rotaryPct).toBe(1);
  });

  it('reads every variant, untied weights, Python-style booleans and tokenformer_norm_slots', () => {
    for (const v of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax']) {
      expect(configFromObject({ ...base, norm_activation_type: v }, 'c').variant).toBe(v);
    }
    const yaml = `{num_layers: 2, hidden_size: 32, num_attention_heads: 4, qkv_slot_num: 8,
      proj_slot_num: 8, ffn_slot_num: 16, max_position_embeddings: 64, vocab_size: 50,
      no_weight_tying: True, # a comment
      tokenformer_norm_slots: {sequential.2.attention.query: 4, sequential.3.mlp: 12}}`;
    const c = parseConfig(yaml, 'c');
    expect(c.tied).toBe(false);
    expect(c.normSlots).toEqual({ 'sequential.2.attention.query': 4, 'sequential.3.mlp': 12 });
  });

  it('reads tokenformer_layer_slots (per-layer token counts) into the parameter shapes', () => {
    const c = configFromObject({
      ...base, 'tokenformer-layer-slots': { 'sequential.3.mlp': 40, 'sequential.2.attention.value': 8 },
      tokenformer_norm_slots: { 'sequential.3.mlp': 16 },
    }, 'c');
    expect(c.layerSlots).toEqual({ 'sequential.3.mlp': 40, 'sequential.2.attention.value': 8 });
    const shape = (name: string) => paramSpecs(c).find((s) => s.name === name)!.shape;
    expect(shape('sequential.3.mlp.key_param_tokens')).toEqual([40, 32]);
    expect(shape('sequential.3.mlp.value_param_tokens')).toEqual([40, 32]);
    expect(shape('sequential.2.mlp.key_param_tokens')).toEqual([16, 32]);
    expect(shape('sequential.3.attention.value.key_param_tokens')).toEqual([8, 32]);
    expect(configFromObject({ ...base, tokenformer_layer_slots: {} }, 'c')).toEqual(configFromObject(base, 'c'));
    expect(configFromObject({ ...base, tokenformer_layer_slots: {} }, 'c')).not.toHaveProperty('layerSlots');
  });

  it('takes vocab_size from the weights when absent, and rejects a disagreement', () => {
    const { vocab_size: _, ...noVocab } = base;
    expect(configFromObject(noVocab, 'c', { vocabFromWeights: 77 }).vocabSize).toBe(77);
    expect(() => configFromObject(base, 'c', { vocabFromWeights: 77 })).toThrow(/vocab_size 50 disagrees .*77/);
  });

  it('ignores unknown keys and accepts a matching attention_config', () => {
    const c = configFromObject({ ...base, lr: 1, fp16: { enabled: true }, attention_config: [[['tokenformer'], 2]] }, 'c');
    expect(c.numLayers).toBe(2);
  });
});

describe('invalid configs: one clear UserError each', () => {
  const { num_layers: _n, ...noLayers } = base;
  const cases: [string, unknown, RegExp][] = [
    ['not a mapping', [1, 2], /not a mapping/],
    ['missing key', noLayers, /missing required key num_layers/],
    ['zero size', { ...base, hidden_size: 0 }, /hidden_size must be a positive integer, got 0/],
    ['fractional size', { ...base, ffn_slot_num: 1.5 }, /ffn_slot_num must be a positive integer, got 1.5/],
    ['string size', { ...base, qkv_slot_num: '8' }, /qkv_slot_num must be a positive integer, got "8"/],
    ['negative vocab', { ...base, vocab_size: -3 }, /vocab_size must be a positive integer/],
    ['heads do not divide', { ...base, num_attention_heads: 5 }, /hidden_size 32 is not divisible by num_attention_heads 5/],
    ['odd rotary dim', { ...base, rotary_pct: 0.375 }, /rotary dimension .* = 3 is odd/],
    ['rotary_pct zero', { ...base, rotary_pct: 0 }, /rotary_pct must be a positive number/],
    ['rotary_pct above 1', { ...base, rotary_pct: 1.5 }, /rotary_pct 1.5 must be in \(0, 1\]/],
    ['unknown variant', { ...base, norm_activation_type: 'relu' }, /norm_activation_type "relu" is not supported/],
    ['unknown norm', { ...base, norm: 'rmsnorm' }, /norm "rmsnorm" is not supported .*layernorm_nonparam/],
    ['parametric block norm', { ...base, norm: 'layernorm' }, /norm "layernorm" is not supported/],
    ['unknown final norm', { ...base, final_norm: 'layernorm_nonparam' }, /final_norm "layernorm_nonparam" is not supported/],
    ['other position embedding', { ...base, pos_emb: 'learned' }, /pos_emb "learned" is not supported/],
    ['bad eps', { ...base, layernorm_epsilon: -1 }, /layernorm_epsilon must be a positive number/],
    ['bad base', { ...base, rotary_emb_base: 'x' }, /rotary_emb_base must be a positive number/],
    ['bad tying flag', { ...base, no_weight_tying: 'yes' }, /no_weight_tying must be true or false/],
    ['parallel residual', { ...base, gpt_j_residual: true }, /gpt_j_residual must be false/],
    ['other attention type', { ...base, attention_config: [[['global'], 2]] }, /attention_config type "global"/],
    ['attention layer count', { ...base, attention_config: [[['tokenformer'], 3]] }, /covers 3 layers but num_layers is 2/],
    ['norm slots prefix', { ...base, tokenformer_norm_slots: { 'sequential.9.mlp': 4 } }, /not a Pattention layer prefix/],
    ['norm slots value', { ...base, tokenformer_norm_slots: { 'sequential.2.mlp': 0 } }, /must be a positive integer/],
    ['pin above the kind count', { ...base, tokenformer_norm_slots: { 'sequential.2.mlp': 17 } },
      /tokenformer_norm_slots\["sequential.2.mlp"\] = 17 exceeds the layer's token count 16 \(ffn_slot_num\)/],
    ['layer slots not a mapping', { ...base, tokenformer_layer_slots: [4] }, /tokenformer_layer_slots must be a mapping/],
    ['layer slots prefix', { ...base, tokenformer_layer_slots: { 'sequential.4.mlp': 4 } },
      /tokenformer_layer_slots key "sequential.4.mlp" is not a Pattention layer prefix/],
    ['layer slots bad name', { ...base, tokenformer_layer_slots: { 'sequential.2.attention.dense': 4 } }, /not a Pattention layer prefix/],
    ['layer slots zero', { ...base, tokenformer_layer_slots: { 'sequential.2.mlp': 0 } },
      /tokenformer_layer_slots\["sequential.2.mlp"\] must be a positive integer, got 0/],
    ['layer slots fraction', { ...base, tokenformer_layer_slots: { 'sequential.2.mlp': 2.5 } }, /must be a positive integer, got 2.5/],
    ['layer slots string', { ...base, tokenformer_layer_slots: { 'sequential.2.mlp': '20' } }, /must be a positive integer, got "20"/],
    ['layer slots below the pin', {
      ...base, tokenformer_layer_slots: { 'sequential.3.attention.key': 6 }, tokenformer_norm_slots: { 'sequential.3.attention.key': 7 },
    }, /tokenformer_layer_slots\["sequential.3.attention.key"\] = 6 is below the layer's pinned normalization count 7/],
    ['conflicting spellings', { ...base, 'hidden-size': 64 }, /hidden_size is given twice with different values/],
  ];
  for (const [label, raw, re] of cases) {
    it(label, () => {
      let err: unknown;
      try {
        configFromObject(raw, 'bad.yml');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/^bad\.yml: /);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toMatch(/\n/);
    });
  }

  it('YAML syntax errors, duplicate keys and unreadable files', () => {
    expect(() => parseConfig('{a: [1, }', 'b.yml')).toThrow(/^b\.yml: not valid YAML\/JSON: /);
    expect(() => parseConfig('a: 1\na: 2\n', 'b.yml')).toThrow(/Map keys must be unique/);
    expect(() => parseConfig('', 'b.yml')).toThrow(/not a mapping/);
    expect(() => readConfigFile('/nonexistent/x.yml')).toThrow(UserError);
  });
});

const prefixArb = (L: number) => fc.tuple(
  fc.integer({ min: 2, max: L + 1 }),
  fc.constantFrom('attention.query', 'attention.key', 'attention.value', 'attention.proj', 'mlp'),
).map(([i, s]) => `sequential.${i}.${s}`);

const configArb: fc.Arbitrary<ModelConfig> = fc.record({
  numLayers: fc.integer({ min: 1, max: 6 }),
  numHeads: fc.integer({ min: 1, max: 8 }),
  headDim: fc.integer({ min: 1, max: 40 }),
  qkvSlots: fc.integer({ min: 1, max: 5000 }),
  projSlots: fc.integer({ min: 1, max: 5000 }),
  ffnSlots: fc.integer({ min: 1, max: 5000 }),
  maxPositions: fc.integer({ min: 1, max: 1 << 20 }),
  rotaryPct: fc.double({ min: 0, max: 1, noNaN: true }).filter((p) => p > 0),
  rotaryBase: fc.double({ min: 1e-3, max: 1e9, noNaN: true }),
  variant: fc.constantFrom('l2_norm_gelu' as const, 'gelu_l2_norm' as const, 'softmax' as const),
  tied: fc.boolean(),
  eps: fc.double({ min: 1e-12, max: 1, noNaN: true }),
  vocabSize: fc.integer({ min: 1, max: 300_000 }),
}).chain(({ headDim, ...r }) => fc.tuple(
  fc.dictionary(prefixArb(r.numLayers), fc.integer({ min: 1, max: 5000 }), { maxKeys: 4 }),
  fc.dictionary(prefixArb(r.numLayers), fc.integer({ min: 1, max: 5000 }), { maxKeys: 4 }),
).map(([pins, layerSlots]): ModelConfig => {
  const c: ModelConfig = { ...r, hiddenSize: headDim * r.numHeads, normSlots: {} };
  if (Object.keys(layerSlots).length > 0) c.layerSlots = layerSlots;
  // A pin never exceeds its layer's token count (growth only appends).
  const n = new Map(pattentionLayers(c).map((l) => [l.prefix, l.n]));
  for (const [k, v] of Object.entries(pins)) c.normSlots[k] = Math.min(v, n.get(k)!);
  return c;
}))
  .filter((c) => rotaryDim(c) % 2 === 0);

describe('configToYaml', () => {
  test.prop([configArb], { numRuns: 200 })('parses back to the same ModelConfig', (c) => {
    const text = configToYaml(c);
    expect(parseConfig(text, 'rt')).toEqual(c);
    expect(text).not.toMatch(/^[a-z]+-/m);
    expect(text.includes('tokenformer_norm_slots')).toBe(Object.keys(c.normSlots).length > 0);
    expect(text.includes('tokenformer_layer_slots')).toBe(c.layerSlots !== undefined);
  });

  it('writes official key spellings that a file round trip reads back', () => {
    const c = readConfigFile(join(DIR, '150M_eval.yml'), V);
    const dir = mkdtempSync(join(tmpdir(), 'tf-cfg-'));
    writeFileSync(join(dir, 'c.yml'), configToYaml(c));
    const text = readFileSync(join(dir, 'c.yml'), 'utf8');
    for (const k of ['num_layers: 12', 'qkv_slot_num: 768', 'rotary_pct: 0.25', 'no_weight_tying: false', 'vocab_size: 50304']) {
      expect(text).toContain(k);
    }
    expect(readConfigFile(join(dir, 'c.yml'))).toEqual(c);
  });
});

it('configToYaml writes exponents with a "." so PyYAML (YAML 1.1) reads floats too', () => {
  const c = configFromObject({ ...base, layernorm_epsilon: 1e-7, rotary_emb_base: 1e21 }, 'c');
  const text = configToYaml(c);
  expect(text).toContain('layernorm_epsilon: 1.0e-7');
  expect(text).toContain('rotary_emb_base: 1.0e+21');
  expect(parseConfig(text, 'rt')).toEqual(c);
});

it('deep nesting and alias bombs are UserErrors, not crashes', () => {
  expect(() => parseConfig(`num_layers: ${'['.repeat(5000)}${']'.repeat(5000)}`, 'd')).toThrow(UserError);
  const bomb = 'a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    + 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
  expect(() => parseConfig(bomb, 'd')).toThrow(UserError);
  let deep: unknown = 1;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  expect(() => configFromObject({ ...base, vocab_size: deep }, 'd')).toThrow(/vocab_size must be a positive integer, got a nested value/);
});

describe('config fuzz: anything malformed is a UserError', () => {
  const only = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
    }
  };
  test.prop([fc.string({ maxLength: 200 })], { numRuns: 300 })('random text', (text) => {
    only(() => parseConfig(text, 'f'));
  });
  test.prop([fc.dictionary(fc.constantFrom(...Object.keys(base), 'norm', 'pos_emb', 'tokenformer_norm_slots', 'tokenformer_layer_slots', 'attention_config', 'rotary-pct'), fc.jsonValue({ maxDepth: 3 }))], { numRuns: 300 })(
    'random values for the known keys', (over) => {
      only(() => configFromObject({ ...base, ...over }, 'f'));
    },
  );
});
