#!/usr/bin/python3
"""Regenerate data/testdata/preprocess/: reference outputs of torchvision's
standard evaluation preprocessing, which data.DecodeImage / data.Preprocess
must reproduce.

Run from the repository root with Debian's python3-torchvision 0.14 and
python3-pil 9.4:

    /usr/bin/python3 tools/make_preprocess_fixtures.py [--shared ../shared/data/photos]

For every case it writes, under data/testdata/preprocess/:

  <name>.crop.png     the uint8 image after Resize + CenterCrop (exact; the
                      tensor is this image through ToTensor and Normalize)
  <name>.decoded.png  for the small synthetic inputs: the decoded RGB image
  <name>.tensor.safetensors  for a few cases: the float32 tensor [3, S, S]
                      "pixel_values" torchvision returns
  cases.json          what each case is and how it was made

The reference loader is torchvision's pil_loader with one addition:
ImageOps.exif_transpose before convert('RGB'), because captionctl honours
EXIF orientation and torchvision's loader does not.

One deliberate departure, marked "reference": "high byte" in cases.json:
Pillow opens a 16-bit grayscale PNG as mode "I" and convert('RGB') clips
every value above 255 to white; captionctl keeps the high byte, as Pillow
itself does for 16-bit RGB and RGBA PNGs, and the fixture says so.

Inputs committed here are CC0 / public-domain photographs from
../shared/data/photos (debian-skimage, debian-matplotlib) and synthetic
images derived from them. Cases marked "shared" read their input from
../shared/data/photos at test time and are skipped when it is absent.
"""

import argparse
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms

OUT = "data/testdata/preprocess"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def load(path):
    """torchvision's pil_loader, plus EXIF orientation."""
    with open(path, "rb") as f:
        img = Image.open(f)
        img = ImageOps.exif_transpose(img)
        return img.convert("RGB")


