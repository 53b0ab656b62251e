# Shared helpers for the golden generator: seeded float32 inputs and VJP recording.
# Omits: any op semantics (tfmath.py) and file layout (gen.py).

import zlib

import torch

BASE_SEED = 1234
F64 = torch.float64


def rng(name):
    """A torch.Generator seeded from the base seed and the fixture name, so one fixture's
    data does not depend on which other fixtures exist or their order."""
    g = torch.Generator()
    g.manual_seed((BASE_SEED << 32) ^ zlib.crc32(name.encode("utf-8")))
    return g


def randn32(g, shape, scale=1.0, shift=0.0):
    """Normal samples drawn in float64 (the scalar, SIMD-independent CPU path), scaled,
    then rounded to float32: the stored input is exactly what the reference computes from."""
    return (torch.randn(tuple(shape), generator=g, dtype=F64) * scale + shift).float()


def rand32(g, shape, lo=0.0, hi=1.0):
    return (torch.rand(tuple(shape), generator=g, dtype=F64) * (hi - lo) + lo).float()


def randint32(g, hi, shape):
    return torch.randint(0, hi, tuple(shape), generator=g, dtype=torch.int64).to(torch.int32)


def vjp_fixture(g, fn, inputs, diff, extra=None):
    """Evaluates fn(**float64 leaves) -> {output name: tensor}, draws a random float32
    upstream gradient d_<out> for each output, and records grad_<input> for each name in
    diff (the gradient of Σ ⟨d_out, out⟩). inputs: {name: float32/int32 tensor}.
    Returns the tensors to store."""
    leaves = {}
    for name, t in inputs.items():
        if t.dtype == torch.float32:
            leaves[name] = t.double().requires_grad_(name in diff)
        else:
            leaves[name] = t.long()
    outs = fn(**leaves, **(extra or {}))
    stored = dict(inputs)
    total = torch.zeros((), dtype=F64)
    for oname, out in outs.items():
        d = randn32(g, out.shape)
        stored[oname] = out.detach().float()
        stored[f"d_{oname}"] = d
        total = total + (d.double() * out).sum()
    grads = torch.autograd.grad(total, [leaves[n] for n in diff])
    for n, gr in zip(diff, grads):
        stored[f"grad_{n}"] = gr.float()
    return stored
