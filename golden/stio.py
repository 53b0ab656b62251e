# Minimal safetensors writer/reader for the golden fixtures (F32 and I32 only).
# Omits: every other dtype, memory mapping, and validation beyond what the fixtures need;
# the `safetensors` pip package is deliberately not used (no PyPI on the build machines).
#
# Layout written: 8-byte little-endian header length, a JSON header
# {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}}
# with tensor names sorted, padded with spaces to a multiple of 8, then the raw
# little-endian data of each tensor in that same sorted order.

import json
import struct

import numpy as np
import torch

_DTYPES = {torch.float32: ("F32", "<f4"), torch.int32: ("I32", "<i4")}
_NP_BY_NAME = {"F32": "<f4", "I32": "<i4"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: torch tensor of dtype float32 or int32}; metadata: {str: str}."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        tag, npdt = _DTYPES[t.dtype]
        raw = t.numpy().astype(npdt, copy=False).tobytes(order="C")
        header[name] = {"dtype": tag, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict, {name: dtype tag})."""
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    arrays, dtypes = {}, {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        npdt = _NP_BY_NAME[info["dtype"]]
        arr = np.frombuffer(data[base + begin:base + end], dtype=npdt)
        arrays[name] = arr.reshape(info["shape"])
        dtypes[name] = info["dtype"]
    return arrays, meta, dtypes
