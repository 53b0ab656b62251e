// Config safety, in-process: every field against huge, zero, negative, fractional, wrong-type,
// NaN and missing values (refused with one UserError line naming the field, or accepted and
// kept exactly); the size limits; linear-time parsing (300,000 keys refused in well under 2 s,
// duplicate keys still found); YAML .nan shown as NaN; FIFOs and devices refused at once.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { CONFIG_LIMITS, type ModelConfig } from '../src/config.ts';
import { configFromObject, parseConfig, readConfigFile, validateConfig } from '../src/config-parse.ts';
import { UserError } from '../src/errors.ts';

/** CPU milliseconds a call takes (not wall time: the test machine is shared, its wall clock noisy). */
function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
}

const base = {
  num_layers: 2, hidden_size: 32, num_attention_heads: 4, qkv_slot_num: 8, proj_slot_num: 8, ffn_slot_num: 16,
  max_position_embeddings: 64, rotary_pct: 0.25, vocab_size: 256,
};

/** The UserError a call throws (one line, starting with `source`), or null when it returns. */
function userError(fn: () => unknown, source: string): string | null {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg).not.toMatch(/\n/);
    expect(msg.startsWith(source), msg).toBe(true);
    expect(msg.length).toBeLessThan(400);
    return msg;
  }
  return null;
}

type Kind = 'size' | 'real' | 'bool' | 'choice';
const FIELDS: [key: string, field: keyof ModelConfig, kind: Kind, required: boolean][] = [
  ['num_layers', 'numLayers', 'size', true], ['hidden_size', 'hiddenSize', 'size', true],
  ['num_attention_heads', 'numHeads', 'size', true], ['qkv_slot_num', 'qkvSlots', 'size', true],
  ['proj_slot_num', 'projSlots', 'size', true], ['ffn_slot_num', 'ffnSlots', 'size', true],
  ['max_position_embeddings', 'maxPositions', 'size', true], ['vocab_size', 'vocabSize', 'size', true],
  ['rotary_pct', 'rotaryPct', 'real', false], ['rotary_emb_base', 'rotaryBase', 'real', false],
  ['layernorm_epsilon', 'eps', 'real', false], ['no_weight_tying', 'tied', 'bool', false],
  ['norm_activation_type', 'variant', 'choice', false],
];

const MISSING = Symbol('missing');
/** Values with a label; `bad` lists the field kinds for which the value can never be valid. */
const VALUES: [label: string, v: unknown, bad: Kind[]][] = [
  ['huge', 1e9, ['size', 'bool', 'choice']], ['absurd', 1e30, ['size', 'bool', 'choice']],
  ['above 2^53', 2 ** 60, ['size', 'bool', 'choice']], ['zero', 0, ['size', 'real', 'bool', 'choice']],
  ['negative', -5, ['size', 'real', 'bool', 'choice']], ['fraction', 2.5, ['size', 'bool', 'choice']],
  ['string', '8', ['size', 'real', 'bool', 'choice']], ['boolean', true, ['size', 'real', 'choice']],
  ['array', [8], ['size', 'real', 'bool', 'choice']], ['object', { a: 1 }, ['size', 'real', 'bool', 'choice']],
  ['NaN', NaN, ['size', 'real', 'bool', 'choice']], ['Infinity', Infinity, ['size', 'real', 'bool', 'choice']],
  ['null', null, ['real', 'bool', 'choice']], ['valid small', 4, ['bool', 'choice']], ['valid fraction', 0.5, ['size', 'bool', 'choice']],
  ['missing', MISSING, []],
];

describe('every config field, every kind of bad value', () => {
  test.prop([fc.constantFrom(...FIELDS), fc.constantFrom(...VALUES)], { numRuns: 300 })(
    'refused with one line naming the field, or accepted and kept', ([key, field, kind, required], [label, v, bad]) => {
      const raw: Record<string, unknown> = { ...base };
      if (v === MISSING) delete raw[key];
      else raw[key] = v;
      let c: ModelConfig | undefined;
      const msg = userError(() => (c = configFromObject(raw, 'bad.yml')), 'bad.yml');
      if (bad.includes(kind) || (v === MISSING && required)) expect(msg, `${key} = ${label}`).not.toBeNull();
      if (msg !== null) {
        // the message names the field (or, for a cross-field rule, says which rule)
        expect(msg).toMatch(new RegExp(`${key}|rotary dimension|not divisible`));
      } else if (v !== MISSING) {
        expect(c![field], `${key} = ${label} was accepted`).toBe(kind === 'bool' ? !v : v);
      }
    },
  );

  it('each size limit: the limit itself is accepted where the model allows it, one above is refused', () => {
    for (const [key, limit] of Object.entries(CONFIG_LIMITS)) {
      const msg = userError(() => configFromObject({ ...base, [key]: limit + 1 }, 'c'), 'c');
      expect(msg).toMatch(new RegExp(`^c: ${key} ${limit + 1} exceeds the limit of ${limit} `));
    }
    const c = configFromObject({ ...base, num_layers: CONFIG_LIMITS.num_layers, max_position_embeddings: CONFIG_LIMITS.max_position_embeddings }, 'c');
    expect(c.numLayers).toBe(1024);
  });

  it('a config built in code (growth, the demo, state.json) is held to the same rules', () => {
    const good = configFromObject(base, 'c');
    const cases: [Partial<Record<keyof ModelConfig, unknown>>, RegExp][] = [
      [{ numLayers: -1 }, /num_layers must be a positive integer, got -1/],
      [{ numLayers: 1e6 }, /num_layers 1000000 exceeds the limit of 1024/],
      [{ qkvSlots: 1e8 }, /qkv_slot_num 100000000 exceeds the limit/],
      [{ hiddenSize: 8, numHeads: 3 }, /hidden_size 8 is not divisible by num_attention_heads 3/],
      [{ tied: 'no' }, /must be true or false, got "no"/],
      [{ normSlots: undefined }, /missing tokenformer_norm_slots/],
      [{ normSlots: { 'sequential.2.mlp': 1e9 } }, /exceeds the limit of 1048576 tokens per layer/],
      [{ eps: NaN }, /layernorm_epsilon must be a positive number, got NaN/],
      [{ variant: 'relu' }, /norm_activation_type "relu" is not supported/],
    ];
    for (const [over, re] of cases) {
      expect(userError(() => validateConfig({ ...good, ...over } as ModelConfig, 'state.json: config'), 'state.json: config')).toMatch(re);
    }
  });
});

