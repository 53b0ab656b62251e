# Op fixtures: one builder per op, several cases each (odd sizes, all variants, edge rows).
# Each case returns (attrs, {tensor name: float32/int32 tensor}) per golden/FORMAT.md.
# Omits: file writing and the manifest (gen.py).

import math

import torch
import torch.nn.functional as F

import tfmath
from common import F64, rand32, randint32, randn32, rng, vjp_fixture


def _mm(a, b, transA, transB):
    a = a.transpose(-1, -2) if transA else a
    b = b.transpose(-1, -2) if transB else b
    return a @ b


def matmul_case(a_shape, b_shape, transA, transB):
    def build(name):
        g = rng(name)
        inputs = {"a": randn32(g, a_shape), "b": randn32(g, b_shape)}
        fn = lambda a, b: {"c": _mm(a, b, transA, transB)}
        return {"transA": transA, "transB": transB}, vjp_fixture(g, fn, inputs, ["a", "b"])
    return build


def gelu_case(kind):
    def build(name):
        g = rng(name)
        if kind == "randn":
            x = randn32(g, (13, 37), scale=3.0)
        else:  # a sweep of [-10, 10] plus zero and tiny magnitudes
            sweep = torch.linspace(-10.0, 10.0, 401, dtype=F64)
            special = torch.tensor([0.0, 1e-7, -1e-7, 1e-30, -1e-30, 5.5, -5.5, 30.0, -30.0],
                                   dtype=F64)
            x = torch.cat((sweep, special)).float()
        fn = lambda x: {"y": F.gelu(x)}
        return {}, vjp_fixture(g, fn, {"x": x}, ["x"])
    return build


def _check_rows(s, variant):
    """The l2 variants divide by a row norm: keep every generated row far from zero."""
    r = s.double() if variant == "l2_norm_gelu" else F.gelu(s.double())
    if variant != "softmax":
        mins = torch.linalg.vector_norm(r, dim=-1).min().item()
        assert mins > 0.05, f"row norm {mins} too close to zero"


def norm_act_case(variant, shape, norm_n, scale):
    def build(name):
        g = rng(name)
        s = randn32(g, shape, scale=scale)
        _check_rows(s, variant)
        fn = lambda s: {"a": tfmath.norm_act(s, variant, norm_n)}
        attrs = {"variant": variant, "normN": norm_n}
        return attrs, vjp_fixture(g, fn, {"s": s}, ["s"])
    return build


def pattention_case(variant, N, din, n, dout, norm_n, kscale=0.3):
    def build(name):
        g = rng(name)
        inputs = {"x": randn32(g, (N, din)), "k": randn32(g, (n, din), scale=kscale),
                  "v": randn32(g, (n, dout))}
        _check_rows((inputs["x"].double() @ inputs["k"].double().T).float(), variant)
        fn = lambda x, k, v: {"out": tfmath.pattention(x, k, v, variant, norm_n)}
        attrs = {"variant": variant, "normN": norm_n}
        return attrs, vjp_fixture(g, fn, inputs, ["x", "k", "v"])
    return build


def ln0_case(shape, eps, scale, shift):
    def build(name):
        g = rng(name)
        x = randn32(g, shape, scale=scale, shift=shift)
        fn = lambda x: {"y": tfmath.layernorm0(x, eps)}
        return {"eps": eps}, vjp_fixture(g, fn, {"x": x}, ["x"])
    return build


def layernorm_case(shape, eps):
    def build(name):
        g = rng(name)
        C = shape[-1]
        inputs = {"x": randn32(g, shape, scale=2.0, shift=0.5),
                  "weight": randn32(g, (C,), scale=0.2, shift=1.0),
                  "bias": randn32(g, (C,), scale=0.2)}
        fn = lambda x, weight, bias: {"y": tfmath.layernorm(x, weight, bias, eps)}
        return {"eps": eps}, vjp_fixture(g, fn, inputs, ["x", "weight", "bias"])
    return build


def rotary_case(shape, rd, base):
    def build(name):
        g = rng(name)
        fn = lambda x: {"y": tfmath.rotary(x, rd, base)}
        attrs = {"rotaryDim": rd, "base": base}
        return attrs, vjp_fixture(g, fn, {"x": randn32(g, shape)}, ["x"])
    return build


