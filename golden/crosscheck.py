#!/usr/bin/python3
# Cross-check oracle for arbitrary configs: reads a GPT-NeoX YAML config, float32 weights and
# token/target ids, and writes logits, loss and every parameter gradient computed with
# tfmath.py in float64, plus the same computation in plain float32 torch (`f32.*`), so the
# caller can tell whether a case is well-conditioned enough to judge a float32 implementation.
# Omits: growth (tokenformer_norm_slots ≠ n is rejected), training, and any fixture writing.
#
#   /usr/bin/python3 golden/crosscheck.py CONFIG.yml WEIGHTS.safetensors TOKENS.json \
#       TARGETS.json OUT.safetensors
#   /usr/bin/python3 golden/crosscheck.py --cases DIR [DIR ...]
#
# The second form runs several cases in one process (torch's import dominates a tiny case);
# each DIR holds config.yml, weights.safetensors, tokens.json and targets.json and gets
# out.safetensors. OUT holds (float32): logits [B,T,V], loss [], grad.<name> (float64 compute)
# and f32.logits, f32.loss, f32.grad.<name> (plain float32 compute), and f32dev.<same names>:
# per element the largest |float32 − float64| over the plain float32 run and ENVELOPE_RUNS
# runs with every weight moved by −1/0/+1 ulp at random (an estimate of the error envelope
# of a correct float32 implementation). Its __metadata__ holds
# `config` (the config as this script read it, JSON), `yaml` (which reader), `torch`, and
# `min_row_ratio` (l2 variants: the smallest row norm Θ divides by, over the median; near 0,
# Θ's gradient is singular; "None" for softmax).
# Exit status: 0 on success, 2 on bad input (one `error:` line on stderr).

import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tfmath  # noqa: E402
from stio import read_safetensors, write_safetensors  # noqa: E402

try:
    import yaml  # PyYAML; Debian's python3-yaml, not always installed next to python3-torch
except ImportError:  # pragma: no cover - depends on the machine
    yaml = None


# Float32 runs with ulp-perturbed weights behind `f32dev.*` (besides the plain one).
ENVELOPE_RUNS = 4


class BadInput(Exception):
    pass


# ---------------------------------------------------------------- config reading

