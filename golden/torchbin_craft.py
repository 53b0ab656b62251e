# Crafting helpers for golden/gen_torchbin.py: protocol-2 pickle opcodes laid out as torch
# writes them, torch-like zips (stored entries, fixed dates), CPython's pickler with torch's
# persistent_id, and the hostile checkpoints with the error each must give.
# Omits: unpickling anything (nothing here loads a hostile file) and the good checkpoints.

import collections
import io
import os
import pickle
import pickletools
import re
import struct
import warnings
import zipfile

import torch

PWNED = "/tmp/tokenformer-torchbin-PWNED-5f0c2e9a"  # a hostile payload would create this
DATE = (1980, 1, 1, 0, 0, 0)

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
    fixed = b"1234567890"  # the address's length varies too, so its length prefix is rewritten
    blob = re.sub(rb"X.{4}[0-9]{6,}(?=q)", lambda m: b"X" + struct.pack("<I", len(fixed)) + fixed,
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


def hostile_cases(small_good_bytes, evil_class):
    t = P.tensor()
    cmd = f"touch {PWNED}"
    evil_os = P.g("os", "system") + P.tup(P.s(cmd)) + b"R"
    evil_eval = P.g("builtins", "eval") + P.tup(P.s(f"__import__('os').system({cmd!r})")) + b"R"
    getattr_chain = (P.g("builtins", "getattr") + P.tup(P.g("builtins", "__import__") + P.tup(P.s("os")) + b"R",
                                                        P.s("system")) + b"R" + P.tup(P.s(cmd)) + b"R")
    posix_pkl, posix_recs = pickled_like_torch(collections.OrderedDict(
        [("weight", torch.tensor([1.0, 2.0])), ("payload", Evil())]))
    class_pkl, class_recs = pickled_like_torch({"weight": torch.tensor([1.0]), "x": evil_class()})
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
