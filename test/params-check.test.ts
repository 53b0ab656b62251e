// checkParams: a state dict that does not fit the config is one line naming the first three
// missing parameters and the first three unexpected tensors, each with a count, so a user
// with a checkpoint of another layout sees at once what differs.

import { describe, expect, test } from 'vitest';
import { UserError } from '../src/errors.ts';
import { checkParams, paramSpecs } from '../src/params.ts';
import { tinyConfig } from './helpers/tiny.ts';

const c = tinyConfig({ numLayers: 2 });
const full = () => new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape }]));

function message(params: Map<string, { shape: readonly number[] }>): string {
  try {
    checkParams(c, params, 'w.bin');
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  return '';
}

describe('checkParams', () => {
  test('a complete, exact state dict passes', () => {
    expect(message(full())).toBe('');
  });

  test('one missing parameter is named', () => {
    const p = full();
    const name = paramSpecs(c)[3].name;
    p.delete(name);
    expect(message(p)).toBe(`w.bin: missing parameter ${JSON.stringify(name)}`);
  });

  test('many missing and unexpected: the first three of each, then how many more, on one line', () => {
    const specs = paramSpecs(c);
    const p = full();
    for (const s of specs.slice(0, 5)) p.delete(s.name);
    for (let i = 0; i < 4; i++) p.set(`extra.${i}`, { shape: [1] });
    const m = message(p);
    const q = (s: string) => JSON.stringify(s);
    expect(m).toBe(`w.bin: missing 5 parameters: ${specs.slice(0, 3).map((s) => q(s.name)).join(', ')} and 2 more; `
      + `unexpected 4 tensors: ${q('extra.0')}, ${q('extra.1')}, ${q('extra.2')} and 1 more for this config`);
    expect(m.split('\n')).toHaveLength(1);
  });

  test('a shape mismatch names the tensor and both shapes', () => {
    const p = full();
    const s = paramSpecs(c)[0];
    p.set(s.name, { shape: [s.shape[0] + 1, ...s.shape.slice(1)] });
    expect(message(p)).toMatch(new RegExp(`has shape .* config says`));
  });

  test('known buffers (rotary inv_freq) are not unexpected', () => {
    const p = full();
    p.set('sequential.2.attention.rotary_emb.inv_freq', { shape: [4] });
    expect(message(p)).toBe('');
  });
});
