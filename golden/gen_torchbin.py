#!/usr/bin/python3
# PyTorch `pytorch_model.bin` fixtures for the TypeScript reader (src/torch-bin/): real
# torch.save checkpoints of every tiny golden model's parameters (f32; f16/bf16, views into
# bigger storages, zero_to_fp32's flat buffer, nn.Module-style _metadata, protocol 4 for some),
# integer buffers, and hostile files crafted with pickle/zipfile, each with what it is in
# golden/torchbin/manifest.json. Run:   /usr/bin/python3 golden/gen_torchbin.py [--check]
# --check regenerates into a temp dir and compares with the committed files (exit 1 on drift).
# Omits: anything the tests compute themselves (expected values come from golden/models/).
# NOTE: nothing here unpickles a hostile file; `resolved_globals` only lists what a Python
# unpickler would ask for, through find_class, without calling anything.

import argparse
import collections
import filecmp
import io
import json
import os
import pickle
import pickletools
import re
import struct
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stio import read_safetensors  # noqa: E402

OUT = HERE / "torchbin"
PWNED = "/tmp/tokenformer-torchbin-PWNED-5f0c2e9a"  # a hostile payload would create this
DATE = (1980, 1, 1, 0, 0, 0)


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


# ------------------------------------------------------------------------- hostile files

class P:
    """Protocol-2 pickle opcodes, written the way torch's pickler lays out a state dict."""

    @staticmethod
    def s(x):
        b = x.encode("utf-8")
        return b"X" + struct.pack("<I", len(b)) + b

    @staticmethod
    def i(n):
        if 0 <= n < 256:
            return b"K" + bytes([n])
        if 0 <= n < 65536:
            return b"M" + struct.pack("<H", n)
        if -2 ** 31 <= n < 2 ** 31:
            return b"J" + struct.pack("<i", n)
        raw = pickle.encode_long(n)
        return b"\x8a" + bytes([len(raw)]) + raw

    @staticmethod
    def g(mod, name):
        return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"

    @staticmethod
    def tup(*items):
        return b"(" + b"".join(items) + b"t"

    @classmethod
    def ints(cls, xs):
        return cls.tup(*[cls.i(x) for x in xs])

    @classmethod
    def odict(cls):
        return cls.g("collections", "OrderedDict") + b")R"

    @classmethod
    def tensor(cls, storage="FloatStorage", key="0", numel=6, offset=0, size=(2, 3), stride=(3, 1)):
        pid = cls.tup(cls.s("storage"), cls.g("torch", storage), cls.s(key), cls.s("cpu"), cls.i(numel))
        args = cls.tup(pid + b"Q", cls.i(offset), cls.ints(size), cls.ints(stride), b"\x89", cls.odict())
        return cls.g("torch._utils", "_rebuild_tensor_v2") + args + b"R"

    @classmethod
    def state_dict(cls, items):
        return b"\x80\x02" + cls.odict() + b"(" + b"".join(cls.s(k) + v for k, v in items) + b"u."


F32x6 = struct.pack("<6f", 0.5, -1.0, 2.0, 3.25, -4.5, 6.0)


def torch_zip(entries, prefix="archive", compress=None):
    """A zip like torch writes (stored entries, fixed dates); entries: [(name, bytes)]."""
    buf = io.BytesIO()
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # duplicate_entry.bin wants one
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name if name.startswith("/") or ".." in name else f"{prefix}/{name}",
                                   date_time=DATE)
            info.compress_type = (compress or {}).get(name, zipfile.ZIP_STORED)
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def checkpoint(pkl, records=None, extra=(), prefix="archive"):
    recs = [("data/0", F32x6)] if records is None else records
    return torch_zip([("data.pkl", pkl), *recs, ("version", b"3\n"), *extra], prefix)


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


class EvilClass:  # pickled as GLOBAL '__main__ EvilClass' + NEWOBJ
    pass


def pickled_like_torch(obj):
    """CPython's own pickler with torch's persistent_id (so real tensors appear as storages)."""
    storages = {}

    class Pk(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, torch.storage.TypedStorage):
                key = storages.setdefault(o.data_ptr(), (str(len(storages)), o))[0]
                return ("storage", getattr(torch, o.pickle_storage_type()), key, "cpu", o.size())
            return None

    buf = io.BytesIO()
    Pk(buf, protocol=2).dump(obj)
    recs = [(f"data/{k}", _storage_bytes(s)) for k, s in storages.values()]
    return buf.getvalue(), recs