describe('YAML specifics', () => {
  it('.nan and .inf are reported as NaN and Infinity, not null', () => {
    const text = 'num_layers: 2\nhidden_size: .nan\nnum_attention_heads: 4\n';
    expect(userError(() => parseConfig(text, 'n.yml'), 'n.yml')).toBe('n.yml: hidden_size must be a positive integer, got NaN');
    expect(userError(() => parseConfig('num_layers: .inf\n', 'n.yml'), 'n.yml')).toBe('n.yml: num_layers must be a positive integer, got Infinity');
    expect(userError(() => parseConfig(`${Object.entries(base).map(([k, v]) => `${k}: ${v}`).join('\n')}\nlayernorm_epsilon: .nan\n`, 'e.yml'), 'e.yml'))
      .toBe('e.yml: layernorm_epsilon must be a positive number, got NaN');
  });
});

describe('parsing time is linear in the number of keys', () => {
  const head = Object.entries(base).map(([k, v]) => `${k}: ${v}`);
  const withKeys = (n: number) => [...head, ...Array.from({ length: n }, (_, i) => `extra_key_${i}: ${i}`)].join('\n');

  it('300,000 keys are refused as too many in well under 2 s', () => {
    const text = withKeys(300_000);
    expect(cpuMs(() => expect(userError(() => parseConfig(text, 'k.yml'), 'k.yml')).toMatch(/^k\.yml: too many keys: .*at most 10000 keys/)))
      .toBeLessThan(2000); // about 0.1 s; the quadratic parser took over 90 s
    const flow = `{${Array.from({ length: 300_000 }, (_, i) => `"k${i}": ${i}`).join(', ')}}`;
    expect(cpuMs(() => expect(userError(() => parseConfig(flow, 'k.json'), 'k.json')).toMatch(/too many keys/))).toBeLessThan(2000);
  });

  it('9,000 keys (under the 10,000 cap) parse, and duplicates are still found without yaml\'s quadratic check', () => {
    const text = withKeys(9000);
    expect(cpuMs(() => expect(parseConfig(text, 'k.yml').numLayers).toBe(2))).toBeLessThan(5000); // about 0.7 s
    expect(userError(() => parseConfig(`${text}\nextra_key_17: 3`, 'k.yml'), 'k.yml'))
      .toBe('k.yml: not valid YAML/JSON: Map keys must be unique ("extra_key_17" is repeated)');
    const nested = `${head.join('\n')}\ntokenformer_norm_slots: {sequential.2.mlp: 4, sequential.2.mlp: 5}\n`;
    expect(userError(() => parseConfig(nested, 'n.yml'), 'n.yml')).toMatch(/Map keys must be unique \("sequential\.2\.mlp" is repeated\)/);
    expect(userError(() => parseConfig('{"a": 1, "a": 1}', 'j.json'), 'j.json')).toMatch(/Map keys must be unique/);
    // 1 and "1" are different keys, as in yaml's own check (the number is then refused as a key)
    expect(userError(() => parseConfig(`${head.join('\n')}\n1: a\n"1": b\n`, 'k.yml'), 'k.yml')).toBe('k.yml: config key 1 is not a string');
  });
});

describe('config files that are not regular files', () => {
  it('a FIFO and /dev/zero are refused at once, without blocking', () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'tf-cfg-fifo-')), 'c.yml');
    execFileSync('mkfifo', [fifo]);
    const t0 = performance.now();
    expect(userError(() => readConfigFile(fifo), 'config')).toBe(`config ${JSON.stringify(fifo)} is a FIFO, not a regular file`);
    expect(userError(() => readConfigFile('/dev/zero'), 'config')).toBe('config "/dev/zero" is a device, not a regular file');
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('a file over 16 MiB is refused before it is read', () => {
    const big = join(mkdtempSync(join(tmpdir(), 'tf-cfg-big-')), 'c.yml');
    execFileSync('truncate', ['-s', String(16 * 2 ** 20 + 1), big]); // sparse: no disk used
    expect(userError(() => readConfigFile(big), big)).toBe(`${big}: is 16777217 bytes; a config is at most 16777216 bytes (16 MiB; the official ones are under 10 KB)`);
  });
});
