#!/usr/bin/python3
"""Writes the fixtures under internal/tensorfile/testdata that the Go package
internal/tensorfile is tested against. Needs Debian's python3-torch (1.13) and,
for --resnet, python3-torchvision (0.14). Nothing is downloaded.

    /usr/bin/python3 tools/make_tensorfile_fixtures.py
    /usr/bin/python3 tools/make_tensorfile_fixtures.py --resnet /tmp/tensorfile-resnet18

The first writes the small committed fixtures:

  state_dict.pt           torch.save zip format, saved to a file (so its zip
                          directory is "state_dict/")
  state_dict_archive.pt   the same, saved through a BytesIO (directory
                          "archive/")
  state_dict_legacy.pt    the same, _use_new_zipfile_serialization=False
  expected.safetensors    every tensor of the state dict, made contiguous, in
                          its own dtype, written by hand in the byte layout Go's
                          WriteSafetensors produces
  malicious.pt            zip-format state dict with an object whose
                          __reduce__ calls os.system (pickled as posix.system)
  malicious_legacy.pt     legacy-format state dict calling builtins.eval
  f16_cases.json          float32 bit patterns with the half bits torch's
                          .half() and numpy's astype(float16) give, and the
                          SHA-256 of torch's .float() of all 65536 halves

The second writes torchvision's resnet18 (random init, fixed seed) state dict
as resnet18.pth (zip), resnet18-legacy.pth and resnet18.safetensors (~45 MB
each) into the given directory; the Go test TestResNet18 reads them when
TENSORFILE_RESNET_DIR names that directory:

    TENSORFILE_RESNET_DIR=/tmp/tensorfile-resnet18 go test ./internal/tensorfile/ -run ResNet18 -v
"""
import argparse
import collections
import hashlib
import io
import json
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal", "tensorfile", "testdata")

DTYPES = {
    torch.float64: ("F64", 8), torch.float32: ("F32", 4), torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2), torch.int64: ("I64", 8), torch.int32: ("I32", 4),
    torch.int16: ("I16", 2), torch.int8: ("I8", 1), torch.uint8: ("U8", 1), torch.bool: ("BOOL", 1),
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: go through int16 bits
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().tobytes()  # x86: already little-endian


def write_safetensors(path, tensors, metadata):
    """Writes safetensors exactly as Go's WriteSafetensors lays it out:
    header {"__metadata__", then tensors by name}, compact JSON padded with
    spaces to a multiple of 8; data ordered by element size (largest first),
    then name."""
    order = sorted(tensors, key=lambda n: (-DTYPES[tensors[n].dtype][1], n))
    offsets, off, blobs = {}, 0, []
    for name in order:
        b = tensor_bytes(tensors[name])
        offsets[name] = (off, off + len(b))
        off += len(b)
        blobs.append(b)
    parts = []
    if metadata:
        parts.append('"__metadata__":' + json.dumps(dict(sorted(metadata.items())), separators=(",", ":")))
    for name in sorted(tensors):
        t = tensors[name]
        entry = '{"dtype":%s,"shape":%s,"data_offsets":[%d,%d]}' % (
            json.dumps(DTYPES[t.dtype][0]), json.dumps(list(t.shape), separators=(",", ":")), *offsets[name])
        parts.append(json.dumps(name) + ":" + entry)
    header = ("{" + ",".join(parts) + "}").encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for b in blobs:
            f.write(b)


