#!/usr/bin/python3
"""Writes the small image fixtures under testdata/images that Go's own
encoders cannot make: a CMYK JPEG (with Adobe's APP14 marker, as Photoshop
writes them) and a grayscale JPEG. Needs Debian's python3-pil.

    /usr/bin/python3 tools/make_test_images.py
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "testdata", "images")
os.makedirs(out, exist_ok=True)

cmyk = Image.new("CMYK", (24, 16))
for x in range(24):
    for y in range(16):
        cmyk.putpixel((x, y), (x * 10, y * 15, 255 - x * 10, 40))
cmyk.save(os.path.join(out, "cmyk.jpg"), quality=90)

gray = Image.new("L", (24, 16))
for x in range(24):
    for y in range(16):
        gray.putpixel((x, y), (x * 10 + y * 5) % 256)
gray.save(os.path.join(out, "gray.jpg"), quality=90)
