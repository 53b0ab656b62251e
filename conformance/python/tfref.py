# TokenFormer math for the Python conformance adapter: golden/tfmath.py (the independent float64
# PyTorch implementation behind the golden fixtures), wrapped so that a planted bug ("mutation")
# can replace one piece, and so that every op's output can be rounded to a storage dtype (the
# f16/bf16 audit). Without a mutation each function is tfmath's own.
# Omits: reading or writing files (adapter.py), and anything tfmath omits (dropout, KV cache).
#
# Dimension legend: B batch, T time, C hidden, H heads, D head dim, n parameter tokens, V vocab.

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden"))
import tfmath  # noqa: E402

# name -> what the planted bug does (spec/conformance.md, "Planted bugs")
MUTATIONS = {
    "drop-sqrt-n": "Θ without its √normN factor (l2_norm_gelu: gelu(S/‖S‖); gelu_l2_norm: g/‖g‖)",
    "tanh-gelu": "GELU by the tanh approximation instead of the exact erf form",
    "rotary-wrong-half": "rotate_half negates the wrong half: cat(x2, −x1), i.e. rotation by −θ",
    "eps-outside-sqrt": "LayerNorm divides by √var + eps instead of √(var + eps)",
    "causal-off-by-one": "the causal mask lets query i see key i + 1",
    "softmax-no-n": "the softmax Θ without its ×normN (plain softmax)",
    "attn-scale-d": "attention scores scaled by 1/D instead of 1/√D",
    "tied-head-transposed": "a tied head reads the (V, C) embedding as (C, V): logits = y·E.reshape(C, V)",
    "norm-n-current": "√n from the layer's current token count n, ignoring tokenformer_norm_slots (normN)",
}


def tanh_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class Ops:
    """The ops of one run: dtype is the compute dtype; store (None, float16 or bfloat16) is the
    dtype every op output is rounded through; mutation names one entry of MUTATIONS or None."""

    def __init__(self, mutation=None, dtype=torch.float64, store=None):
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"unknown mutation {mutation!r}")
        self.mut, self.dtype, self.store = mutation, dtype, store

    def r(self, x):
        """Round x through the storage dtype (identity unless auditing f16/bf16)."""
        return x if self.store is None or not x.is_floating_point() else x.to(self.store).to(self.dtype)

    def gelu(self, x):
        return tanh_gelu(x) if self.mut == "tanh-gelu" else F.gelu(x)

    def norm_act(self, s, variant, norm_n):
        if self.mut not in ("drop-sqrt-n", "tanh-gelu", "softmax-no-n"):
            return tfmath.norm_act(s, variant, norm_n)
        sq = 1.0 if self.mut == "drop-sqrt-n" else math.sqrt(norm_n)
        if variant == "l2_norm_gelu":
            return self.gelu(s / torch.linalg.vector_norm(s, dim=-1, keepdim=True) * sq)
        if variant == "gelu_l2_norm":
            g = self.gelu(s)
            return g / torch.linalg.vector_norm(g, dim=-1, keepdim=True) * sq
        return (1.0 if self.mut == "softmax-no-n" else norm_n) * torch.softmax(s, dim=-1)

    def pattention(self, x, k, v, variant, norm_n):
        s = self.r(x @ k.transpose(0, 1))
        return self.r(self.r(self.norm_act(s, variant, norm_n)) @ v)

    def layernorm(self, x, w, b, eps):
        if self.mut != "eps-outside-sqrt":
            return tfmath.layernorm(x, w, b, eps)
        mu = x.mean(dim=-1, keepdim=True)
        var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
        y = (x - mu) / (var.sqrt() + eps)
        return y if w is None else y * w + b

    def rotary(self, x, rotary_dim, base):
        if self.mut != "rotary-wrong-half" or rotary_dim == 0:
            return tfmath.rotary(x, rotary_dim, base)
        # tfmath.rotary with the halves of rotate_half swapped
        T, half = x.shape[1], rotary_dim // 2
        inv_freq = 1.0 / base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
        freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = (f().to(x.dtype)[None, :, None, :] for f in (emb.cos, emb.sin))
        x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
        wrong = torch.cat((x_rot[..., half:], -x_rot[..., :half]), dim=-1)
        return torch.cat((x_rot * cos + wrong * sin, x_pass), dim=-1)

    def causal_softmax(self, s, scale):
        """P = softmax(scale·s) over the last dim of [..., T, T], key j ≤ query i."""
        T = s.shape[-1]
        offset = 2 if self.mut == "causal-off-by-one" else 1
        mask = torch.ones(T, T, dtype=torch.bool).triu(offset)
        return torch.softmax((s * scale).masked_fill(mask, float("-inf")), dim=-1)

    def attention(self, q, k, v):
        """q, k, v [B, T, H, D] -> [B, T, H, D]."""
        if self.mut not in ("causal-off-by-one", "attn-scale-d") and self.store is None:
            return tfmath.causal_attention(q, k, v)
        D = q.shape[3]
        qh, kh, vh = (t.permute(0, 2, 1, 3) for t in (q, k, v))  # [B, H, T, D]
        scale = 1.0 / D if self.mut == "attn-scale-d" else 1.0 / math.sqrt(D)
        p = self.r(self.causal_softmax(self.r(qh @ kh.transpose(-1, -2)), scale))
        return (p @ vh).permute(0, 2, 1, 3)

    def head(self, y, w_out, tied):
        """logits = y·Wᵀ, W the (V, C) embedding (tied) or final_linear."""
        if tied and self.mut == "tied-head-transposed":
            return y @ w_out.reshape(w_out.shape[1], w_out.shape[0])
        return y @ w_out.transpose(0, 1)


