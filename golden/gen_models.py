# Model and train fixtures: tiny TokenFormer configs (written as official-style GPT-NeoX
# YAML), seeded parameters, logits/loss/gradients, and three-step AdamW training runs.
# Omits: file writing and the manifest (gen.py).

import math

import torch

import tfmath
from common import F64, randint32, randn32, rng

# init: "official" = keys N(0, 0.02), values wang_init N(0, 2/(L·√C)), embedding and
# final_linear N(0, 0.02), final norm weight 1 / bias 0 (GPT-NeoX "normal" + "wang_init").
# Otherwise a dict of stds, scaled up so Θ is far from linear and the logits are not
# near-uniform; the final norm then gets weight 1 + 0.2·N(0,1), bias 0.2·N(0,1).
SCALED = {"key": 0.5, "value": 0.3, "embed": 0.3, "out": 0.3}
# The softmax variant multiplies by n (n·softmax): with a peaked softmax a Pattention output
# is ~n·std(values), and with near-uniform softmax (small keys) q and k are nearly constant
# over positions, so the attention gradients become differences of much larger terms. Both
# make float32 gradients unreliable at rel 1e-3 (see the float32 self-check below); values
# N(0, 0.03) and keys N(0, 0.3) keep the softmax models well-conditioned and non-linear.
SOFTMAX_SCALED = {"key": 0.3, "value": 0.03, "embed": 0.3, "out": 0.3}

BASE = {"max_position_embeddings": 64, "rotary_emb_base": 10000, "layernorm_epsilon": 1e-5,
        "norm": "layernorm_nonparam", "final_norm": "layernorm"}

MODELS = [
    dict(name="tiny_l2_tied", num_layers=2, hidden_size=32, num_attention_heads=2,
         qkv_slot_num=24, proj_slot_num=20, ffn_slot_num=40, vocab_size=50, rotary_pct=0.25,
         norm_activation_type="l2_norm_gelu", no_weight_tying=False, batch=2, seq=7,
         init="official", style="flow"),
    dict(name="tiny_gelu_l2_untied", num_layers=1, hidden_size=32, num_attention_heads=4,
         qkv_slot_num=16, proj_slot_num=16, ffn_slot_num=48, vocab_size=41, rotary_pct=1.0,
         norm_activation_type="gelu_l2_norm", no_weight_tying=True, batch=2, seq=8,
         init=dict(SCALED, value="wang"), style="block"),
    dict(name="tiny_softmax_tied", num_layers=2, hidden_size=32, num_attention_heads=2,
         qkv_slot_num=20, proj_slot_num=24, ffn_slot_num=36, vocab_size=53, rotary_pct=0.25,
         norm_activation_type="softmax", no_weight_tying=False, batch=2, seq=9,
         init=SOFTMAX_SCALED, style="flow"),
    dict(name="tiny_odd_l2_untied", num_layers=2, hidden_size=48, num_attention_heads=4,
         qkv_slot_num=37, proj_slot_num=29, ffn_slot_num=53, vocab_size=67, rotary_pct=0.5,
         norm_activation_type="l2_norm_gelu", no_weight_tying=True, batch=2, seq=9,
         init=dict(SCALED, embed=0.5), style="flow"),
    dict(name="tiny_odd_gelu_l2_tied", num_layers=1, hidden_size=48, num_attention_heads=4,
         qkv_slot_num=37, proj_slot_num=29, ffn_slot_num=53, vocab_size=67, rotary_pct=1.0,
         norm_activation_type="gelu_l2_norm", no_weight_tying=False, batch=2, seq=7,
         rotary_emb_base=500, layernorm_epsilon=1e-6, init=SCALED, style="flow-mixed"),
    dict(name="tiny_odd_softmax_untied", num_layers=2, hidden_size=48, num_attention_heads=3,
         qkv_slot_num=37, proj_slot_num=29, ffn_slot_num=53, vocab_size=67, rotary_pct=0.25,
         norm_activation_type="softmax", no_weight_tying=True, batch=2, seq=8,
         init=SOFTMAX_SCALED, style="flow"),
]

TRAIN = [
    dict(name="train_tiny_l2_tied", model="tiny_l2_tied", lrs=[3e-3, 2e-3, 1e-3]),
    dict(name="train_tiny_gelu_l2_untied", model="tiny_gelu_l2_untied", lrs=[1e-2, 5e-3, 2e-3]),
]

CONFIG_KEYS = ["num_layers", "hidden_size", "num_attention_heads", "qkv_slot_num",
               "proj_slot_num", "ffn_slot_num", "max_position_embeddings", "rotary_pct",
               "rotary_emb_base", "norm", "final_norm", "norm_activation_type",
               "no_weight_tying", "layernorm_epsilon", "vocab_size"]
