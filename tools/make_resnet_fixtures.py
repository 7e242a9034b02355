#!/usr/bin/python3
"""Reference fixtures for captionctl's ResNet encoder (package model).

Everything comes from torchvision's own ResNet code with random weights
(torch.manual_seed; nothing is downloaded), batch-norm running statistics set
to random non-trivial values so that folding them into the convolutions is
tested, and the model in eval() mode.

Two modes:

  --small DIR (default model/testdata/resnet): the committed fixture, under
      5 MB. resnet50 cut down to its stem (conv1/bn1), layer1.0 (Bottleneck
      with a 1x1 downsample) and layer2.0 (stride 2 in the 3x3 conv, strided
      downsample); resnet18 cut down to its stem, layer1
      (BasicBlocks) and layer2.0 (stride-2 BasicBlock with downsample). Keys
      are the real torchvision names. Writes
        <arch>_trunc.safetensors   the truncated state dict (F32, plus the
                                   I64 num_batches_tracked scalars)
        trunc_ref.safetensors
            input           [2, 3, 64, 64] seeded normal, NCHW
            input_odd       [2, 3, 50, 50] seeded normal, NCHW
            <arch>.stem     after conv1-bn1-relu-maxpool   [2, 64, 16, 16]
            resnet18.layer1 after layer1                   [2, 64, 16, 16]
            <arch>.out      after layer2.0                 [2, C, 8, 8]
            <arch>.grid7    AdaptiveAvgPool2d(7) of out, flatten(2).transpose(1, 2)
            resnet18.grid14 AdaptiveAvgPool2d(14) of out, likewise
            resnet18.odd_out after layer2.0 from input_odd [2, 128, 7, 7]

  --full DIR: for every depth (18, 34, 50, 101, 152) a whole network, not
      committed (45-240 MB each):
        <arch>.pth                 torch.save(model.state_dict())
        <arch>_ref.safetensors     input [2, 3, 224, 224] (two real photos,
                                   torchvision's Resize(256)-CenterCrop(224)-
                                   ToTensor-Normalize), grid7 [2, 49, C] and
                                   grid14 [2, 196, C]
      The Go test reads them with
        CAPTIONCTL_RESNET_DIR=DIR go test ./model -run TestEncoderParityFull

Safetensors are written by hand here (8-byte little-endian header length,
JSON header, raw little-endian data) so that no extra Python package is
needed.

Usage:
  /usr/bin/python3 tools/make_resnet_fixtures.py [--small DIR] [--full DIR]
"""

import argparse
import glob
import json
import os
import struct

import numpy as np
import torch
import torchvision

SEED = 20240611
BN_EPS = 1e-5


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, numpy array); F32 and I64 only."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        if arr.dtype == np.float32:
            dtype = "F32"
        elif arr.dtype == np.int64:
            dtype = "I64"
        else:
            raise ValueError(f"{name}: dtype {arr.dtype}")
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def randomize_bn(model, gen):
    """Non-trivial running statistics and affine parameters on every BN."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=gen))
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
                m.running_var.copy_(torch.empty(c).uniform_(0.5, 2.0, generator=gen))
                m.num_batches_tracked.fill_(int(torch.randint(1, 10000, (1,), generator=gen)))


def make_model(arch, seed):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)()  # random init, no download
    gen = torch.Generator().manual_seed(seed + 1)
    randomize_bn(model, gen)
    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.eps == BN_EPS
    return model


def pooled(x, grid):
    """[n, C, h, w] -> [n, grid*grid, C], PyTorch's flatten(2).transpose(1, 2)."""
    p = torch.nn.functional.adaptive_avg_pool2d(x, (grid, grid))
    return p.flatten(2).transpose(1, 2).contiguous()


def npy(t):
    return t.detach().cpu().numpy().astype(np.float32)


def state_items(sd, keep):
    out = []
    for k, v in sd.items():
        if keep(k):
            a = v.detach().cpu().numpy()
            out.append((k, a.astype(np.int64) if a.dtype == np.int64 else a.astype(np.float32)))
    return out


