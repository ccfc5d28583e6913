"""Byte-reproducible safetensors writing for the tools in tools/ (fixtures, weight conversion).

The `safetensors` package keeps the metadata in a hash map, so its key order (and hence the file's
bytes) changes from run to run. save_sorted() writes with the package, then rewrites only the JSON
header with the metadata keys sorted; the header keeps its length (space padding, as the package
pads), so every data offset stays valid. Same tensors and metadata -> same bytes.
"""

import json
import os
import struct

from safetensors.torch import save_file


def save_sorted(tensors, path, metadata=None):
    tmp = f"{path}.tmp"
    save_file(tensors, tmp, metadata=metadata)
    with open(tmp, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        ordered = {}
        if "__metadata__" in header:
            ordered["__metadata__"] = dict(sorted(header.pop("__metadata__").items()))
        ordered.update(sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]))
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
        if len(text) > n:
            raise RuntimeError(f"re-serialised header of {path} grew from {n} to {len(text)} bytes")
        f.seek(8)
        f.write(text + b" " * (n - len(text)))
    os.replace(tmp, path)
