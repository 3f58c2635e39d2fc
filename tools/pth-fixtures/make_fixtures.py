#!/usr/bin/env python3
"""Writes the PyTorch-checkpoint test fixtures of tests/MicroExpr.Tests/Models/PthFixtures/ with Python's standard
pickle and zipfile only, in the layout torch.save has used since PyTorch 1.6:

    <name>/data.pkl      the pickled object (protocol 2), tensors as torch._utils._rebuild_tensor_v2(...),
                         parameters as torch._utils._rebuild_parameter(...), storages as persistent ids
                         ('storage', torch.FloatStorage, key, location, numel)
    <name>/data/<key>    each storage's raw little-endian bytes
    <name>/version       b'3\\n'
    <name>/byteorder     b'little'

No torch is needed: stand-in objects named like torch's are pickled, so the bytes are what torch.save writes for a
state dict (GLOBAL 'torch._utils _rebuild_tensor_v2', 'collections OrderedDict', 'torch FloatStorage', ...).
The hostile files ask for what a restricted unpickler must refuse. Values are deterministic (no randomness), so the
tests can recompute them. Run from anywhere:  python3 tools/pth-fixtures/make_fixtures.py
"""
import collections
import os
import pickle
import struct
import sys
import types
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "MicroExpr.Tests", "Models", "PthFixtures")

# --- stand-ins for the torch names that a state dict's pickle refers to ------------------------------------------
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils
torch._utils = torch_utils


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks):  # never called here
    raise AssertionError


def _rebuild_parameter(data, requires_grad, backward_hooks):  # never called here
    raise AssertionError


for f in (_rebuild_tensor_v2, _rebuild_parameter):
    f.__module__ = "torch._utils"
    setattr(torch_utils, f.__name__, f)


def _storage_type(name):
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)
    return cls


FloatStorage = _storage_type("FloatStorage")
HalfStorage = _storage_type("HalfStorage")
LongStorage = _storage_type("LongStorage")
DoubleStorage = _storage_type("DoubleStorage")


