// Text ↔ token ids for generation: a Hugging Face `tokenizer.json` (GPT-NeoX-20B's for the
// official TokenFormer checkpoints) through @huggingface/tokenizers, a maintained pure-JS port
// of the Rust `tokenizers` pipeline (added tokens, normalizer, pre-tokenizer, model, decoder).
// This file checks the file's shape, wraps encode/decode and names the EOS id and the size.
// Omits: tokenizer training, text pairs, chat templates, offsets, tokenizer_config.json (the
// one setting it could change here, the decode-time space clean-up, is off: see decode).

import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from './errors.ts';
import { quote, readInputText } from './fsguard.ts';

/** GPT-NeoX-20B's tokenizer.json is 2.4 MB; the largest on the Hub are tens of MB. */
export const MAX_TOKENIZER_BYTES = 256 * 2 ** 20;

/** Model types the library implements. */
export const TOKENIZER_MODELS = ['BPE', 'WordPiece', 'Unigram'] as const;

/** The end-of-text token of GPT-NeoX (and GPT-2) tokenizers. */
export const EOS_TOKEN = '<|endoftext|>';

/** The pipeline stages a tokenizer.json has; an absent one means "none" (null). */
const STAGES = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;

export class TextTokenizer {
  /** Ids are 0 … size − 1 (the model's vocabulary plus the added tokens). */
  readonly size: number;
  /** The id of <|endoftext|>, or null when the tokenizer has none. */
  readonly eosId: number | null;

  constructor(private readonly tk: Tokenizer) {
    let max = -1;
    for (const id of tk.get_vocab(true).values()) max = Math.max(max, id);
    this.size = max + 1;
    this.eosId = tk.token_to_id(EOS_TOKEN) ?? null;
  }

  /** Token ids of text (after the tokenizer's own normalization, e.g. NFC); no BOS/EOS added. */
  encode(text: string): number[] {
    return text === '' ? [] : this.tk.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * The text of ids, exactly as the decoder gives it: special tokens kept, no clean-up of the
   * spaces before punctuation (Python `transformers`' default would rewrite " ." to "."), so
   * decode(encode(s)) = s for normalized s. A byte sequence cut mid-character ends in U+FFFD.
   */
  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.size) throw new UserError(`token id ${id} is out of range [0, ${this.size})`);
    }
    if (ids.length === 0) return '';
    return this.tk.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }
}

function fail(source: string, why: string): never {
  throw new UserError(`${source} is not a usable tokenizer.json: ${why}`);
}

/** The parsed JSON, checked to have the parts the library reads, with absent stages as null. */
function checkShape(doc: unknown, source: string): Record<string, unknown> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail(source, 'the top level is not a JSON object');
  const d = { ...(doc as Record<string, unknown>) };
  const model = d.model as Record<string, unknown> | undefined;
  if (typeof model !== 'object' || model === null || Array.isArray(model)) fail(source, 'it has no "model" object');
  const type = model.type;
  if (typeof type !== 'string') fail(source, 'its "model" has no "type"');
  if (!(TOKENIZER_MODELS as readonly string[]).includes(type)) {
    fail(source, `unknown model type ${quote(type, 40)} (supported: ${TOKENIZER_MODELS.join(', ')})`);
  }
  if (typeof model.vocab !== 'object' || model.vocab === null) fail(source, 'its "model" has no "vocab"');
  d.added_tokens ??= [];
  if (!Array.isArray(d.added_tokens)) fail(source, '"added_tokens" is not a list');
  for (const s of STAGES) d[s] ??= null;
  return d;
}

/** A tokenizer from the text of a tokenizer.json; `source` names it in errors. */
export function parseTokenizer(text: string, source: string): TextTokenizer {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(source, `not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const d = checkShape(doc, source);
  let tk: Tokenizer;
  try {
    tk = new Tokenizer(d, {});
  } catch (e) {
    fail(source, (e instanceof Error ? e.message : String(e)).split('\n')[0]);
  }
  const t = new TextTokenizer(tk);
  if (t.size < 1) fail(source, 'its vocabulary is empty');
  return t;
}

/** Reads a tokenizer.json (a regular file of at most MAX_TOKENIZER_BYTES). */
export function readTokenizer(path: string): TextTokenizer {
  return parseTokenizer(readInputText(path, 'tokenizer', MAX_TOKENIZER_BYTES), quote(path));
}
