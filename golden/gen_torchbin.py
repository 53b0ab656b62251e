#!/usr/bin/python3
# PyTorch `pytorch_model.bin` fixtures for the TypeScript reader (src/torch-bin/): real
# torch.save checkpoints of every tiny golden model's parameters (f32; f16/bf16, views into
# bigger storages, zero_to_fp32's flat buffer, nn.Module-style _metadata, protocol 4 for some),
# integer buffers, and hostile files crafted with pickle/zipfile, each with what it is in
# golden/torchbin/manifest.json. Run:   /usr/bin/python3 golden/gen_torchbin.py [--check]
# --check regenerates into a temp dir and compares with the committed files (exit 1 on drift).
# Omits: anything the tests compute themselves (expected values come from golden/models/).
# NOTE: nothing here unpickles a hostile file; `resolved_globals` only lists the GLOBAL opcodes
# a Python unpickler would resolve (pickletools.genops reads them without calling anything).

import argparse
import collections
import filecmp
import io
import json
import struct
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stio import read_safetensors  # noqa: E402
from torchbin_craft import (PWNED, F32x6, P, checkpoint, hostile_cases, pickled_like_torch,  # noqa: E402
                            resolved_globals, torch_zip)

OUT = HERE / "torchbin"


def model_params(entry):
    arrays, _, _ = read_safetensors(HERE / entry["file"])
    return collections.OrderedDict(
        (k, torch.from_numpy(arrays[k].copy())) for k in sorted(arrays) if k.startswith("sequential."))


# ------------------------------------------------------------------------ good checkpoints

def views_of(params):
    """Each tensor equal to its parameter but stored as a non-contiguous view: transposed
    (column-major strides), a window of a bigger 2-D storage, every other element of a 1-D
    storage, or a slice of one shared flat buffer (storage offsets); every 4th stays plain."""
    total = sum(t.numel() + 3 for t in params.values())
    flat = torch.full((total,), 7.0)
    off, out = 0, collections.OrderedDict()
    for i, (name, t) in enumerate(params.items()):
        mode = i % 4
        if mode == 0 and t.dim() == 2:
            v = t.t().contiguous().t()
        elif mode == 1 and t.dim() == 2:
            r, c = t.shape
            big = torch.full((r + 2, c + 3), 99.0)
            big[1:1 + r, 2:2 + c] = t
            v = big[1:1 + r, 2:2 + c]
        elif mode == 1:
            big = torch.full((2 * t.numel() + 1,), 99.0)
            big[1::2] = t
            v = big[1::2]
        elif mode == 2:
            flat[off:off + t.numel()] = t.flatten()
            v = flat[off:off + t.numel()].view(t.shape)
            off += t.numel() + 3
        else:
            v = t.clone()
        assert torch.equal(v, t)
        out[name] = v
    assert any(not v.is_contiguous() for v in out.values())
    return out


def zero_to_fp32_of(params):
    """What DeepSpeed's zero_to_fp32.py writes (releases before it cloned): one flat fp32
    buffer, each parameter `narrow(0, offset, numel).view(shape)` of it, in an OrderedDict."""
    flat = torch.cat([t.flatten() for t in params.values()])
    out, off = collections.OrderedDict(), 0
    for name, t in params.items():
        out[name] = flat.narrow(0, off, t.numel()).view(t.shape)
        off += t.numel()
    return out


def module_style_of(params):
    """nn.Module.state_dict(keep_vars=True) style: nn.Parameter values (pickled through
    torch._utils._rebuild_parameter) and the `_metadata` attribute (a BUILD opcode)."""
    out = collections.OrderedDict((k, torch.nn.Parameter(t.clone())) for k, t in params.items())
    out._metadata = collections.OrderedDict([("", {"version": 1})])
    return out


def save_path(obj, path, **kw):
    torch.save(obj, str(path), **kw)  # the archive's top folder is the file's stem


def save_buffer(obj, path, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)  # written to a buffer, torch names the top folder "archive"
    path.write_bytes(buf.getvalue())


