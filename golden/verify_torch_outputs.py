#!/usr/bin/python3
"""Checks, with PyTorch, every file `tokenformer convert` writes (run by test/convert-torch.test.ts).

    /usr/bin/python3 golden/verify_torch_outputs.py JOBS.json

JOBS.json is {"checks": [...]}; each check is one of
  {"kind": "state_dict", "file": OUT.bin, "ref": REF.safetensors, "dtype": "F32"|"F16"|"BF16"}
      torch.load(OUT, weights_only=True) gives REF's tensors, in REF's names: bit-exact for F32,
      and for F16/BF16 bit-equal to torch's own .half()/.bfloat16() of the F32 values; and
      torch.save of the loaded OrderedDict pickles (data.pkl) byte for byte as OUT does.
  {"kind": "safetensors", "file": OUT.safetensors, "ref": ..., "dtype": ...}
      the same value checks for a safetensors file (read here with torch.frombuffer).
  {"kind": "neox", "dir": DIR, "ref": ..., "dtype": ..., "model": {...}, "pipe": bool}
      DIR is what GPT-NeoX + DeepSpeed load with `load: DIR`: the tag in DIR/latest, exactly one
      mp_rank_*_model_states.pt holding "module" and "dp_world_size" (what a module-only load
      reads), and the weights load with strict=True into a re-creation of the official module
      tree (SequentialWrapper → sequential.N), or, with pipe, each layer's own file into its
      layer (PipelineModule.load_state_dir); then the incremental-scaling path
      (pretrain_partial_init) copies them into a model with more parameter tokens.
  {"kind": "make_deepspeed", "dir": DIR, "ref": ..., "tag": "global_step3"}
      writes a checkpoint shaped like one DeepSpeed saves during GPT-NeoX training (numpy and
      Python RNG state, torch.Size shapes, a set, args, fp16 module weights) for the reader test.
Prints one line per check; exits 1 if any check fails.
Omits: running GPT-NeoX or DeepSpeed themselves (neither is installable here); the module tree
below re-creates the parameter names and nesting of megatron/model/{gpt2_model,tokenformer,
word_embeddings,norms,utils}.py and megatron/mpu/layers.py, with no forward pass.
"""

import collections
import glob
import io
import json
import os
import random
import struct
import sys
import zipfile

import numpy as np
import torch
from torch import nn

SF_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
             "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    """{name: tensor} in file order (any dtype above)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = collections.OrderedDict()
    for name, e in header.items():
        b, end = e["data_offsets"]
        data = bytearray(raw[8 + n + b:8 + n + end])
        t = torch.frombuffer(data, dtype=SF_DTYPES[e["dtype"]]) if data else torch.empty(0, dtype=SF_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def bits(t):
    """A tensor's bit pattern as an integer tensor (floats compared exactly, NaN included)."""
    view = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
    return t.view(view[t.dtype]) if t.dtype in view else t


def expected(ref, dtype):
    """What a file stored as `dtype` must hold: torch's own rounding of the F32 values."""
    if dtype == "F16":
        return ref.half() if ref.is_floating_point() else ref
    if dtype == "BF16":
        return ref.bfloat16() if ref.is_floating_point() else ref
    return ref


def same_tensors(got, ref, dtype, what):
    """Problems comparing `got` (name → tensor) with `ref` stored as `dtype`; [] when equal."""
    problems = []
    if sorted(got) != sorted(ref):
        return [f"{what}: names differ: extra {sorted(set(got) - set(ref))[:3]}, missing {sorted(set(ref) - set(got))[:3]}"]
    for name, r in ref.items():
        g, want = got[name], expected(r, dtype)
        if g.dtype != want.dtype or tuple(g.shape) != tuple(want.shape):
            problems.append(f"{what}: {name}: {g.dtype}{tuple(g.shape)} != {want.dtype}{tuple(want.shape)}")
            continue
        gb, wb = bits(g.contiguous()), bits(want.contiguous())
        nan_g = torch.isnan(g.float()) if g.is_floating_point() else torch.zeros_like(gb, dtype=torch.bool)
        nan_w = torch.isnan(want.float()) if want.is_floating_point() else nan_g
        # NOTE: torch's vectorized bf16 kernel writes NaN as 0xFFFF, its scalar one as 0x7FC0;
        # a NaN is checked to be a NaN, every other value bit for bit.
        bad = ((gb != wb) & ~(nan_g & nan_w)) | (nan_g != nan_w)
        if bool(bad.any()):
            i = int(bad.flatten().nonzero()[0])
            problems.append(f"{what}: {name}[{i}]: {g.flatten()[i].item()!r} != {want.flatten()[i].item()!r}")
    return problems


def pickle_bytes(path):
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        return z.read(name)


def check_state_dict(c):
    sd = torch.load(c["file"], weights_only=True)
    ref = read_safetensors(c["ref"])
    problems = same_tensors(sd, ref, c["dtype"], c["file"])
    if not isinstance(sd, collections.OrderedDict):
        problems.append(f"{c['file']}: top value is {type(sd).__name__}, not an OrderedDict")
    buf = io.BytesIO()
    torch.save(collections.OrderedDict(sd.items()), buf)
    buf.seek(0)
    if pickle_bytes(buf) != pickle_bytes(c["file"]):
        problems.append(f"{c['file']}: data.pkl differs from torch.save's for the same OrderedDict")
    return problems


def check_safetensors(c):
    return same_tensors(read_safetensors(c["file"]), read_safetensors(c["ref"]), c["dtype"], c["file"])


# --- the official module tree: parameter names and nesting only ----------------------------

class Pattention(nn.Module):  # megatron/model/tokenformer.py
    def __init__(self, n, c_in, c_out):
        super().__init__()
        self.key_param_tokens = nn.Parameter(torch.zeros(n, c_in))
        self.value_param_tokens = nn.Parameter(torch.zeros(n, c_out))


class RotaryEmbedding(nn.Module):  # positional_embeddings.py: inv_freq not persistent by default
    def __init__(self, dim):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), persistent=False)