class Storage:
    """A storage: its type, key and raw bytes; pickled as a persistent id, its bytes go to <name>/data/<key>."""

    def __init__(self, stype, key, fmt, values, numel=None):
        self.stype, self.key, self.raw = stype, key, struct.pack("<" + fmt * len(values), *values)
        self.numel = len(values) if numel is None else numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args)


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        return (_rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


def contiguous_stride(size):
    stride, s = [], 1
    for d in reversed(size):
        stride.insert(0, s)
        s *= d
    return stride


def f32(values, size, key, param=False):
    t = Tensor(Storage(FloatStorage, key, "f", values), 0, size, contiguous_stride(size))
    return Parameter(t) if param else t


def pattern(n, scale, shift):
    """Deterministic values the C# test recomputes: v[i] = scale * ((i * 7 + shift) % 23 - 11)."""
    return [scale * (((i * 7 + shift) % 23) - 11) for i in range(n)]


def state_dict(entries):
    sd = collections.OrderedDict(entries)
    sd._metadata = collections.OrderedDict([("", {"version": 1})])  # what nn.Module.state_dict() attaches
    return sd


class Pickler(pickle.Pickler):
    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.storages = []

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            if all(s is not obj for s in self.storages):
                self.storages.append(obj)
            return ("storage", obj.stype, obj.key, "cpu", obj.numel)
        return None


def write(name, obj=None, raw_pickle=None, extra_entries=(), drop_storages=False, byteorder=b"little"):
    import io

    buf = io.BytesIO()
    storages = []
    if raw_pickle is None:
        p = Pickler(buf)
        p.dump(obj)
        storages = p.storages
        data = buf.getvalue()
    else:
        data = raw_pickle
    path = os.path.join(OUT, name + ".pth")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(name + "/data.pkl", data)
        z.writestr(name + "/byteorder", byteorder)
        if not drop_storages:
            for s in storages:
                z.writestr(f"{name}/data/{s.key}", s.raw)
        for entry, content in extra_entries:
            z.writestr(f"{name}/{entry}", content)
        z.writestr(name + "/version", b"3\n")


def main():
    os.makedirs(OUT, exist_ok=True)

    # 1. A plain state dict: two float32 tensors, one int64 counter, a float16 tensor, a transposed (strided) view
    #    sharing the storage of another tensor, and a tensor at an offset inside a shared storage.
    shared = Storage(FloatStorage, "3", "f", pattern(12, 0.25, 5))
    write("plain", state_dict([
        ("linear.weight", f32(pattern(6, 0.5, 0), [2, 3], "0", param=True)),
        ("linear.bias", f32(pattern(2, 0.125, 1), [2], "1", param=True)),
        ("bn.num_batches_tracked", Tensor(Storage(LongStorage, "2", "q", [7]), 0, [], [])),
        ("half", Tensor(Storage(HalfStorage, "4", "e", [0.5, -1.5, 2.0, 65504.0]), 0, [4], [1])),
        ("grid", Tensor(shared, 0, [3, 4], [4, 1])),
        ("grid_t", Tensor(shared, 0, [4, 3], [1, 4])),       # the transpose of grid: a non-contiguous view
        ("grid_tail", Tensor(shared, 8, [4], [1])),          # the last 4 elements of the same storage
    ]))

    # 2. A training checkpoint: {'epoch': 3, 'arch': 'vit', 'state_dict': {...}, 'best_acc1': 0.5}.
    write("nested", {"epoch": 3, "arch": "vit", "state_dict": state_dict([
        ("module.fc.weight", f32(pattern(4, 1.0, 2), [2, 2], "0", param=True)),
        ("module.fc.bias", f32([0.0, 1.0], [2], "1", param=True)),
    ]), "best_acc1": 0.5})

    # 3. A tiny ViT in pytorch-pretrained-vit's naming (B_16_imagenet1k.pth's layout): width C = 4, depth 1,
    #    patch P = 2 on a 4x4 image (G = 2, N = 5 tokens), MLP 8, 3 classes.
    c, p, mlp, classes, tokens = 4, 2, 8, 3, 5
    entries, key = [], [0]

    def add(name, size):
        n = 1
        for d in size:
            n *= d
        entries.append((name, f32(pattern(n, 0.01 * (len(entries) + 1), len(entries)), size, str(key[0]), param=True)))
        key[0] += 1

    add("class_token", [1, 1, c])
    add("positional_embedding.pos_embedding", [1, tokens, c])
    add("patch_embedding.weight", [c, 3, p, p])
    add("patch_embedding.bias", [c])
    for part in ("proj_q", "proj_k", "proj_v"):
        add(f"transformer.blocks.0.attn.{part}.weight", [c, c])
        add(f"transformer.blocks.0.attn.{part}.bias", [c])
    add("transformer.blocks.0.proj.weight", [c, c])
    add("transformer.blocks.0.proj.bias", [c])
    add("transformer.blocks.0.norm1.weight", [c])
    add("transformer.blocks.0.norm1.bias", [c])
    add("transformer.blocks.0.pwff.fc1.weight", [mlp, c])
    add("transformer.blocks.0.pwff.fc1.bias", [mlp])
    add("transformer.blocks.0.pwff.fc2.weight", [c, mlp])
    add("transformer.blocks.0.pwff.fc2.bias", [c])
    add("transformer.blocks.0.norm2.weight", [c])
    add("transformer.blocks.0.norm2.bias", [c])
    add("norm.weight", [c])
    add("norm.bias", [c])
    add("fc.weight", [classes, c])
    add("fc.bias", [classes])
    write("pretrained_vit", state_dict(entries))

    # --- hostile or broken files -------------------------------------------------------------------------------
    # 4. GLOBAL os.system, called through REDUCE: what a malicious "checkpoint" does.
    write("os_system", raw_pickle=b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")

    # 5. REDUCE of a callable that is allowed as a name but never called in a state dict (a storage type).
    write("reduce_storage_type", raw_pickle=b"\x80\x02ctorch\nFloatStorage\nq\x00K\x10\x85q\x01Rq\x02.")

    # 6. A storage that claims 10^15 float32 elements (4 PB) while its entry holds 8 bytes.
    big = Storage(FloatStorage, "0", "f", [1.0, 2.0], numel=10**15)
    write("huge_storage", state_dict([("w", Tensor(big, 0, [2], [1]))]))

    # 7. A view reaching past the end of its storage (size 3 x stride 2 over 4 elements).
    write("view_out_of_bounds", state_dict([("w", Tensor(Storage(FloatStorage, "0", "f", [1, 2, 3, 4]), 0, [3], [2]))]))

    # 8. A storage whose entry is missing from the archive.
    write("missing_storage", state_dict([("w", f32([1.0, 2.0], [2], "0"))]), drop_storages=True)

    # 9. The pickle cut off in the middle.
    whole = pickle.dumps(collections.OrderedDict([("a", 1), ("b", "text")]), protocol=2)
    write("truncated", raw_pickle=whole[: len(whole) // 2])

    # 10. A pickle of the legacy (pre-1.6, non-zip) format: the magic number 0x1950a86a20f9469cfc6c first.
    with open(os.path.join(OUT, "legacy.pth"), "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)

    # 11. A big-endian archive.
    write("big_endian", state_dict([("w", f32([1.0], [1], "0"))]), byteorder=b"big")

    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
