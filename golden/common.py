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


def _eval(fn, inputs, diff, d_outs, dtype):
    """(outputs, grads) of fn at the inputs in dtype; d_outs: {output: upstream gradient}
    or a callable drawing one from an output's shape."""
    leaves = {}
    for name, t in inputs.items():
        if t.dtype == torch.float32:
            leaves[name] = t.to(dtype).requires_grad_(name in diff)
        else:
            leaves[name] = t.long()
    outs = fn(**leaves)
    total = torch.zeros((), dtype=dtype)
    ds = {}
    for oname, out in outs.items():
        ds[oname] = d_outs(out.shape) if callable(d_outs) else d_outs[oname]
        total = total + (ds[oname].to(dtype) * out).sum()
    grads = dict(zip(diff, torch.autograd.grad(total, [leaves[n] for n in diff])))
    return outs, grads, ds


def _ratio(got, ref, a, r, scale_max):
    ref, got = ref.detach().double(), got.detach().double()
    if ref.numel() == 0:
        return 0.0
    bound = a * (ref.abs().max() if scale_max else 1.0) + r * ref.abs()
    return float(((got - ref).abs() / bound.clamp_min(1e-300)).max())


def vjp_fixture(g, fn, inputs, diff):
    """Evaluates fn(**float64 leaves) -> {output name: tensor}, draws a random float32
    upstream gradient d_<out> for each output, and records grad_<input> for each name in
    diff (the gradient of Σ ⟨d_out, out⟩). inputs: {name: float32/int32 tensor}.
    Also reruns everything in float32 and asserts it lands within half the reference
    tolerance, so no fixture is too ill-conditioned for a correct float32 implementation.
    Returns the tensors to store."""
    outs, grads, ds = _eval(fn, inputs, diff, lambda shape: randn32(g, shape), F64)
    outs32, grads32, _ = _eval(fn, inputs, diff, ds, torch.float32)
    worst = max([_ratio(outs32[o], outs[o], 1e-5, 1e-4, False) for o in outs] +
                [_ratio(grads32[n], grads[n], 1e-6, 1e-3, True) for n in diff])
    assert worst < 0.5, f"ill-conditioned: a float32 rerun uses {worst:.2f} x the tolerance"
    stored = dict(inputs)
    for oname, out in outs.items():
        stored[oname] = out.detach().float()
        stored[f"d_{oname}"] = ds[oname]
    for n, gr in grads.items():
        stored[f"grad_{n}"] = gr.float()
    return stored