def _strip_comment(line):
    """The line without a trailing `# …` comment (a `#` inside quotes is kept)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == "\\" and quote == '"':
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


_PY_LITERALS = {"True": "true", "False": "false", "None": "null",
                "true": "true", "false": "false", "null": "null", "~": "null"}


def _flow_to_json(text):
    """A flow map/sequence as GPT-NeoX writes it (JSON plus Python True/False/None, single
    quotes, bare words and trailing commas) -> parsed value."""
    def word(m):
        if m.group(1) is not None:
            return m.group(1)
        if m.group(2) is not None:
            return json.dumps(m.group(2)[1:-1])
        w = m.group(3)
        if w in _PY_LITERALS:
            return _PY_LITERALS[w]
        try:
            float(w)
            return w
        except ValueError:
            return json.dumps(w)
    out = re.sub(r'("(?:[^"\\]|\\.)*")|(\'[^\']*\')|([A-Za-z_~.+\-0-9][A-Za-z0-9_.+\-/]*)',
                 word, text)
    out = re.sub(r",\s*([}\]])", r"\1", out)
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        raise BadInput(f"cannot read flow value: {e}") from None


def _scalar(s):
    s = s.strip()
    if s == "":
        return None
    if s[0] in "[{":
        return _flow_to_json(s)
    if s[0] in "\"'" and s[-1] == s[0] and len(s) >= 2:
        return s[1:-1]
    if s in _PY_LITERALS:
        return json.loads(_PY_LITERALS[s])
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def mini_yaml(text):
    """Fallback when PyYAML is missing: the two shapes GPT-NeoX configs take, a flow map
    `{ "key": value, … }` with comments, or a block map of `key: value` lines with at most
    one nested level of `key: value` lines. Not a general YAML reader."""
    lines = [_strip_comment(l).rstrip() for l in text.splitlines()]
    body = "\n".join(l for l in lines if l.strip())
    if body.lstrip().startswith("{"):
        return _flow_to_json(body)
    out, nested = {}, None
    for line in body.splitlines():
        indent = len(line) - len(line.lstrip())
        key, sep, rest = line.strip().partition(":")
        if not sep:
            raise BadInput(f"cannot read config line {line.strip()!r}")
        key = key.strip().strip("\"'")
        if indent > 0 and nested is not None:
            nested[key] = _scalar(rest)
            continue
        value = _scalar(rest)
        if value is None:
            nested = out[key] = {}
        else:
            out[key], nested = value, None
    return out


def _number(raw, key, default=None):
    v = raw.get(key, default)
    if isinstance(v, str):  # YAML 1.1 reads 1e-5 (no '.') as a string
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadInput(f"{key} must be a number, got {v!r}")
    return v


def read_config(path):
    """The model config (gen_models.CONFIG_KEYS) with GPT-NeoX/TokenFormer defaults."""
    text = Path(path).read_text(encoding="utf-8")
    raw = yaml.safe_load(text) if yaml is not None else mini_yaml(text)
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: config is not a mapping")
    raw = {str(k).replace("-", "_"): v for k, v in raw.items()}
    cfg = {}
    for key in ("num_layers", "hidden_size", "num_attention_heads", "qkv_slot_num",
                "proj_slot_num", "ffn_slot_num", "vocab_size"):
        v = raw.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BadInput(f"{path}: {key} must be a positive integer, got {v!r}")
        cfg[key] = v
    cfg["max_position_embeddings"] = int(_number(raw, "max_position_embeddings", 2048))
    cfg["rotary_pct"] = float(_number(raw, "rotary_pct", 1.0))
    cfg["rotary_emb_base"] = float(_number(raw, "rotary_emb_base", 10000))
    cfg["layernorm_epsilon"] = float(_number(raw, "layernorm_epsilon", 1e-5))
    cfg["norm_activation_type"] = raw.get("norm_activation_type", "l2_norm_gelu")
    cfg["no_weight_tying"] = bool(raw.get("no_weight_tying", False))
    cfg["norm"] = raw.get("norm", "layernorm_nonparam")
    cfg["final_norm"] = raw.get("final_norm", "layernorm")
    if cfg["norm_activation_type"] not in tfmath.VARIANTS:
        raise BadInput(f"{path}: unknown norm_activation_type {cfg['norm_activation_type']!r}")
    if cfg["norm"] != "layernorm_nonparam" or cfg["final_norm"] != "layernorm":
        raise BadInput(f"{path}: norm/final_norm must be layernorm_nonparam/layernorm")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise BadInput(f"{path}: hidden_size not divisible by num_attention_heads")
    if tfmath.rotary_dim(cfg) % 2:
        raise BadInput(f"{path}: odd rotary dimension {tfmath.rotary_dim(cfg)}")
    if raw.get("tokenformer_norm_slots"):
        raise BadInput(f"{path}: tokenformer_norm_slots (growth) is not supported here")
    return cfg


# ---------------------------------------------------------------- inputs

def read_ids(path, vocab, what):
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    if (not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows)
            or len({len(r) for r in rows}) != 1 or not rows[0]):
        raise BadInput(f"{path}: {what} must be a non-empty JSON array of equal-length arrays")
    flat = [t for r in rows for t in r]
    if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab for t in flat):
        raise BadInput(f"{path}: {what} must be integers in [0, {vocab})")
    return torch.tensor(rows, dtype=torch.int64)


def read_weights(path, cfg):
    arrays, _, dtypes = read_safetensors(path)
    shapes = tfmath.param_shapes(cfg)
    missing = sorted(set(shapes) - set(arrays))
    extra = sorted(set(arrays) - set(shapes))
    if missing or extra:
        raise BadInput(f"{path}: missing {missing[:3]}, unexpected {extra[:3]}")
    params = {}
    for name, shape in shapes.items():
        if dtypes[name] != "F32" or tuple(arrays[name].shape) != tuple(shape):
            raise BadInput(f"{path}: {name} must be F32 {list(shape)}")
        params[name] = torch.from_numpy(np.array(arrays[name], dtype=np.float32))
    return params


# ---------------------------------------------------------------- compute

def _run(cfg, params, ids, targets, dtype, probe=None, as_f64=False):
    """{logits, loss, grad.<name>} computed in dtype, returned as float64 (exactly) or float32."""
    leaves = {k: v.to(dtype).requires_grad_(True) for k, v in sorted(params.items())}
    logits, loss = tfmath.model_loss(cfg, leaves, ids, targets, probe)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    out = {"logits": logits.detach(), "loss": loss.detach()}
    out.update({f"grad.{n}": g for n, g in zip(leaves, grads)})
    return {k: v.double() if as_f64 else v.float() for k, v in out.items()}


def _min_row_ratio(probe, variant):
    """tfmath.theta_row_ratio, or None for softmax (which divides by no norm)."""
    return None if variant == "softmax" else tfmath.theta_row_ratio(probe, variant)


def _ulp_perturbed(params, g):
    """Each float32 weight moved by −1, 0 or +1 ulp at random: the same problem as far as
    float32 can tell, but a different pattern of rounding errors downstream."""
    out = {}
    for name, v in sorted(params.items()):
        step = torch.randint(-1, 2, v.shape, generator=g)
        toward = torch.where(step > 0, torch.full_like(v, math.inf), torch.full_like(v, -math.inf))
        out[name] = torch.where(step == 0, v, torch.nextafter(v, toward))
    return out


def f32_deviation(cfg, params, ids, tg, ref, runs):
    """Per element, the largest |float32 result − float64 result| over the plain float32 run
    and `runs` runs with ulp-perturbed weights: an estimate of the error envelope of a correct
    float32 implementation (one float32 run can land luckily inside a tolerance that its
    neighbours miss)."""
    g = torch.Generator()
    g.manual_seed(1234)
    dev = None
    for k in range(runs + 1):
        p = params if k == 0 else _ulp_perturbed(params, g)
        res = _run(cfg, p, ids, tg, torch.float32, as_f64=True)
        d = {n: (res[n] - ref[n]).abs() for n in ref}
        dev = d if dev is None else {n: torch.maximum(dev[n], d[n]) for n in d}
        if k == 0:
            plain = res
    return plain, dev


def crosscheck(config, weights, tokens, targets, out, envelope_runs=ENVELOPE_RUNS):
    cfg = read_config(config)
    params = read_weights(weights, cfg)
    ids = read_ids(tokens, cfg["vocab_size"], "tokens")
    tg = read_ids(targets, cfg["vocab_size"], "targets")
    if ids.shape != tg.shape:
        raise BadInput(f"targets shape {list(tg.shape)} differs from tokens {list(ids.shape)}")
    probe = []
    ref = _run(cfg, params, ids, tg, torch.float64, probe, as_f64=True)
    plain, dev = f32_deviation(cfg, params, ids, tg, ref, envelope_runs)
    tensors = {k: v.float() for k, v in ref.items()}
    tensors.update({f"f32.{k}": v.float() for k, v in plain.items()})
    tensors.update({f"f32dev.{k}": v.float() for k, v in dev.items()})
    meta = {"config": json.dumps(cfg, sort_keys=True), "torch": torch.__version__,
            "yaml": "pyyaml" if yaml is not None else "fallback",
            "min_row_ratio": repr(_min_row_ratio(probe, cfg["norm_activation_type"]))}
    write_safetensors(out, tensors, meta)


def main(argv):
    torch.set_num_threads(1)  # tiny cases; the machines running this are shared
    if argv and argv[0] == "--cases":
        jobs = [[str(Path(d) / f) for f in ("config.yml", "weights.safetensors", "tokens.json",
                                             "targets.json", "out.safetensors")]
                for d in argv[1:]]
    elif len(argv) == 5 and not argv[0].startswith("-"):
        jobs = [argv]
    else:
        print("usage: crosscheck.py CONFIG WEIGHTS TOKENS TARGETS OUT | --cases DIR...",
              file=sys.stderr)
        return 2
    for job in jobs:
        try:
            crosscheck(*job)
        except (BadInput, OSError, ValueError, KeyError) as e:
            print(f"error: {job[0]}: {e}".replace("\n", " "), file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
