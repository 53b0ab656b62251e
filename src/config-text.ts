// Config text → the parsed document's plain value (YAML 1.2 core schema; JSON is a subset),
// with the guards that keep absurd files cheap: a size bound on the file, a key bound counted
// before parsing, and a duplicate-key check in linear time. spec/config.md.
// Omits: what the keys mean and their rules (src/config-parse.ts).
//
// NOTE: the yaml package's own duplicate-key check (uniqueKeys) compares each new key with
// every earlier key of its map: quadratic in the key count (40,000 keys took 37 s of CPU). It
// is off, and duplicateKey() makes the same check with one Set per map.

import { statSync } from 'node:fs';
import { parseDocument, isMap, isScalar, visit, type Document } from 'yaml';
import { MAX_CONFIG_BYTES, MAX_CONFIG_KEYS, MAX_CONFIG_SEPARATORS } from './config.ts';
import { UserError } from './errors.ts';
import { readInputText } from './fsguard.ts';

function fail(source: string, problem: string): never {
  const t = `${source}: ${problem}`.replace(/\s+/g, ' ').trim();
  throw new UserError(t.length > 300 ? `${t.slice(0, 300)}…` : t);
}

export function tooManyKeys(n: number): string {
  return `too many keys (${n}; a config has at most ${MAX_CONFIG_KEYS}, the official ones about 90)`;
}

/** A scalar key for a message: JSON-quoted and short. */
function showKey(v: unknown): string {
  const s = typeof v === 'number' && !Number.isFinite(v) ? String(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/**
 * ':', ',' and '?' in the text: a bound on its map entries (each entry but a map's first has
 * a ',' or a newline before it and a ':' or a '?' in it), counted in one pass so a file of
 * 300,000 keys is refused before the YAML parser (about 30 µs a key) runs.
 */
function separatorCount(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x3a || ch === 0x2c || ch === 0x3f) n++;
  }
  return n;
}

/**
 * The first scalar key repeated within one map, shown, or null: the check yaml's uniqueKeys
 * makes (scalars equal by value), in linear time. Non-scalar keys are never equal.
 */
function duplicateKey(doc: Document): string | null {
  let found: string | null = null;
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        if (seen.has(pair.key.value)) {
          found = showKey(pair.key.value);
          return visit.BREAK;
        }
        seen.add(pair.key.value);
      }
      return undefined;
    },
  });
  return found;
}

/** Parses YAML or JSON text into plain values (maps as Map); every failure is one UserError line. */
export function parseConfigText(text: string, source: string): unknown {
  const seps = separatorCount(text);
  if (seps > MAX_CONFIG_SEPARATORS) {
    fail(source, `too many keys: the text has ${seps} ':', ',' or '?' separators; a config has at most ${MAX_CONFIG_KEYS} `
      + `keys and ${MAX_CONFIG_SEPARATORS} separators (the official ones have about 90 and 200)`);
  }
  try {
    const doc = parseDocument(text, { schema: 'core', uniqueKeys: false, prettyErrors: false });
    if (doc.errors.length > 0) fail(source, `not valid YAML/JSON: ${doc.errors[0].message}`);
    if (isMap(doc.contents) && doc.contents.items.length > MAX_CONFIG_KEYS) fail(source, tooManyKeys(doc.contents.items.length));
    const dup = duplicateKey(doc);
    if (dup !== null) fail(source, `not valid YAML/JSON: Map keys must be unique (${dup} is repeated)`);
    return doc.toJS({ mapAsMap: true, maxAliasCount: 100 });
  } catch (e) {
    if (e instanceof UserError) throw e;
    // NOTE: the yaml package recurses; absurdly deep nesting ends here as a RangeError.
    const why = e instanceof RangeError ? 'nested too deeply' : e instanceof Error ? e.message : String(e);
    return fail(source, `not valid YAML/JSON: ${why}`);
  }
}

/** A config file's text: a regular file (src/fsguard.ts) of at most MAX_CONFIG_BYTES. */
export function readConfigText(path: string): string {
  let size = 0;
  try {
    size = statSync(path).size; // a cheap early bound; readInputText checks the open file itself
  } catch {
    // absent or unreadable: readInputText says which
  }
  if (size > MAX_CONFIG_BYTES) {
    fail(path, `is ${size} bytes; a config is at most ${MAX_CONFIG_BYTES} bytes (16 MiB; the official ones are under 10 KB)`);
  }
  return readInputText(path, 'config');
}
