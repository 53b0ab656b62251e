#!/usr/bin/env python3
# PyTorch eager fp32 throughput of the bench config (bench/model.ts BENCH_CONFIG), for the
# side-by-side ratios of `npm run bench`. Prints one JSON object. Usage:
#   /usr/bin/python3 bench/torch_bench.py '<config json>' BATCH SEQ REPS [cpu|cuda]
# Omits: torch.compile and mixed precision (the comparison is eager fp32, as the issue asks).

import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def theta(s, variant, n):
    if variant == "l2_norm_gelu":
        return F.gelu(s / s.norm(dim=-1, keepdim=True) * math.sqrt(n))
    if variant == "gelu_l2_norm":
        g = F.gelu(s)
        return g / g.norm(dim=-1, keepdim=True) * math.sqrt(n)
    return n * torch.softmax(s, dim=-1)


def make_params(c, dev):
    g = torch.Generator().manual_seed(1)
    L, C, V = c["numLayers"], c["hiddenSize"], c["vocabSize"]
    vstd = 2 / (L * math.sqrt(C))
    p = {"emb": torch.randn(V, C, generator=g) * 0.02}
    for i in range(L):
        for name, n in (("q", c["qkvSlots"]), ("k", c["qkvSlots"]), ("v", c["qkvSlots"]),
                        ("proj", c["projSlots"]), ("ffn", c["ffnSlots"])):
            p[f"{i}.{name}.k"] = torch.randn(n, C, generator=g) * 0.02
            p[f"{i}.{name}.v"] = torch.randn(n, C, generator=g) * vstd
    p["lnw"] = torch.ones(C)
    p["lnb"] = torch.zeros(C)
    return {k: v.to(dev).requires_grad_(True) for k, v in p.items()}


def forward(c, p, ids, cos, sin, mask):
    L, C, H = c["numLayers"], c["hiddenSize"], c["numHeads"]
    B, T = ids.shape
    D = C // H
    rd = cos.shape[-1]

    def patt(key, x):
        return theta(x @ p[key + ".k"].t(), c["variant"], p[key + ".k"].shape[0]) @ p[key + ".v"]

    def rope(x):
        xr, xp = x[..., :rd], x[..., rd:]
        h = rd // 2
        return torch.cat((xr * cos + torch.cat((-xr[..., h:], xr[..., :h]), -1) * sin, xp), -1)

    x = p["emb"][ids]
    for i in range(L):
        h = F.layer_norm(x, (C,), eps=c["eps"])
        q, k, v = (patt(f"{i}.{n}", h).view(B, T, H, D) for n in "qkv")
        q, k = rope(q), rope(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(mask, float("-inf"))
        a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + patt(f"{i}.proj", a)
        x = x + patt(f"{i}.ffn", F.layer_norm(x, (C,), eps=c["eps"]))
    y = F.layer_norm(x, (C,), p["lnw"], p["lnb"], c["eps"])
    return y @ p["emb"].t()


def median_time(f, reps, sync):
    f()
    sync()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        sync()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]


def main():
    c = json.loads(sys.argv[1])
    B, T, reps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    dev = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    p = make_params(c, dev)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, c["vocabSize"], (B, T), generator=g).to(dev)
    tgt = torch.randint(0, c["vocabSize"], (B, T), generator=g).to(dev)
    rd = int(c["hiddenSize"] // c["numHeads"] * c["rotaryPct"])
    inv = 1.0 / c["rotaryBase"] ** (torch.arange(0, rd, 2, dtype=torch.float32) / rd)
    fr = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    emb = torch.cat((fr, fr), -1)[None, :, None, :].to(dev)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.ones(T, T, dtype=torch.bool, device=dev).triu(1)
    decay = [v for k, v in p.items() if k not in ("lnw", "lnb")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": [p["lnw"], p["lnb"]], "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)

    def fwd():
        with torch.no_grad():
            forward(c, p, ids, cos, sin, mask)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = forward(c, p, ids, cos, sin, mask)
        loss = F.cross_entropy(logits.reshape(-1, c["vocabSize"]), tgt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        loss.item()

    tf = median_time(fwd, reps, sync)
    ts = median_time(step, reps, sync)
    print(json.dumps({"device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "forward_s": tf, "step_s": ts}))


if __name__ == "__main__":
    main()