def small(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED + 7)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    # 50 pixels: odd maps after the stem (13×13) and layer2.0 (7×7), so the
    # Winograd tiles that stick out of a map and the stride-2 borders are hit.
    x_odd = torch.randn(2, 3, 50, 50, generator=gen)
    refs = [("input", npy(x)), ("input_odd", npy(x_odd))]
    # resnet50 keeps layer1.0 (Bottleneck with a stride-1 downsample, 64 ->
    # 256) and layer2.0 (stride 2 in conv2, strided downsample); layer1.1-2
    # would add nothing new and 0.6 MB. resnet18 keeps layer1 whole and
    # layer2.0 (stride-2 BasicBlock with downsample).
    blocks = {"resnet50": ("layer1.0.", "layer2.0."), "resnet18": ("layer1.", "layer2.0.")}
    for arch in ("resnet50", "resnet18"):
        model = make_model(arch, SEED)
        sd = model.state_dict()
        prefixes = ("conv1.", "bn1.") + blocks[arch]
        items = state_items(sd, lambda k: k.startswith(prefixes))
        with torch.no_grad():
            stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            l1 = model.layer1[0](stem) if arch == "resnet50" else model.layer1(stem)
            out = model.layer2[0](l1)
        write_safetensors(os.path.join(out_dir, f"{arch}_trunc.safetensors"), items,
                          {"source": f"torchvision.models.{arch}() seed {SEED}, random BN stats, "
                                     f"cut to {', '.join(p.rstrip('.') for p in prefixes)}"})
        refs += [(f"{arch}.stem", npy(stem)), (f"{arch}.layer1", npy(l1)), (f"{arch}.out", npy(out)),
                 (f"{arch}.grid7", npy(pooled(out, 7)))]
        if arch == "resnet18":
            refs.append((f"{arch}.grid14", npy(pooled(out, 14))))
            with torch.no_grad():
                odd = model.layer2[0](model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x_odd))))))
            refs.append((f"{arch}.odd_out", npy(odd)))
        print(f"{arch}: {len(items)} tensors, out {tuple(out.shape)}, max|out| {out.abs().max():.4g}")
    # resnet50's layer1 output (256 channels) is the largest; drop it to stay
    # under 5 MB: stem and out still pin both ends of layer1.0.
    refs = [r for r in refs if r[0] != "resnet50.layer1"]
    write_safetensors(os.path.join(out_dir, "trunc_ref.safetensors"), refs,
                      {"source": f"torch {torch.__version__} torchvision {torchvision.__version__}, eval(), "
                                 f"inputs torch.randn(2, 3, 64, 64) then (2, 3, 50, 50), seed {SEED + 7}"})


def photo_batch():
    """Two real photos, preprocessed as torchvision's ImageNet evaluation does."""
    from PIL import Image
    import torchvision.transforms as T
    here = os.path.dirname(os.path.abspath(__file__))
    photos = sorted(glob.glob(os.path.join(here, "..", "..", "shared", "data", "photos",
                                           "debian-skimage", "*.png")))
    if len(photos) < 2:
        photos = sorted(glob.glob("/work/shared/data/photos/debian-skimage/*.png"))
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    if len(photos) >= 2:
        imgs = [tf(Image.open(p).convert("RGB")) for p in photos[:2]]
        return torch.stack(imgs), [os.path.basename(p) for p in photos[:2]]
    gen = torch.Generator().manual_seed(SEED + 11)
    return torch.randn(2, 3, 224, 224, generator=gen), ["seeded normal"]


def full(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    x, source = photo_batch()
    for i, arch in enumerate(("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")):
        model = make_model(arch, SEED + 100 * i)
        torch.save(model.state_dict(), os.path.join(out_dir, f"{arch}.pth"))
        body = torch.nn.Sequential(*list(model.children())[:-2])
        with torch.no_grad():
            fmap = body(x)
        write_safetensors(os.path.join(out_dir, f"{arch}_ref.safetensors"), [
            ("input", npy(x)), ("grid7", npy(pooled(fmap, 7))), ("grid14", npy(pooled(fmap, 14))),
        ], {"input": ", ".join(source), "arch": arch,
            "source": f"torch {torch.__version__} torchvision {torchvision.__version__}, eval()"})
        print(f"{arch}: feature map {tuple(fmap.shape)}, max|ref| {fmap.abs().max():.4g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--small", default=None, help="write the committed small fixture here")
    ap.add_argument("--full", default=None, help="write full-size networks and references here")
    args = ap.parse_args()
    if args.small is None and args.full is None:
        args.small = os.path.join(here, "..", "model", "testdata", "resnet")
    if args.small:
        small(args.small)
    if args.full:
        full(args.full)


if __name__ == "__main__":
    main()