def _storage_bytes(s):
    return torch.tensor([], dtype=s.dtype).set_(s).contiguous().numpy().tobytes()


def legacy_file(sd):
    """The pre-1.6 format, its storage key (a memory address) replaced by a fixed one."""
    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=False)
    blob = re.sub(rb"X(.{4})([0-9]{6,})", lambda m: b"X" + m.group(1) + b"1" * len(m.group(2)),
                  buf.getvalue(), flags=re.S)
    assert all(torch.equal(a, sd[k]) for k, a in torch.load(io.BytesIO(blob)).items())
    return blob


def patch_sizes(blob, name, size):
    """Sets `name`'s sizes in its local and central headers (a lying zip, not a real one)."""
    b = bytearray(blob)
    nb = name.encode()
    for sig, at_sizes, at_len, head in ((b"PK\x03\x04", 18, 26, 30), (b"PK\x01\x02", 20, 28, 46)):
        pos = 0
        while (pos := b.find(sig, pos)) >= 0:
            n = struct.unpack_from("<H", b, pos + at_len)[0]
            if bytes(b[pos + head:pos + head + n]) == nb:
                struct.pack_into("<II", b, pos + at_sizes, size, size)
            pos += 4
    return bytes(b)


def hostile_cases(small_good_bytes):
    t = P.tensor()
    cmd = f"touch {PWNED}"
    evil_os = P.g("os", "system") + P.tup(P.s(cmd)) + b"R"
    evil_eval = P.g("builtins", "eval") + P.tup(P.s(f"__import__('os').system({cmd!r})")) + b"R"
    getattr_chain = (P.g("builtins", "getattr") + P.tup(P.g("builtins", "__import__") + P.tup(P.s("os")) + b"R",
                                                        P.s("system")) + b"R" + P.tup(P.s(cmd)) + b"R")
    posix_pkl, posix_recs = pickled_like_torch(collections.OrderedDict(
        [("weight", torch.tensor([1.0, 2.0])), ("payload", Evil())]))
    class_pkl, class_recs = pickled_like_torch({"weight": torch.tensor([1.0]), "x": EvilClass()})
    set_pkl = io.BytesIO()
    torch.save({"weight": torch.tensor([1.0]), "tags": {1, 2}}, set_pkl, pickle_protocol=4)
    legacy = legacy_file(collections.OrderedDict([("w", torch.ones(2, 3))]))
    big64 = io.BytesIO()
    torch.save(collections.OrderedDict([("ok", torch.tensor([1], dtype=torch.int64)),
                                        ("big", torch.tensor([3, 2 ** 40], dtype=torch.int64))]), big64)
    zeros = bytes(4 << 20)
    claims = patch_sizes(checkpoint(P.state_dict([("w", P.tensor(numel=0x3FFFFFFC, size=(0x3FFFFFFC,), stride=(1,)))])),
                         "archive/data/0", 0xFFFFFFF0)
    return [
        ("os_system.bin", "REDUCE of os.system (touch the marker file)",
         checkpoint(P.state_dict([("w", t), ("payload", evil_os)])), 'refuses to load global "os.system"'),
        ("posix_system.bin", "CPython's own pickle of an object whose __reduce__ is os.system",
         torch_zip([("data.pkl", posix_pkl), *posix_recs, ("version", b"3\n")]), 'refuses to load global "posix.system"'),
        ("builtins_eval.bin", "REDUCE of builtins.eval on a string that would call os.system",
         checkpoint(P.state_dict([("w", t), ("payload", evil_eval)])), 'refuses to load global "builtins.eval"'),
        ("nested_reduce.bin", "getattr(__import__('os'), 'system')(cmd): a REDUCE of a REDUCE's result",
         checkpoint(P.state_dict([("w", t), ("payload", getattr_chain)])), 'refuses to load global "builtins.getattr"'),
        ("reduce_non_callable.bin", "REDUCE whose callable is an OrderedDict built by an allowed REDUCE",
         checkpoint(P.state_dict([("w", t), ("x", P.odict() + b")R")])), "is not an allowed callable"),
        ("main_class.bin", "CPython's pickle of a __main__ class instance (GLOBAL + NEWOBJ)",
         torch_zip([("data.pkl", class_pkl), *class_recs, ("version", b"3\n")]), 'refuses to load global "__main__.EvilClass"'),
        ("set_opcode.bin", "torch.save(pickle_protocol=4) of a state dict holding a set (EMPTY_SET)",
         set_pkl.getvalue(), "opcode EMPTY_SET"),
        ("storage_past_record.bin", "a storage claiming 100 floats in a 24-byte record",
         checkpoint(P.state_dict([("w", P.tensor(numel=100, size=(10, 10), stride=(10, 1)))])), "holds 24 bytes"),
        ("offset_past_end.bin", "storage offset 6 in a 6-element storage",
         checkpoint(P.state_dict([("w", P.tensor(offset=6, size=(1,), stride=(1,)))])), "outside its storage"),
        ("strides_out_of_bounds.bin", "size (2, 3) with strides (3, 2) reads element 7 of 6",
         checkpoint(P.state_dict([("w", P.tensor(stride=(3, 2)))])), "outside its storage"),
        ("expanded_view.bin", "stride-0 view of 10^12 elements over a 6-element storage",
         checkpoint(P.state_dict([("w", P.tensor(size=(10 ** 6, 10 ** 6), stride=(0, 0)))])), "more elements than"),
        ("zip_bomb.bin", "data/0 deflate-compressed: 4 MiB of zeros in a few KB",
         torch_zip([("data.pkl", P.state_dict([("w", P.tensor(numel=1 << 20, size=(1 << 20,), stride=(1,)))])),
                    ("data/0", zeros), ("version", b"3\n")], compress={"data/0": zipfile.ZIP_DEFLATED}),
         "is compressed"),
        ("dotdot_entry.bin", "an extra zip entry named ../x",
         checkpoint(P.state_dict([("w", t)]), extra=[("../x", b"x")]), 'zip entry "../x"'),
        ("claims_4gb.bin", "a ~1 kB file whose zip directory claims a 4 GB record",
         claims, "past the end"),
        ("legacy_format.bin", "torch.save(..., _use_new_zipfile_serialization=False)",
         legacy, "legacy torch.save format"),
        ("truncated.bin", "the first half of a good checkpoint", small_good_bytes[:len(small_good_bytes) // 2],
         "truncated"),
        ("missing_data_pkl.bin", "a torch-like zip without data.pkl",
         torch_zip([("data/0", F32x6), ("version", b"3\n")]), "data.pkl"),
        ("duplicate_entry.bin", "two entries named archive/data.pkl",
         torch_zip([("data.pkl", P.state_dict([("w", t)])), ("data.pkl", P.state_dict([])), ("data/0", F32x6)]),
         "twice"),
        ("big_endian.bin", "byteorder record says big",
         checkpoint(P.state_dict([("w", t)]), extra=[("byteorder", b"big")]), "big-endian"),
        ("not_a_state_dict.bin", "a dict of dicts ({'module': state_dict}) instead of name -> tensor",
         checkpoint(b"\x80\x02}(" + P.s("module") + P.odict() + b"(" + P.s("w") + t + b"uu."), "not a tensor"),
        ("int64_out_of_range.bin", "torch.save of an int64 tensor holding 2^40", big64.getvalue(),
         "outside the int32 range"),
    ]


def resolved_globals(blob):
    """The globals a Python unpickler would look up in data.pkl (find_class, nothing called)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(blob))
        names = [n for n in z.namelist() if n.endswith("data.pkl")]
        pkl = z.read(names[0]) if names else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError):
        return []
    seen = []
    try:
        for op, arg, _ in pickletools.genops(pkl):
            if op.name == "GLOBAL":
                seen.append(arg.replace(" ", "."))
    except ValueError:
        pass
    return seen


def generate(out):
    manifest = json.loads((HERE / "manifest.json").read_text())
    models = manifest["models"]
    (out / "hostile").mkdir(parents=True, exist_ok=True)
    good = write_good(models, out)
    want = torch.tensor(struct.unpack("<6f", F32x6)).view(2, 3)
    assert torch.equal(torch.load(io.BytesIO(checkpoint(P.state_dict([("w", P.tensor())]))))["w"], want)
    small = (out / "int_buffers.bin").read_bytes()
    hostile = []
    for file, what, blob, error in hostile_cases(small):
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