class LayerNormNonParam(nn.Module):  # norms.py: no parameters
    pass


class SelfAttention(nn.Module):  # ParallelSelfAttention: query, key, value, rotary_emb, proj
    def __init__(self, m, q, p):
        super().__init__()
        c = m["hidden"]
        self.query, self.key, self.value = Pattention(q, c, c), Pattention(q, c, c), Pattention(q, c, c)
        self.rotary_emb = RotaryEmbedding(max(2, int(c // m["heads"] * m["rotary_pct"])))
        self.attention_dropout = nn.Dropout(0.0)
        self.proj = Pattention(p, c, c)


class TokenformerLayer(nn.Module):  # ParallelTokenformerLayerPipe
    def __init__(self, m, q, p, f):
        super().__init__()
        self.input_layernorm = LayerNormNonParam()
        self.attention = SelfAttention(m, q, p)
        self.post_attention_layernorm = LayerNormNonParam()
        self.mlp = Pattention(f, m["hidden"], m["hidden"])


class EmbeddingPipe(nn.Module):  # word_embeddings.py (rotary: no position embeddings)
    def __init__(self, m):
        super().__init__()
        self.word_embeddings = nn.Embedding(m["vocab"], m["hidden"])  # VocabParallelEmbedding.weight
        self.embedding_dropout = nn.Dropout(0.0)


class NormPipe(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.norm = nn.LayerNorm(m["hidden"])


class ParallelLinearPipe(nn.Module):  # ColumnParallelLinear(bias=False): weight only
    def __init__(self, m):
        super().__init__()
        self.final_linear = nn.Linear(m["hidden"], m["vocab"], bias=False)


class Lambda(nn.Module):  # utils.py: a function as a module, no state
    pass


def official_layers(m, grow=(0, 0, 0)):
    """GPT2ModelPipe's layer list after to_sequential(); None marks a function (pipe: no file)."""
    q, p, f = m["qkv"] + grow[0], m["proj"] + grow[1], m["ffn"] + grow[2]
    layers = [EmbeddingPipe(m), None]
    layers += [TokenformerLayer(m, q, p, f) for _ in range(m["layers"])]
    layers += [None, NormPipe(m), None if m["tied"] else ParallelLinearPipe(m)]
    return layers


class SequentialWrapper(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.sequential = nn.Sequential(*[x if x is not None else Lambda() for x in layers])


def load_module_only(d, tag):
    """What DeepSpeed's load_checkpoint(load_module_only=True) reads: one mp_rank file."""
    problems = []
    files = sorted(glob.glob(os.path.join(d, tag, "mp_rank_*_model_states.pt")))
    if [os.path.basename(f) for f in files] != ["mp_rank_00_model_states.pt"]:
        return None, [f"{d}: mp_rank files {files}"]
    ck = torch.load(files[0], weights_only=True)
    for key in ("module", "dp_world_size"):
        if key not in ck:
            problems.append(f"{files[0]}: no {key!r}")
    return ck, problems


def check_neox(c):
    d, m = c["dir"], c["model"]
    with open(os.path.join(d, "latest")) as f:
        tag = f.read().strip()
    ck, problems = load_module_only(d, tag)
    if ck is None:
        return problems
    ref = read_safetensors(c["ref"])
    layers = official_layers(m)
    if c["pipe"]:
        if ck.get("module", "absent") is not None:
            problems.append("pipeline layout: module must be None")
        sd = collections.OrderedDict()
        for i, layer in enumerate(layers):  # PipelineModule.load_state_dir, layer by layer
            found = sorted(glob.glob(os.path.join(d, tag, f"layer_{i:02d}-*model_states.pt")))
            if layer is None:
                if found:
                    problems.append(f"layer {i} is a function but has files {found}")
                continue
            if len(found) != 1:
                problems.append(f"layer {i}: files {found}")
                continue
            part = torch.load(found[0], weights_only=True)
            layer.load_state_dict(part, strict=True)
            sd.update((f"sequential.{i}.{k}", v) for k, v in part.items())
    else:
        sd = ck["module"]
        SequentialWrapper(layers).load_state_dict(sd, strict=True)
    problems += same_tensors(sd, ref, c["dtype"], d)
    if not c["pipe"]:
        problems += check_partial_init(m, sd)
    return problems


def check_partial_init(m, src):
    """pretrain_partial_init: the incremental loader copies each saved tensor into the grown
    model's state dict, a parameter-token tensor into its first rows (checkpointing.py)."""
    dst = SequentialWrapper(official_layers(m, grow=(4, 3, 5))).state_dict()
    problems = []
    with torch.no_grad():
        for k, v in src.items():
            if k not in dst:
                problems.append(f"partial init: {k} not in the grown model")
                continue
            target = dst[k][: v.shape[0]] if k.endswith("param_tokens") else dst[k]
            if tuple(target.shape) != tuple(v.shape):
                problems.append(f"partial init: {k}: {tuple(v.shape)} into {tuple(target.shape)}")
                continue
            target.copy_(v)
            if not torch.equal(target, v.to(target.dtype)):
                problems.append(f"partial init: {k} not copied")
    return problems


def make_deepspeed(c):
    """A checkpoint shaped like GPT-NeoX's save_ds_checkpoint + DeepSpeed's _save_checkpoint."""
    ref = read_safetensors(c["ref"])
    module = collections.OrderedDict((k, v.half()) for k, v in ref.items())
    state = dict(
        module=module, buffer_names=[], optimizer=None,
        param_shapes=[collections.OrderedDict((k, v.shape) for k, v in module.items())],
        frozen_param_shapes=None, shared_params={}, frozen_param_fragments=None, lr_scheduler=None,
        data_sampler=None, random_ltd=None, sparse_tensor_module_names=set(), skipped_steps=2,
        global_steps=3, global_samples=96, dp_world_size=8, mp_world_size=1, ds_config=None, ds_version="0.12.4",
        iteration=3, args={"num_layers": 2, "tokenizer_type": "HFTokenizer", "padded_vocab_size": 128},
        random_rng_state=random.getstate(), np_rng_state=np.random.get_state(),
        torch_rng_state=torch.get_rng_state(), rng_tracker_states={"model-parallel-rng": torch.get_rng_state()},
    )
    os.makedirs(os.path.join(c["dir"], c["tag"]), exist_ok=True)
    torch.save(state, os.path.join(c["dir"], c["tag"], "mp_rank_00_model_states.pt"))
    with open(os.path.join(c["dir"], "latest"), "w") as f:
        f.write(c["tag"])
    return []


CHECKS = {"state_dict": check_state_dict, "safetensors": check_safetensors, "neox": check_neox,
          "make_deepspeed": make_deepspeed}


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)["checks"]
    failed = 0
    for c in jobs:
        try:
            problems = CHECKS[c["kind"]](c)
        except Exception as e:  # a load that raises is a failed check, reported as such
            problems = [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
        name = c.get("file") or c.get("dir")
        print(f"{'FAIL' if problems else 'ok  '} {c['kind']} {name}")
        for p in problems[:10]:
            print(f"     {p}")
        failed += bool(problems)
    print(f"{len(jobs) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