def int_buffers():
    return collections.OrderedDict([
        ("position_ids", torch.arange(9, dtype=torch.int64).view(1, 9)),
        ("neg_i64", torch.tensor([-(2 ** 31), 2 ** 31 - 1, -1], dtype=torch.int64)),
        ("count", torch.tensor(5, dtype=torch.int32)),
        ("mask", torch.tensor([[True, False], [False, True]])),
        ("u8", torch.tensor([0, 7, 255], dtype=torch.uint8)),
        ("i8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
        ("i16", torch.tensor([-32768, 12, 32767], dtype=torch.int16)),
        ("empty", torch.zeros(0, 4)),
        ("scalar_f32", torch.tensor(0.25)),
    ])


def int_expected(sd):
    out = {}
    for k, t in sd.items():
        out[k] = {"shape": list(t.shape), "values": [int(x) if not t.is_floating_point() else float(x)
                                                       for x in t.flatten().tolist()]}
    return out


def write_good(models, out):
    good = []

    def add(file, model, dtype, what, **extra):
        good.append({"file": file, "model": model, "dtype": dtype, "what": what, **extra})

    for m in models:
        p = model_params(m)
        save_path(p, out / f"{m['name']}.f32.bin")
        add(f"{m['name']}.f32.bin", m["name"], "F32", "torch.save(OrderedDict of parameters, path)")
    small = min(models, key=lambda m: sum(t.numel() for t in model_params(m).values()))
    sp = model_params(small)
    save_path(collections.OrderedDict((k, t.half()) for k, t in sp.items()), out / f"{small['name']}.f16.bin")
    add(f"{small['name']}.f16.bin", small["name"], "F16", "parameters as float16 (HalfStorage)")
    save_buffer(collections.OrderedDict((k, t.bfloat16()) for k, t in sp.items()),
                out / f"{small['name']}.bf16.p4.bin", pickle_protocol=4)
    add(f"{small['name']}.bf16.p4.bin", small["name"], "BF16",
        "parameters as bfloat16, pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL), top folder \"archive\"")
    name = small["name"]
    save_path(views_of(sp), out / f"{name}.views.bin")
    add(f"{name}.views.bin", name, "F32", "non-contiguous views: transposed, windows of bigger storages, "
        "strided 1-D, slices of one shared buffer", noncontiguous=True)
    save_buffer(zero_to_fp32_of(sp), out / f"{name}.zero_to_fp32.bin")
    add(f"{name}.zero_to_fp32.bin", name, "F32", "zero_to_fp32.py layout: views into one flat fp32 storage",
        noncontiguous=False, shared_storage=True)
    save_path(module_style_of(sp), out / f"{name}.module.bin")
    add(f"{name}.module.bin", name, "F32", "nn.Parameter values and state_dict()'s _metadata (BUILD)")
    pkl, recs = pickled_like_torch(sp)
    blob = torch_zip([("data.pkl", pkl), *recs, ("version", b"3\n"), ("byteorder", b"little"),
                      (".data/serialization_id", b"0" * 40), (".format_version", b"1")])
    (out / f"{small['name']}.torch2-layout.bin").write_bytes(blob)
    assert all(torch.equal(a, sp[k]) for k, a in torch.load(io.BytesIO(blob)).items())
    add(f"{small['name']}.torch2-layout.bin", small["name"], "F32", "CPython's pickler with torch's persistent_id, "
        "zipped by Python's zipfile with the records newer torch adds (byteorder \"little\", .data/, .format_version)")
    ib = int_buffers()
    save_path(ib, out / "int_buffers.bin")
    add("int_buffers.bin", None, "mixed", "integer, bool, empty and 0-d tensors", expected=int_expected(ib))
    return good


class EvilClass:  # pickled as GLOBAL '__main__ EvilClass' + NEWOBJ
    pass


def generate(out):
    manifest = json.loads((HERE / "manifest.json").read_text())
    models = manifest["models"]
    (out / "hostile").mkdir(parents=True, exist_ok=True)
    good = write_good(models, out)
    want = torch.tensor(struct.unpack("<6f", F32x6)).view(2, 3)
    assert torch.equal(torch.load(io.BytesIO(checkpoint(P.state_dict([("w", P.tensor())]))))["w"], want)
    small = (out / "int_buffers.bin").read_bytes()
    hostile = []
    for file, what, blob, error in hostile_cases(small, EvilClass):
        (out / "hostile" / file).write_bytes(blob)
        hostile.append({"file": f"hostile/{file}", "what": what, "bytes": len(blob), "error": error,
                        "python_would_resolve": [g for g in resolved_globals(blob) if "torch" not in g
                                                 and g != "collections.OrderedDict"]})
    doc = {
        "format": 1,
        "regenerate": "/usr/bin/python3 golden/gen_torchbin.py",
        "check": "/usr/bin/python3 golden/gen_torchbin.py --check",
        "pwned_marker": PWNED,
        "good": good,
        "hostile": hostile,
    }
    (out / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n")


def committed_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def check():
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "torchbin"
        generate(new)
        old_files, new_files = committed_files(OUT), committed_files(new)
        problems = [f"{f}: not regenerated" for f in sorted(set(old_files) - set(new_files))]
        problems += [f"{f}: new, not committed" for f in sorted(set(new_files) - set(old_files))]
        for f in sorted(set(old_files) & set(new_files)):
            if not filecmp.cmp(OUT / f, new / f, shallow=False):
                problems.append(f"{f}: bytes differ from a fresh run (torch {torch.__version__})")
    for p in problems:
        print(p)
    print("torchbin drift: " + ("OK" if not problems else f"{len(problems)} difference(s)"))
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="compare a fresh run with the committed files")
    args = ap.parse_args()
    if args.check:
        sys.exit(check())
    generate(OUT)
    print(f"wrote {len(committed_files(OUT))} files under {OUT}")


if __name__ == "__main__":
    main()
