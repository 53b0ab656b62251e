# The case kinds of spec/conformance.md for the Python adapter: op cases (forward, and the VJP
# of Σ⟨d_out, out⟩ by autograd), model cases (traced forward, loss, every gradient), train cases
# (AdamW steps through torch.optim.AdamW with global-norm clipping) and grow cases (zero-init
# growth from the base weights and the given new value rows, then the grown model).
# Omits: file handling (adapter.py) and the math itself (tfref.py / golden/tfmath.py).

import math

import torch
import torch.nn.functional as F

import tfref


def _prep(t, ops):
    """A float32 input as a fresh tensor in the compute dtype, rounded through the storage dtype."""
    x = t.to(ops.dtype)
    return x.to(ops.store).to(ops.dtype) if ops.store is not None else x


FORWARD = {
    "matmul": lambda o, a, x: {"c": (x["a"].transpose(-1, -2) if a["transA"] else x["a"])
                                    @ (x["b"].transpose(-1, -2) if a["transB"] else x["b"])},
    "add": lambda o, a, x: {"c": x["a"] + x["b"]},
    "gelu": lambda o, a, x: {"y": o.gelu(x["x"])},
    "norm_act": lambda o, a, x: {"a": o.norm_act(x["s"], a["variant"], a["normN"])},
    "pattention": lambda o, a, x: {"out": o.pattention(x["x"], x["k"], x["v"], a["variant"], a["normN"])},
    "layernorm_nonparam": lambda o, a, x: {"y": o.layernorm(x["x"], None, None, a["eps"])},
    "layernorm": lambda o, a, x: {"y": o.layernorm(x["x"], x["weight"], x["bias"], a["eps"])},
    "rotary": lambda o, a, x: {"y": o.rotary(x["x"], a["rotaryDim"], a["base"])},
    "permute0213": lambda o, a, x: {"y": x["x"].permute(0, 2, 1, 3)},
    "causal_softmax": lambda o, a, x: {"p": o.causal_softmax(x["s"], a["scale"])},
    "attention": lambda o, a, x: {"out": o.attention(x["q"], x["k"], x["v"])},
    "embedding": lambda o, a, x: {"out": x["table"][x["ids"]]},
    "cross_entropy": lambda o, a, x: {"loss": F.cross_entropy(x["logits"], x["targets"])},
    "sum_squares": lambda o, a, x: {"out": sum((x[f"x{i}"] ** 2).sum() for i in range(a["count"]))},
}