def layer_norm_n(cfg, prefix, n, ops):
    """The n inside √n of a layer: tokenformer_norm_slots[prefix] if pinned, else its n."""
    if ops.mut == "norm-n-current":
        return n
    return cfg.get("tokenformer_norm_slots", {}).get(prefix, n)


def model_forward(cfg, params, ids, ops, trace=None):
    """ids [B, T] (int64) -> logits [B, T, V]; trace(name, tensor) sees every intermediate of
    spec/conformance.md in order (block ones as [B, T, C])."""
    L, C, H = cfg["num_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
    eps, variant = cfg.get("layernorm_epsilon", 1e-5), cfg.get("norm_activation_type", "l2_norm_gelu")
    base = cfg.get("rotary_emb_base", 10000)
    B, T = ids.shape
    D = C // H
    rd = int(D * cfg.get("rotary_pct", 1.0))
    see = trace or (lambda name, t: None)

    def patt(prefix, x):
        k, v = params[f"{prefix}.key_param_tokens"], params[f"{prefix}.value_param_tokens"]
        return ops.pattention(x, k, v, variant, layer_norm_n(cfg, prefix, k.shape[0], ops))

    x = params["sequential.0.word_embeddings.weight"][ids]  # [B, T, C]
    see("embed", x)
    for i in range(L):
        p, pt = f"sequential.{i + 2}", f"block.{i}."
        h = ops.r(ops.layernorm(x, None, None, eps))
        q, k, v = (patt(f"{p}.attention.{n}", h) for n in ("query", "key", "value"))
        for name, t in (("h", h), ("q", q), ("k", k), ("v", v)):
            see(pt + name, t)
        q = ops.r(ops.rotary(q.view(B, T, H, D), rd, base))
        k = ops.r(ops.rotary(k.view(B, T, H, D), rd, base))
        see(pt + "q_rot", q.reshape(B, T, C))
        see(pt + "k_rot", k.reshape(B, T, C))
        a = ops.r(ops.attention(q, k, v.view(B, T, H, D)).reshape(B, T, C))
        proj = patt(f"{p}.attention.proj", a)
        x1 = ops.r(x + proj)
        ffn_in = ops.r(ops.layernorm(x1, None, None, eps))
        ffn_out = patt(f"{p}.mlp", ffn_in)
        x = ops.r(x1 + ffn_out)
        for name, t in (("attn", a), ("proj", proj), ("x1", x1), ("ffn_in", ffn_in), ("ffn_out", ffn_out), ("out", x)):
            see(pt + name, t)
    y = ops.r(ops.layernorm(x, params[f"sequential.{L + 3}.norm.weight"], params[f"sequential.{L + 3}.norm.bias"], eps))
    see("final_norm", y)
    tied = not cfg.get("no_weight_tying", False)
    w_out = params["sequential.0.word_embeddings.weight" if tied else f"sequential.{L + 4}.final_linear.weight"]
    logits = ops.r(ops.head(y, w_out, tied))
    return logits