def reference(img, image_size, resize_size):
    """The crop (PIL image) and tensor of torchvision's eval transform."""
    crop = transforms.Compose(
        [transforms.Resize(resize_size), transforms.CenterCrop(image_size)]
    )(img)
    full = transforms.Compose(
        [
            transforms.Resize(resize_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )(img)
    # The tensor is a per-channel function of the crop's bytes; the Go test
    # relies on that, so check it here.
    t = transforms.Normalize(MEAN, STD)(transforms.ToTensor()(crop))
    assert torch.equal(t, full), "tensor is not a function of the uint8 crop"
    return crop, full


def write_safetensors(path, name, tensor):
    """A one-tensor safetensors file, written by hand."""
    data = tensor.contiguous().numpy().astype("<f4").tobytes()
    header = {name: {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [0, len(data)]}}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(data)


def save_png(img, path):
    img.save(path, format="PNG", optimize=True)


def exif_bytes(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


def png_16bit(path, arr, color_type):
    """Write a 16-bit PNG (color_type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA)
    from a uint16 array [h, w(, c)], big-endian as PNG stores it."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def make_synthetic(photos):
    """Small synthetic inputs derived from a CC0 photograph; returns
    [(file, note, expected_decoded_or_None)]."""
    chelsea = Image.open(os.path.join(photos, "debian-skimage/chelsea.png")).convert("RGB")
    base = chelsea.crop((150, 40, 150 + 96, 40 + 72))  # 96×72, the cat's face
    arr = np.asarray(base).astype(np.int32)
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    out = []

    # RGBA with every alpha from 0 to 255, colour kept under alpha 0.
    alpha = ((xx * 255) // (w - 1)).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([arr.astype(np.uint8), alpha]), "RGBA")
    save_png(rgba, f"{OUT}/rgba.png")
    out.append(("rgba.png", "8-bit RGBA PNG, alpha 0…255 left to right: alpha dropped", None))

    la = Image.fromarray(np.dstack([np.asarray(base.convert("L")), alpha[:, ::-1]]), "LA")
    save_png(la, f"{OUT}/gray_alpha.png")
    out.append(("gray_alpha.png", "8-bit grey+alpha PNG", None))

    pal = base.quantize(colors=64)
    pal.info["transparency"] = 5
    pal.save(f"{OUT}/palette_trns.png", transparency=5)
    out.append(("palette_trns.png", "palette PNG with a transparent index", None))

    base.quantize(colors=32).save(f"{OUT}/palette.gif")
    out.append(("palette.gif", "GIF, 32 colours, no transparency", None))

    base.convert("1").save(f"{OUT}/bilevel.png")
    out.append(("bilevel.png", "1-bit PNG", None))

    # 16-bit samples whose low byte is not the high byte: 257·v + noise.
    noise = ((xx * 37 + yy * 91) % 251).astype(np.int64)
    rgb16 = (arr.astype(np.int64) * 257 + noise[..., None] - 125).clip(0, 65535).astype(np.uint16)
    png_16bit(f"{OUT}/rgb16.png", rgb16, 2)
    out.append(("rgb16.png", "16-bit RGB PNG: Pillow keeps the high byte", None))

    rgba16 = np.dstack([rgb16, (alpha.astype(np.uint16) * 257)])
    png_16bit(f"{OUT}/rgba16.png", rgba16, 6)
    out.append(("rgba16.png", "16-bit RGBA PNG: high byte, alpha dropped", None))

    gray16 = rgb16[..., 1]
    png_16bit(f"{OUT}/gray16.png", gray16, 0)
    high = Image.fromarray((gray16 >> 8).astype(np.uint8), "L").convert("RGB")
    out.append(("gray16.png", "16-bit grey PNG: high byte (Pillow would clip to white; see cases.json)", high))

    # CMYK JPEG: Pillow writes it Adobe-inverted with an APP14 marker.
    cmyk = np.dstack(
        [255 - arr[..., 0], 255 - arr[..., 1], 255 - arr[..., 2], (yy * 255 // (h - 1))]
    ).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(f"{OUT}/cmyk.jpg", quality=95)
    out.append(("cmyk.jpg", "Adobe CMYK JPEG, black ramp top to bottom", None))

    # EXIF orientation on JPEG (6: 90° clockwise, 3: 180°).
    for o in (6, 3):
        base.save(f"{OUT}/exif{o}.jpg", quality=92, exif=exif_bytes(o))
        out.append((f"exif{o}.jpg", f"JPEG with EXIF orientation {o}", None))

    # Every orientation on a tiny lossless PNG (eXIf chunk): an asymmetric
    # 7×5 pattern, so any wrong flip or rotation shows.
    tiny = Image.fromarray(
        np.dstack([xx[:5, :7] * 36, yy[:5, :7] * 60, (xx[:5, :7] * 5 + yy[:5, :7]) * 7]).astype(np.uint8), "RGB"
    )
    for o in range(1, 9):
        tiny.save(f"{OUT}/orient{o}.png", exif=exif_bytes(o))
        out.append((f"orient{o}.png", f"7×5 PNG with EXIF orientation {o} (eXIf chunk)", None))

    # Chroma subsampling edge cases at odd sizes: 4:2:2 and 4:2:0, 95×71.
    odd = chelsea.crop((150, 40, 150 + 95, 40 + 71))
    odd.save(f"{OUT}/odd422.jpg", quality=90, subsampling=1)
    out.append(("odd422.jpg", "95×71 JPEG, 4:2:2", None))
    odd.save(f"{OUT}/odd420_progressive.jpg", quality=90, subsampling=2, progressive=True)
    out.append(("odd420_progressive.jpg", "95×71 progressive JPEG, 4:2:0", None))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared/data/photos")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photos = args.shared

    cases = []

    def add(name, path, image_size, resize_size, note, committed=True, tensor=False, decoded=None, extra=None):
        img = load(path) if decoded is None else decoded
        crop, full = reference(img, image_size, resize_size)
        case = {
            "name": name,
            "input": os.path.basename(path) if committed else os.path.relpath(path, photos),
            "shared": not committed,
            "size": list(img.size),
            "image_size": image_size,
            "resize_size": resize_size,
            "lossless": not path.endswith(".jpg"),
            "note": note,
            "crop": f"{name}.crop.png",
        }
        save_png(crop, f"{OUT}/{name}.crop.png")
        if committed and img.size[0] * img.size[1] <= 100 * 100:
            save_png(img, f"{OUT}/{name}.decoded.png")
            case["decoded"] = f"{name}.decoded.png"
        if tensor:
            write_safetensors(f"{OUT}/{name}.tensor.safetensors", "pixel_values", full)
            case["tensor"] = f"{name}.tensor.safetensors"
        if extra:
            case.update(extra)
        cases.append(case)

    # Real photographs, committed (CC0 / public domain).
    copies = [
        ("debian-skimage/chelsea.png", "chelsea.png", "cat, 451×300 RGB PNG (CC0)"),
        ("debian-skimage/coins.png", "coins.png", "coins, 384×303 greyscale PNG (CC0)"),
        ("debian-matplotlib/grace_hopper.jpg", "grace_hopper.jpg", "portrait, 512×600 JPEG 4:2:0 (public domain)"),
        ("debian-skimage/rocket.jpg", "rocket.jpg", "rocket, 640×427 JPEG 4:4:4 (CC0)"),
    ]
    for src, dst, note in copies:
        with open(os.path.join(photos, src), "rb") as f:
            data = f.read()
        with open(f"{OUT}/{dst}", "wb") as f:
            f.write(data)
    # A 512×512 JPEG photo (the benchmark input): skimage's astronaut, CC0.
    Image.open(os.path.join(photos, "debian-skimage/astronaut.png")).convert("RGB").save(
        f"{OUT}/astronaut.jpg", quality=90, subsampling=2
    )

    add("chelsea_224", f"{OUT}/chelsea.png", 224, 256, copies[0][2], tensor=True)
    add("chelsea_64", f"{OUT}/chelsea.png", 64, 73, copies[0][2])
    add("coins_224", f"{OUT}/coins.png", 224, 256, copies[1][2])
    add("grace_hopper_224", f"{OUT}/grace_hopper.jpg", 224, 256, copies[2][2])
    add("rocket_112", f"{OUT}/rocket.jpg", 112, 128, copies[3][2])
    add("astronaut_224", f"{OUT}/astronaut.jpg", 224, 256, "astronaut, 512×512 JPEG 4:2:0 q90, made from skimage's astronaut.png (CC0)")

    for file, note, expected in make_synthetic(photos):
        name = os.path.splitext(file)[0]
        extra = {"reference": "high byte"} if expected is not None else None
        add(name, f"{OUT}/{file}", 32, 36, note, decoded=expected, extra=extra)

    # Larger real photographs read from ../shared at test time.
    shared = [
        ("debian-skimage/camera.png", "greyscale 512×512 PNG"),
        ("debian-skimage/coffee.png", "600×400 RGB PNG"),
        ("debian-skimage/motorcycle_left.png", "741×500 RGB PNG"),
        ("debian-skimage/hubble_deep_field.jpg", "1000×872 JPEG 4:4:4"),
        ("debian-skimage/retina.jpg", "1411×1411 JPEG 4:2:0"),
        ("debian-darknet/dog.jpg", "768×576 JPEG 4:4:0"),
        ("coral-test-data/cat_720p.jpg", "1280×720 JPEG 4:2:0"),
        ("coral-test-data/parrot.jpg", "512×929 JPEG 4:4:4, portrait"),
    ]
    for rel, note in shared:
        path = os.path.join(photos, rel)
        if not os.path.exists(path):
            print(f"skip {path}: not found", file=sys.stderr)
            continue
        name = "shared_" + os.path.splitext(os.path.basename(rel))[0]
        add(name, path, 128, 146, note, committed=False)

    doc = {
        "generator": "tools/make_preprocess_fixtures.py",
        "torchvision": torchvision.__version__,
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "transform": "Compose([Resize(resize_size), CenterCrop(image_size), ToTensor(), Normalize(mean, std)])",
        "loader": "ImageOps.exif_transpose(Image.open(f)).convert('RGB')",
        "mean": MEAN,
        "std": STD,
        "cases": cases,
    }
    with open(f"{OUT}/cases.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(cases)} cases to {OUT} ({total / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