# Spelled with '-' in the "flow-mixed" config, as some official GPT-NeoX files do.
DASHED = {"num_layers", "qkv_slot_num", "ffn_slot_num", "rotary_pct", "final_norm",
          "no_weight_tying", "layernorm_epsilon", "vocab_size"}


def full_config(m):
    cfg = dict(BASE)
    cfg.update({k: v for k, v in m.items() if k in CONFIG_KEYS})
    return cfg


def init_description(m):
    if m["init"] == "official":
        return ("official: keys N(0,0.02); values wang_init N(0,2/(L*sqrt(C))); embedding and "
                "final_linear N(0,0.02); final norm weight 1, bias 0")
    i = m["init"]
    val = "wang_init N(0,2/(L*sqrt(C)))" if i["value"] == "wang" else f"N(0,{i['value']})"
    return (f"scaled: keys N(0,{i['key']}); values {val}; embedding N(0,{i['embed']}); "
            f"final_linear N(0,{i['out']}); final norm weight 1+0.2*N(0,1), bias 0.2*N(0,1)")


def _yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float) and (v != 0 and abs(v) < 1e-3):
        return f"{v:.1e}"  # e.g. 1.0e-05: a float in both YAML 1.1 and 1.2
    return repr(v)


def config_yaml(m):
    """Official-style GPT-NeoX YAML for model m (flow map with comments, like the files in
    configs/tokenformer/, or a block map for style 'block')."""
    cfg = full_config(m)
    L = cfg["num_layers"]
    head = [f"# Tiny TokenFormer for the golden fixtures ({m['name']}); written by golden/gen.py.",
            f"# Parameter init used for the fixture: {init_description(m)}."]
    extra = [("pos_emb", "rotary"), ("seq_length", m["seq"] + 7),
             ("init_method", "normal"), ("output_layer_init_method", "wang_init")]
    items = [(k, _yaml_value(cfg[k])) for k in CONFIG_KEYS] + \
            [(k, _yaml_value(v)) for k, v in extra]
    if m["style"] == "block":
        lines = head + [f"{k}: {v}" for k, v in items]
        lines.append(f"attention_config: [[[tokenformer], {L}]]")
        return "\n".join(lines) + "\n"
    mixed = m["style"] == "flow-mixed"
    lines = head + ["{"]
    for k, v in items:
        key = k.replace("_", "-") if mixed and k in DASHED else k
        comment = ""
        if k == "norm_activation_type":
            comment = ' # "l2_norm_gelu", "gelu_l2_norm", "softmax"'
        lines.append(f'  "{key}": {v},{comment}')
        if k == "vocab_size":
            lines.append("")
            lines.append("  # not read by tokenformer; present as in the official files")
    lines.append(f'  "attention_config": [[["tokenformer"], {L}]],')
    lines.append('  "adlr_autoresume": True')
    lines.append("}")
    return "\n".join(lines) + "\n"


def init_params(m, g):
    cfg = full_config(m)
    L, C = cfg["num_layers"], cfg["hidden_size"]
    wang = 2.0 / (L * math.sqrt(C))
    i = m["init"]
    official = i == "official"
    params = {}
    for name, shape in sorted(tfmath.param_shapes(cfg).items()):
        if name.endswith("norm.weight"):
            params[name] = torch.ones(shape) if official else randn32(g, shape, 0.2, 1.0)
        elif name.endswith("norm.bias"):
            params[name] = torch.zeros(shape) if official else randn32(g, shape, 0.2)
        elif name.endswith("key_param_tokens"):
            params[name] = randn32(g, shape, 0.02 if official else i["key"])
        elif name.endswith("value_param_tokens"):
            std = wang if official or i["value"] == "wang" else i["value"]
            params[name] = randn32(g, shape, std)
        elif name.endswith("word_embeddings.weight"):
            params[name] = randn32(g, shape, 0.02 if official else i["embed"])
        else:  # final_linear.weight
            params[name] = randn32(g, shape, 0.02 if official else i["out"])
    return params


def model_data(m):
    """(cfg, params float32, ids int32, targets int32) for model m, deterministic."""
    g = rng(m["name"])
    cfg = full_config(m)
    params = init_params(m, g)
    ids = randint32(g, cfg["vocab_size"], (m["batch"], m["seq"]))
    targets = randint32(g, cfg["vocab_size"], (m["batch"], m["seq"]))
    return cfg, params, ids, targets


def _logits_and_grads(cfg, params, ids, targets, dtype, probe=None):
    leaves = {k: v.to(dtype).requires_grad_(True) for k, v in sorted(params.items())}
    logits, loss = tfmath.model_loss(cfg, leaves, ids.long(), targets.long(), probe)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return logits, loss, dict(zip(leaves, grads))