def attention_case(shape, qscale):
    def build(name):
        g = rng(name)
        inputs = {"q": randn32(g, shape, scale=qscale), "k": randn32(g, shape),
                  "v": randn32(g, shape)}
        fn = lambda q, k, v: {"out": tfmath.causal_attention(q, k, v)}
        return {}, vjp_fixture(g, fn, inputs, ["q", "k", "v"])
    return build


def embedding_case(B, T, V, C, id_range):
    def build(name):
        g = rng(name)
        inputs = {"ids": randint32(g, id_range, (B, T)), "table": randn32(g, (V, C))}
        fn = lambda ids, table: {"out": table[ids]}
        return {}, vjp_fixture(g, fn, inputs, ["table"])
    return build


def cross_entropy_case(N, V, scale, shift):
    def build(name):
        g = rng(name)
        inputs = {"logits": randn32(g, (N, V), scale=scale, shift=shift),
                  "targets": randint32(g, V, (N,))}
        fn = lambda logits, targets: {"loss": F.cross_entropy(logits, targets)}
        return {}, vjp_fixture(g, fn, inputs, ["logits"])
    return build


def adamw_case(shape, step, lr, wd, max_norm, clip, prior_state):
    """One AdamW update through torch.optim.AdamW with injected state. clip: 'active'
    (grad_norm_sq large), 'inactive' (small) or 'disabled' (maxGradNorm 0)."""
    def build(name):
        g = rng(name)
        param = randn32(g, shape, scale=0.5)
        grad = randn32(g, shape, scale=0.05)
        if prior_state:
            m = randn32(g, shape, scale=0.02)
            v = rand32(g, shape, 1e-5, 4e-3)
        else:
            m = torch.zeros(shape, dtype=torch.float32)
            v = torch.zeros(shape, dtype=torch.float32)
        own = float((grad.double() ** 2).sum())
        gns = {"active": own * 4.0 + 9.0, "inactive": 0.25, "disabled": 100.0}[clip]
        gns32 = torch.tensor(gns, dtype=torch.float32)
        coef = 1.0
        if max_norm > 0:
            coef = min(1.0, max_norm / (math.sqrt(float(gns32)) + 1e-6))
        assert (coef < 1.0) == (clip == "active")
        p = param.double().clone().requires_grad_(True)
        p.grad = grad.double() * coef
        opt = torch.optim.AdamW([p], lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=wd)
        opt.state[p] = {"step": torch.tensor(float(step - 1)),
                        "exp_avg": m.double().clone(), "exp_avg_sq": v.double().clone()}
        opt.step()
        st = opt.state[p]
        attrs = {"lr": lr, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weightDecay": wd,
                 "step": step, "maxGradNorm": max_norm}
        tensors = {"param": param, "grad": grad, "m": m, "v": v, "grad_norm_sq": gns32,
                   "param_out": p.detach().float(), "m_out": st["exp_avg"].float(),
                   "v_out": st["exp_avg_sq"].float()}
        return attrs, tensors
    return build