def _adamw(a, x):
    """One torch.optim.AdamW step on param with injected state; the gradient is
    gradScale·grad·coef, coef = min(1, maxGradNorm / (√grad_norm_sq + 1e-6)) (1 when disabled)."""
    coef = 1.0
    if a["maxGradNorm"] > 0:
        coef = min(1.0, a["maxGradNorm"] / (math.sqrt(float(x["grad_norm_sq"])) + 1e-6))
    p = x["param"].clone().requires_grad_(True)
    p.grad = x["grad"] * a["gradScale"] * coef
    opt = torch.optim.AdamW([p], lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"], weight_decay=a["weightDecay"])
    opt.state[p] = {"step": torch.tensor(float(a["step"] - 1)), "exp_avg": x["m"].clone(), "exp_avg_sq": x["v"].clone()}
    opt.step()
    st = opt.state[p]
    return {"param_out": p.detach(), "m_out": st["exp_avg"], "v_out": st["exp_avg_sq"]}


def run_op_case(case, inputs, ops):
    op, attrs = case["op"], case["attrs"]
    expected = [t["name"] for t in case["tensors"] if "rule" in t]
    diff = [n[len("grad_"):] for n in expected if n.startswith("grad_")]
    leaves = {}
    for name, t in inputs.items():
        if name.startswith("d_"):
            continue
        leaves[name] = _prep(t, ops).requires_grad_(name in diff) if t.is_floating_point() else t.long()
    if op == "adamw":
        return _adamw(attrs, leaves)
    outs = FORWARD[op](ops, attrs, leaves)
    result = {name: ops.r(v) for name, v in outs.items()}
    if diff:
        total = sum((inputs[f"d_{name}"].to(ops.dtype) * v).sum() for name, v in outs.items())
        grads = torch.autograd.grad(total, [leaves[n] for n in diff])
        result.update({f"grad_{n}": g for n, g in zip(diff, grads)})
    return result


def _grow(case, params, inputs):
    """Zero-init growth: keys get (to − from) zero rows, values the given new rows."""
    out = dict(params)
    for g in case["growth"]["layers"]:
        k, v = params[f"{g['prefix']}.key_param_tokens"], params[f"{g['prefix']}.value_param_tokens"]
        rows = inputs[f"new_values.{g['prefix']}"]
        assert k.shape[0] == g["from"] and rows.shape[0] == g["to"] - g["from"], g
        out[f"{g['prefix']}.key_param_tokens"] = torch.cat((k, torch.zeros(g["to"] - g["from"], k.shape[1])))
        out[f"{g['prefix']}.value_param_tokens"] = torch.cat((v, rows))
    return out


def _check_layers(case):
    """The case's `layers` list (n, normN per Pattention layer) must agree with its config."""
    cfg = case["config"]
    for l in case.get("layers", []):
        pinned = cfg.get("tokenformer_norm_slots", {}).get(l["prefix"], l["n"])
        assert pinned == l["normN"], f"{case['name']}: {l['prefix']} normN {l['normN']} vs config {pinned}"


def _loss(cfg, leaves, ids, targets, ops, trace=None):
    logits = tfref.model_forward(cfg, leaves, ids, ops, trace)
    return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _train(case, cfg, params, ids, targets, ops):
    o = case["optimizer"]
    leaves = {n: _prep(t, ops).requires_grad_(True) for n, t in params.items()}
    no_decay = set(o["noDecay"])
    groups = [{"params": [p for n, p in leaves.items() if n not in no_decay], "weight_decay": o["weightDecay"]},
              {"params": [p for n, p in leaves.items() if n in no_decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=o["lrs"][0], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    out = {}
    for step, lr in enumerate(o["lrs"], 1):
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.zero_grad(set_to_none=True)
        _, loss = _loss(cfg, leaves, ids, targets, ops)
        loss.backward()
        norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in leaves.values()))
        coef = min(1.0, o["maxGradNorm"] / (norm + o["clipEps"])) if o["maxGradNorm"] > 0 else 1.0
        for p in leaves.values():
            p.grad.mul_(coef)
        opt.step()
        out[f"step{step}.loss"] = loss.detach()
        out[f"step{step}.grad_norm"] = torch.tensor(norm)
        out.update({f"step{step}.param.{n}": p.detach().clone() for n, p in leaves.items()})
    return out


def run_model_case(case, inputs, ops):
    cfg = case["config"]
    _check_layers(case)
    params = {t["name"]: inputs[t["name"]] for t in case["tensors"] if t["role"] == "parameter"}
    ids, targets = inputs["input_ids"].long(), inputs["targets"].long()
    out = {}
    if case["kind"] == "grow":
        params = _grow(case, params, inputs)
        out.update({f"grown.{n}": p for n, p in params.items()})
    if case["kind"] == "train":
        return _train(case, cfg, params, ids, targets, ops)
    leaves = {n: _prep(t, ops).requires_grad_(True) for n, t in params.items()}
    trace = {}
    logits, loss = _loss(cfg, leaves, ids, targets, ops, lambda n, t: trace.__setitem__(n, t.detach()))
    grads = torch.autograd.grad(loss, list(leaves.values()))
    out.update(trace)
    out.update({"logits": logits.detach(), "loss": loss.detach()})
    out.update({f"grad.{n}": g for n, g in zip(leaves, grads)})
    return out