def _f32_conditioning(cfg, params, ids, targets, logits, grads):
    """How far a plain float32 torch run lands from the float64 reference, in units of the
    reference tolerances (values: 1e-5 + 1e-4·|ref|; grads: 1e-3·|ref| + 1e-6·max|ref|).
    A fixture whose float32 rerun uses a large part of the tolerance is ill-conditioned:
    a correct float32 implementation could fail it."""
    lg32, _, g32 = _logits_and_grads(cfg, params, ids, targets, torch.float32)
    v = float(((lg32.double() - logits).abs() / (1e-5 + 1e-4 * logits.abs())).max())
    g = max(float(((g32[n].double() - gr).abs()
                   / (1e-3 * gr.abs() + 1e-6 * gr.abs().max())).max()) for n, gr in grads.items())
    return v, g


# NOTE: the float32 reruns below (audit only) depend on the CPU's and BLAS's float32 rounding
# order, so they differ between machines: they are a tool for choosing fixtures (`gen.py
# --audit`, on the machine that adds a case, with a wide margin), never part of regenerating
# or drift-checking, which must give the same files on every x86-64 machine.
# The committed fixtures measure up to 0.54 (models) and 0.23 (training) on the machines tried
# (AMD EPYC, Intel Xeon with AVX-512): the same fixture moves by about 0.1 between CPUs, so the
# margins leave room for that spread and still keep a quarter of the tolerance free.
AUDIT_MODEL_MARGIN = 0.75  # a float32 rerun may use at most 0.75x the reference tolerance
AUDIT_TRAIN_MARGIN = 0.4  # a float32 training rerun: at most 0.4x the values tolerance


def model_fixture(m, audit=False):
    cfg, params, ids, targets = model_data(m)
    probe = []
    logits, loss, grads = _logits_and_grads(cfg, params, ids, targets, F64, probe)
    ratio = tfmath.theta_row_ratio(probe, cfg["norm_activation_type"])
    if cfg["norm_activation_type"] != "softmax":
        assert ratio > 0.05, f"{m['name']}: a Pattention row norm is near zero ({ratio})"
    cond = None
    if audit:
        cond = _f32_conditioning(cfg, params, ids, targets, logits.detach(),
                                 {n: gr.detach() for n, gr in grads.items()})
    tensors = dict(params)
    tensors.update({"input_ids": ids, "targets": targets, "logits": logits.detach().float(),
                    "loss": loss.detach().float()})
    for n, gr in grads.items():
        tensors[f"grad.{n}"] = gr.float()
    info = {"loss": float(loss), "min_row_ratio": ratio, "f32_cond": cond}
    return tensors, info


def _train(cfg, params, ids, targets, lrs, dtype):
    """Three AdamW steps (official recipe) in the given dtype; returns losses, grad norms,
    final params."""
    leaves = {k: v.to(dtype).clone().requires_grad_(True) for k, v in sorted(params.items())}
    L = cfg["num_layers"]
    no_decay = {f"sequential.{L + 3}.norm.weight", f"sequential.{L + 3}.norm.bias"}
    groups = [{"params": [p for n, p in leaves.items() if n not in no_decay],
               "weight_decay": 0.1},
              {"params": [p for n, p in leaves.items() if n in no_decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lrs[0], betas=(0.9, 0.95), eps=1e-8)
    losses, norms = [], []
    for lr in lrs:
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.zero_grad(set_to_none=True)
        _, loss = tfmath.model_loss(cfg, leaves, ids.long(), targets.long())
        loss.backward()
        losses.append(float(loss))
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(leaves.values()), 1.0)))
        opt.step()
    return losses, norms, {n: p.detach() for n, p in leaves.items()}


def train_fixture(t, models_by_name, audit=False):
    m = models_by_name[t["model"]]
    cfg, params, ids, targets = model_data(m)
    losses, norms, final = _train(cfg, params, ids, targets, t["lrs"], F64)
    # Audit (--audit only): the same run in float32 must land well inside the reference tolerance
    # (atol 1e-5, rtol 1e-4). NOTE: AdamW is ill-conditioned where a clipped gradient
    # element is ~eps (1e-8): g/(|g|+eps) then amplifies float32 noise in g by lr/eps.
    # Large lrs or heavy clipping (the softmax models) make such elements common.
    drift = None
    if audit:
        _, _, final32 = _train(cfg, params, ids, targets, t["lrs"], torch.float32)
        drift = max(float(((final[n] - final32[n].double()).abs()
                           / (1e-5 + 1e-4 * final[n].abs())).max()) for n in final)
    moved = max(float((final[n] - params[n].double()).abs().max()) for n in final)
    tensors = {"losses": torch.tensor(losses, dtype=F64).float(),
               "grad_norms": torch.tensor(norms, dtype=F64).float()}
    tensors.update({f"final.{n}": p.float() for n, p in final.items()})
    info = {"losses": losses, "grad_norms": norms, "f32_drift": drift, "max_move": moved}
    return tensors, info
