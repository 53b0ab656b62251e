# TokenFormer math in plain PyTorch (float64), written from the paper / GPT-NeoX semantics.
# The independent oracle behind the golden fixtures; autograd supplies every gradient.
# Omits: dropout, KV cache, model parallelism, fp16/bf16, MoE routing, attention masks
# other than causal, and any growth logic beyond a per-layer normalization count (normN).
#
# Dimension legend: B = batch, T = time, C = hidden, H = heads, D = head dim,
# N = rows, n = parameter tokens of a Pattention layer, V = vocab.

import math

import torch
import torch.nn.functional as F

VARIANTS = ("l2_norm_gelu", "gelu_l2_norm", "softmax")


def norm_act(s, variant, norm_n):
    """Θ row-wise over the last dim of s [..., n]; norm_n is the layer's count inside √n."""
    if variant == "l2_norm_gelu":
        return F.gelu(s / torch.linalg.vector_norm(s, dim=-1, keepdim=True) * math.sqrt(norm_n))
    if variant == "gelu_l2_norm":
        g = F.gelu(s)
        return g / torch.linalg.vector_norm(g, dim=-1, keepdim=True) * math.sqrt(norm_n)
    if variant == "softmax":
        # NOTE: torch.softmax subtracts the row max; the official code uses exp(S)/‖exp(S)‖₁,
        # equal in exact arithmetic but overflowing for large scores.
        return norm_n * torch.softmax(s, dim=-1)
    raise ValueError(f"unknown variant {variant}")


def pattention(x, k, v, variant, norm_n):
    """x [..., din], k [n, din], v [n, dout] -> [..., dout]. S = x·Kᵀ, no extra scale."""
    return norm_act(x @ k.transpose(0, 1), variant, norm_n) @ v


def layernorm0(x, eps):
    """Non-parametric LayerNorm over the last dim (biased variance)."""
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


def layernorm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), weight=w, bias=b, eps=eps)


def rotary(x, rotary_dim, base):
    """GPT-NeoX partial rotary on x [B, T, H, D]: the first rotary_dim dims of each head
    rotate (rotate_half convention), positions t = 0..T-1, the rest pass through."""
    T = x.shape[1]
    if rotary_dim == 0:
        return x
    inv_freq = 1.0 / base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
    t = torch.arange(T, dtype=torch.float64)
    freqs = torch.outer(t, inv_freq)  # [T, rd/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, rd]
    cos = emb.cos().to(x.dtype)[None, :, None, :]
    sin = emb.sin().to(x.dtype)[None, :, None, :]
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    rotated_half = torch.cat((-x_rot[..., half:], x_rot[..., :half]), dim=-1)
    return torch.cat((x_rot * cos + rotated_half * sin, x_pass), dim=-1)


def causal_attention(q, k, v):
    """q, k, v [B, T, H, D] -> [B, T, H, D]; softmax(q·kᵀ/√D) with key j ≤ query i."""
    T, D = q.shape[1], q.shape[3]
    qh, kh, vh = (t.permute(0, 2, 1, 3) for t in (q, k, v))  # [B, H, T, D]
    scores = qh @ kh.transpose(-1, -2) / math.sqrt(D)  # [B, H, T, T]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ vh).permute(0, 2, 1, 3)


# ---------------------------------------------------------------- model


def param_shapes(cfg):
    """{official name: shape} for a config dict (see gen.MODELS)."""
    L, C, V = cfg["num_layers"], cfg["hidden_size"], cfg["vocab_size"]
    shapes = {"sequential.0.word_embeddings.weight": (V, C)}
    for i in range(L):
        p = f"sequential.{i + 2}"
        for layer in ("query", "key", "value"):
            shapes[f"{p}.attention.{layer}.key_param_tokens"] = (cfg["qkv_slot_num"], C)
            shapes[f"{p}.attention.{layer}.value_param_tokens"] = (cfg["qkv_slot_num"], C)
        shapes[f"{p}.attention.proj.key_param_tokens"] = (cfg["proj_slot_num"], C)
        shapes[f"{p}.attention.proj.value_param_tokens"] = (cfg["proj_slot_num"], C)
        shapes[f"{p}.mlp.key_param_tokens"] = (cfg["ffn_slot_num"], C)
        shapes[f"{p}.mlp.value_param_tokens"] = (cfg["ffn_slot_num"], C)
    shapes[f"sequential.{L + 3}.norm.weight"] = (C,)
    shapes[f"sequential.{L + 3}.norm.bias"] = (C,)
    if cfg["no_weight_tying"]:
        shapes[f"sequential.{L + 4}.final_linear.weight"] = (V, C)
    return shapes


def rotary_dim(cfg):
    D = cfg["hidden_size"] // cfg["num_attention_heads"]
    return int(D * cfg["rotary_pct"])


def model_forward(cfg, params, ids, probe=None):
    """ids [B, T] (int64) -> logits [B, T, V]. params: {official name: tensor}.
    probe, if given, is a list that receives (layer name, S) for every Pattention call."""
    L, C, H = cfg["num_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
    eps, variant = cfg["layernorm_epsilon"], cfg["norm_activation_type"]
    B, T = ids.shape
    D = C // H
    rd = rotary_dim(cfg)

    def patt(prefix, x):
        k = params[f"{prefix}.key_param_tokens"]
        v = params[f"{prefix}.value_param_tokens"]
        if probe is not None:
            probe.append((prefix, (x @ k.transpose(0, 1)).detach()))
        return pattention(x, k, v, variant, k.shape[0])

    x = params["sequential.0.word_embeddings.weight"][ids]  # [B, T, C]
    for i in range(L):
        p = f"sequential.{i + 2}"
        h = layernorm0(x, eps)
        q = patt(f"{p}.attention.query", h).view(B, T, H, D)
        k = patt(f"{p}.attention.key", h).view(B, T, H, D)
        v = patt(f"{p}.attention.value", h).view(B, T, H, D)
        q = rotary(q, rd, cfg["rotary_emb_base"])
        k = rotary(k, rd, cfg["rotary_emb_base"])
        a = causal_attention(q, k, v).reshape(B, T, C)
        x = x + patt(f"{p}.attention.proj", a)
        x = x + patt(f"{p}.mlp", layernorm0(x, eps))
    y = layernorm(x, params[f"sequential.{L + 3}.norm.weight"],
                  params[f"sequential.{L + 3}.norm.bias"], eps)
    if cfg["no_weight_tying"]:
        w_out = params[f"sequential.{L + 4}.final_linear.weight"]
    else:
        w_out = params["sequential.0.word_embeddings.weight"]
    return y @ w_out.transpose(0, 1)  # [B, T, V]


def model_loss(cfg, params, ids, targets, probe=None):
    logits = model_forward(cfg, params, ids, probe)
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))  # mean over B·T
    return logits, loss


def theta_row_ratio(probe, variant):
    """Smallest norm of the rows an l2 variant divides by (S, or gelu(S)), over their median,
    across every probed Pattention call: a conditioning diagnostic (near 0, Θ's gradient is
    singular). probe: (layer name, S) pairs from model_forward."""
    worst = math.inf
    for _, s in probe:
        r = s if variant == "l2_norm_gelu" else F.gelu(s)
        norms = torch.linalg.vector_norm(r, dim=-1).flatten()
        worst = min(worst, float(norms.min() / norms.median()))
    return worst
