#!/usr/bin/env python3
"""Expected GPT-NeoX-20B token ids for test/tokenizer.test.ts: golden/tokenizer/cases.json.

Debian has no python3-tokenizers (Hugging Face's Rust tokenizer), so the ids come from an
independent byte-level BPE written here from the pipeline the tokenizer.json itself declares,
not from the npm library the TypeScript uses (@huggingface/tokenizers):

  1. added tokens with "normalized": false (<|endoftext|>, <|padding|>) split the raw text,
     leftmost-longest (the Rust crate's aho-corasick LeftmostLongest);
  2. each remaining piece is NFC-normalized ("normalizer": NFC), then split by the added
     tokens with "normalized": true (the runs of 2…24 spaces), leftmost-longest;
  3. the rest is pre-tokenized by ByteLevel (add_prefix_space false): GPT-2's regex, then each
     UTF-8 byte mapped to its printable stand-in (GPT-2's bytes_to_unicode);
  4. each pre-token is merged by BPE: repeatedly the adjacent pair of lowest merge rank.

Decoding is the inverse: added tokens as their text, others through the byte map, UTF-8.

Needs Debian's python3 and python3-regex (for \\p{L} and \\p{N}; `apt-get install python3-regex`).
Run from the repository root:  /usr/bin/python3 golden/gen_tokenizer.py
"""
import json
import os
import sys
import unicodedata

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER = os.path.join(ROOT, 'test', 'fixtures', 'tokenizer', 'gpt-neox-20b-tokenizer.json')
OUT = os.path.join(ROOT, 'golden', 'tokenizer', 'cases.json')

# GPT-2's pre-tokenizer pattern, as the Rust crate's ByteLevel pre-tokenizer compiles it.
PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

CASES = [
    'Hello', ' world', 'Hello world',
    'The quick brown fox jumps over the lazy dog.',
    "it's we're I'll they've you'd she'd",
    'café naïve résumé Ångström façade',
    '日本語のテキスト、中文字符。한국어 텍스트',
    'emoji 🤖 👍🏽 👨‍👩‍👧 🇯🇵!',
    'a  b   c    d     e' + ' ' * 30 + 'f',
    '   leading spaces', 'trailing spaces   ',
    'tab\tand\t\ttabs\t', 'new\nline\n\n\nruns\n', 'windows\r\nline\r\n',
    ' \t \n mixed \n\t ',
    'def f(x):\n    return x**2  # comment\n',
    '3.14159 and 2024-12-01, 1,000,000 items',
    '!!!???...---***', 'a\u00a0b\u2003c',
    '<|endoftext|>after the end', 'before<|endoftext|>',
    'e\u0301 (NFD) becomes é',
]


def bytes_to_unicode():
    """GPT-2's map from each byte to a printable character (bytes that print stand for themselves)."""
    keep = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


def split_added(text, tokens):
    """Pieces of text, each (str, id or None), added tokens matched leftmost-longest."""
    out, start, i = [], 0, 0
    by_len = sorted(tokens.items(), key=lambda kv: -len(kv[0]))
    while i < len(text):
        hit = next(((s, t) for s, t in by_len if text.startswith(s, i)), None)
        if hit is None:
            i += 1
            continue
        if i > start:
            out.append((text[start:i], None))
        out.append(hit)
        i += len(hit[0])
        start = i
    if start < len(text):
        out.append((text[start:], None))
    return out


def bpe(word, ranks):
    """Merge the adjacent pair of lowest rank until none is in the merge table."""
    parts = list(word)
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), None), k) for k, (a, b) in enumerate(zip(parts, parts[1:]))]
        pairs = [(r, k) for r, k in pairs if r is not None]
        if not pairs:
            break
        best = min(r for r, _ in pairs)
        merged, k = [], 0
        while k < len(parts):
            if k + 1 < len(parts) and ranks.get((parts[k], parts[k + 1])) == best:
                merged.append(parts[k] + parts[k + 1])
                k += 2
            else:
                merged.append(parts[k])
                k += 1
        parts = merged
    return parts


class NeoxTokenizer:
    def __init__(self, tj):
        assert tj['normalizer'] == {'type': 'NFC'}, tj['normalizer']
        assert tj['pre_tokenizer']['type'] == 'ByteLevel' and not tj['pre_tokenizer']['add_prefix_space']
        assert tj['model']['type'] == 'BPE'
        self.vocab = tj['model']['vocab']
        merges = [tuple(m.split(' ')) if isinstance(m, str) else tuple(m) for m in tj['model']['merges']]
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.raw = {a['content']: a['id'] for a in tj['added_tokens'] if not a['normalized']}
        self.norm = {a['content']: a['id'] for a in tj['added_tokens'] if a['normalized']}
        self.byte = bytes_to_unicode()
        self.unbyte = {c: b for b, c in self.byte.items()}
        self.added = {a['id']: a['content'] for a in tj['added_tokens']}
        self.inverse = {i: s for s, i in self.vocab.items()}

    def encode(self, text):
        ids = []
        for piece, tid in split_added(text, self.raw):
            if tid is not None:
                ids.append(tid)
                continue
            for sub, sid in split_added(unicodedata.normalize('NFC', piece), self.norm):
                if sid is not None:
                    ids.append(sid)
                    continue
                for word in PATTERN.findall(sub):
                    mapped = ''.join(self.byte[b] for b in word.encode('utf-8'))
                    ids.extend(self.vocab[p] for p in bpe(mapped, self.ranks))
        return ids

    def decode(self, ids):
        out, pending = [], bytearray()
        for i in ids:
            if i in self.added:
                out.append(pending.decode('utf-8', errors='replace'))
                pending = bytearray()
                out.append(self.added[i])
            else:
                pending.extend(self.unbyte[c] for c in self.inverse[i])
        out.append(pending.decode('utf-8', errors='replace'))
        return ''.join(out)


def main():
    with open(TOKENIZER, encoding='utf-8') as f:
        tok = NeoxTokenizer(json.load(f))
    cases = []
    for text in CASES:
        ids = tok.encode(text)
        cases.append({'text': text, 'ids': ids, 'decoded': tok.decode(ids)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    doc = {
        'tokenizer': 'test/fixtures/tokenizer/gpt-neox-20b-tokenizer.json',
        'generator': 'golden/gen_tokenizer.py (independent byte-level BPE; regenerate with /usr/bin/python3 golden/gen_tokenizer.py)',
        'cases': cases,
    }
    with open(OUT, 'w', encoding='utf-8') as f:  # one case per line, for readable diffs
        head = {k: v for k, v in doc.items() if k != 'cases'}
        f.write(json.dumps(head, ensure_ascii=True)[:-1] + ', "cases": [\n')
        f.write(',\n'.join(json.dumps(c, ensure_ascii=True) for c in cases))
        f.write('\n]}\n')
    print(f'wrote {len(cases)} cases to {os.path.relpath(OUT, ROOT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