def op_cases():
    """[(name, op, builder)] for every op fixture."""
    cases = []
    add = lambda name, op, b: cases.append((name, op, b))
    add("matmul_nn_odd", "matmul", matmul_case((13, 48), (48, 20), False, False))
    add("matmul_tn_odd", "matmul", matmul_case((48, 13), (48, 20), True, False))
    add("matmul_nt_odd", "matmul", matmul_case((13, 48), (20, 48), False, True))
    add("matmul_tt_odd", "matmul", matmul_case((48, 13), (20, 48), True, True))
    add("matmul_tiles_65x70x33", "matmul", matmul_case((65, 70), (70, 33), False, False))
    add("matmul_batched_shared_b", "matmul", matmul_case((2, 3, 13, 37), (37, 20), False, False))
    add("matmul_batched_shared_b_nt", "matmul", matmul_case((2, 9, 48), (37, 48), False, True))
    add("matmul_batched_nt", "matmul", matmul_case((2, 3, 9, 12), (2, 3, 9, 12), False, True))
    add("matmul_batched_tn", "matmul", matmul_case((6, 13, 7), (6, 13, 5), True, False))
    add("matmul_batched_tt", "matmul", matmul_case((2, 5, 4), (2, 3, 5), True, True))
    add("gelu_randn", "gelu", gelu_case("randn"))
    add("gelu_sweep", "gelu", gelu_case("sweep"))
    for v in tfmath.VARIANTS:
        add(f"norm_act_{v}_odd", "norm_act", norm_act_case(v, (13, 37), 37, 2.0))
        add(f"norm_act_{v}_grown", "norm_act", norm_act_case(v, (9, 45), 37, 2.0))
        add(f"pattention_{v}_odd", "pattention", pattention_case(v, 13, 48, 37, 20, 37))
        add(f"pattention_{v}_grown", "pattention", pattention_case(v, 9, 32, 45, 24, 37))
    add("norm_act_softmax_large", "norm_act", norm_act_case("softmax", (5, 37), 37, 30.0))
    add("norm_act_l2_norm_gelu_wide", "norm_act",
        norm_act_case("l2_norm_gelu", (3, 200), 200, 0.05))
    add("norm_act_gelu_l2_norm_small", "norm_act",
        norm_act_case("gelu_l2_norm", (4, 64), 64, 0.1))
    add("pattention_l2_norm_gelu_tiny", "pattention",
        pattention_case("l2_norm_gelu", 4, 8, 5, 3, 5, kscale=1.0))
    add("layernorm_nonparam_odd", "layernorm_nonparam", ln0_case((13, 48), 1e-5, 2.0, 3.0))
    add("layernorm_nonparam_small_var", "layernorm_nonparam",
        ln0_case((7, 37), 1e-5, 3e-3, 0.0))  # variance ~ eps: both matter
    add("layernorm_nonparam_eps1e-6", "layernorm_nonparam", ln0_case((9, 20), 1e-6, 1.0, 0.0))
    add("layernorm_odd", "layernorm", layernorm_case((13, 48), 1e-5))
    add("layernorm_eps1e-6", "layernorm", layernorm_case((9, 37), 1e-6))
    add("rotary_partial", "rotary", rotary_case((2, 9, 3, 16), 4, 10000))
    add("rotary_full", "rotary", rotary_case((2, 9, 3, 16), 16, 10000))
    add("rotary_odd_partial", "rotary", rotary_case((2, 7, 4, 12), 6, 10000))
    add("rotary_full_base500", "rotary", rotary_case((2, 9, 4, 12), 12, 500))
    add("rotary_long", "rotary", rotary_case((1, 37, 2, 8), 8, 10000))
    add("attention_small", "attention", attention_case((2, 9, 3, 16), 1.5))
    add("attention_odd", "attention", attention_case((2, 13, 4, 12), 1.5))
    add("attention_t1", "attention", attention_case((1, 1, 2, 8), 1.0))
    add("attention_peaked", "attention", attention_case((1, 11, 2, 8), 4.0))
    add("embedding_odd", "embedding", embedding_case(2, 7, 67, 48, 10))
    add("embedding_small", "embedding", embedding_case(3, 5, 10, 5, 10))
    add("cross_entropy_v101", "cross_entropy", cross_entropy_case(13, 101, 3.0, 0.0))
    add("cross_entropy_large", "cross_entropy", cross_entropy_case(6, 101, 15.0, 60.0))
    add("cross_entropy_v67", "cross_entropy", cross_entropy_case(14, 67, 1.0, 0.0))
    add("adamw_step1_clip_active", "adamw",
        adamw_case((13, 37), 1, 1e-3, 0.1, 1.0, "active", False))
    add("adamw_step5_clip_inactive", "adamw",
        adamw_case((13, 37), 5, 6e-4, 0.1, 1.0, "inactive", True))
    add("adamw_step3_no_decay", "adamw", adamw_case((48,), 3, 2e-3, 0.0, 1.0, "active", True))
    add("adamw_step2_clip_disabled", "adamw",
        adamw_case((7, 20), 2, 1e-2, 0.1, 0.0, "disabled", True))
    return cases