def small_state_dict():
    torch.manual_seed(20240611)
    model = torch.nn.Sequential(
        collections.OrderedDict([
            ("conv", torch.nn.Conv2d(3, 2, 2)),
            ("bn", torch.nn.BatchNorm2d(2)),
        ]))
    model.bn.running_mean.normal_()
    model.bn.num_batches_tracked.fill_(7)
    sd = model.state_dict()  # an OrderedDict with a _metadata attribute
    assert hasattr(sd, "_metadata")

    sd["half.weight"] = torch.tensor(
        [1.0, -2.5, 65504.0, 6.1e-05, 5.96e-08, -0.0, float("inf"), 0.1, 1000.5, -3.0e-6, 0.333, 7.0],
        dtype=torch.float16).reshape(3, 4)
    sd["double.weight"] = torch.tensor([1.0 / 3.0, -1e300, 2.0 ** -1074, 1e-40, 123456.789], dtype=torch.float64)
    sd["bf16.weight"] = torch.randn(2, 3).to(torch.bfloat16)
    sd["int.index"] = torch.tensor([-2147483648, -1, 0, 2147483647], dtype=torch.int32)
    sd["long.big"] = torch.tensor([-(2 ** 63), 2 ** 62 + 1], dtype=torch.int64)
    sd["short.v"] = torch.tensor([-32768, 12345], dtype=torch.int16)
    sd["char.v"] = torch.tensor([-128, 127, 5], dtype=torch.int8)
    sd["byte.v"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])

    # A transposed (non-contiguous) view: stride (1, 4).
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5
    sd["transposed"] = base.t()
    assert not sd["transposed"].is_contiguous()
    # Views sharing one storage, at offsets, one of them strided.
    shared = torch.arange(20, dtype=torch.float32) + 0.25
    sd["shared.a"] = shared[2:6]
    sd["shared.b"] = shared[8:14].view(2, 3)
    sd["shared.every3"] = shared[1::3]
    assert sd["shared.b"].storage_offset() == 8
    # A 3-D permuted view of a half tensor.
    sd["permuted"] = torch.arange(24, dtype=torch.float16).reshape(2, 3, 4).permute(2, 0, 1)
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar.f32"] = torch.tensor(2.75)
    # One tensor object under two names (the pickle memo shares it).
    tied = torch.tensor([1.5, 2.5])
    sd["tied.a"] = tied
    sd["tied.b"] = tied
    # A Parameter, pickled through torch._utils._rebuild_parameter.
    sd["param.weight"] = torch.nn.Parameter(torch.tensor([[0.5, -1.5]]))
    return sd


class WithState:
    """Pickles a tensor the way torch ≥ 2 pickles one that carries Python
    attributes: through torch._tensor._rebuild_from_type_v2 (torch 1.13
    drops such attributes instead)."""

    def __init__(self, tensor, state):
        self.tensor, self.state = tensor, state

    def __reduce_ex__(self, proto):
        t = self.tensor
        args = (t.storage(), t.storage_offset(), tuple(t.size()), t.stride(), False, collections.OrderedDict())
        return (torch._tensor._rebuild_from_type_v2,
                (torch._utils._rebuild_tensor_v2, torch.Tensor, args, self.state))


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def f16_cases():
    specials = [
        0.0, -0.0, 1.0, -2.0, 0.5, 65504.0, 65519.0, 65519.996, 65520.0, -65520.0, 1e10, float("inf"), -float("inf"),
        2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 3 * 2.0 ** -25, 5 * 2.0 ** -25, 2.0 ** -26, 2.0 ** -14,
        2.0 ** -14 - 2.0 ** -25, 2.0 ** -14 - 2.0 ** -26, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -11 + 2.0 ** -20,
        2049.0, 2051.0, 0.1, -0.1, 1e-8, 1.4e-45, -1.4e-45, 3.4028235e38, 6.0975552e-05, 6.1035156e-05,
    ]
    bits = [struct.unpack("<I", struct.pack("<f", v))[0] for v in specials]
    bits += [0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA00000, 0x7FFFFFFF, 0x00000001, 0x80000001, 0x387FE000, 0x387FF000]
    rng = np.random.default_rng(7)
    bits += [int(b) for b in rng.integers(0, 2 ** 32, size=400, dtype=np.uint64)]
    # Values concentrated in the half range, including subnormals.
    bits += [struct.unpack("<I", struct.pack("<f", float(v)))[0]
             for v in np.float32(rng.standard_normal(200)) * np.float32(10.0) ** rng.integers(-9, 6, size=200)]
    f32 = np.array(bits, dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        numpy_half = f32.astype(np.float16).view(np.uint16)
    torch_half = torch.from_numpy(f32.copy()).half().view(torch.int16).numpy().view(np.uint16)
    # And back: every half's float32 value, from torch, for F16ToFloat32.
    cases = [{"f32": "0x%08x" % b, "torch": "0x%04x" % int(t), "numpy": "0x%04x" % int(n)}
             for b, t, n in zip(bits, torch_half, numpy_half)]
    all_half = torch.arange(0, 65536, dtype=torch.int32).to(torch.int16).view(torch.float16).float()
    widened = all_half.view(torch.int32).numpy().astype("<u4").tobytes()
    # The SHA-256 of all 65536 widened values, little-endian, in half-bits
    # order, keeps the file small.
    return {"source": "torch %s .half() and numpy %s astype(float16)" % (torch.__version__, np.__version__),
            "cases": cases, "widen_sha256": hashlib.sha256(widened).hexdigest()}


def write_small():
    os.makedirs(OUT, exist_ok=True)
    sd = small_state_dict()
    attr = torch.tensor([[3.0, 4.0], [5.0, 6.0]]).t()
    to_save = sd.copy()  # keeps _metadata
    to_save["attr.tensor"] = WithState(attr, {"note": "an attribute"})
    sd["attr.tensor"] = attr
    torch.save(to_save, os.path.join(OUT, "state_dict.pt"))
    buf = io.BytesIO()
    torch.save(to_save, buf)
    with open(os.path.join(OUT, "state_dict_archive.pt"), "wb") as f:
        f.write(buf.getvalue())
    torch.save(to_save, os.path.join(OUT, "state_dict_legacy.pt"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(OUT, "expected.safetensors"), {k: v.detach() for k, v in sd.items()},
                      {"source": "tools/make_tensorfile_fixtures.py", "torch": torch.__version__})

    evil = collections.OrderedDict(weight=torch.ones(2))
    evil["payload"] = Evil(os.system, "echo pwned")
    torch.save(evil, os.path.join(OUT, "malicious.pt"))
    evil = collections.OrderedDict(weight=torch.ones(2))
    evil["payload"] = Evil(eval, "print('pwned')")
    torch.save(evil, os.path.join(OUT, "malicious_legacy.pt"), _use_new_zipfile_serialization=False)

    cases = f16_cases()
    with open(os.path.join(OUT, "f16_cases.json"), "w") as f:  # one case a line
        f.write('{"source": %s,\n"widen_sha256": "%s",\n"cases": [\n' % (json.dumps(cases["source"]), cases["widen_sha256"]))
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases["cases"]))
        f.write("\n]}\n")

    # Check the fixtures load back in torch as they were saved.
    for name in ["state_dict.pt", "state_dict_archive.pt", "state_dict_legacy.pt"]:
        back = torch.load(os.path.join(OUT, name))
        assert list(back) == list(sd), name
        for k in sd:
            assert torch.equal(back[k], sd[k]), (name, k)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))


def write_resnet(out):
    import torchvision
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()  # random init: nothing is downloaded
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, "resnet18.pth"))
    torch.save(sd, os.path.join(out, "resnet18-legacy.pth"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(out, "resnet18.safetensors"), dict(sd), {"source": "torchvision.models.resnet18()"})
    print("wrote resnet18.pth, resnet18-legacy.pth, resnet18.safetensors to", out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resnet", metavar="DIR", help="write the resnet18 files to DIR instead of the small fixtures")
    args = ap.parse_args()
    if args.resnet:
        write_resnet(args.resnet)
    else:
        write_small()


if __name__ == "__main__":
    sys.exit(main())
