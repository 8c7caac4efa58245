#!/usr/bin/python3
"""Regenerates the committed ground-truth masks in tests/data/models_real/ from skimage photos.

    /usr/bin/python3 tests/models_real/make_ground_truth.py

horse_mask.png: the horse silhouette of skimage's horse.png (dark pixels), 400x328.
logo_disk_mask.png: the disk of skimage's logo.png (the white S inside it belongs to the object),
found as the circle enclosing every non-white pixel, 500x500.
The quality test pastes these shapes, filled with photo textures, onto plain and textured
backgrounds, so the masks are exact ground truth for those composites.
"""

import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402


def horse_mask(path):
    gray = np.asarray(Image.open(path).convert("L"))
    return gray < 128


def logo_disk_mask(path):
    rgb = support.load_rgb(path).astype(np.int32)
    ink = (rgb.min(axis=2) < 200)
    ys, xs = np.nonzero(ink)
    cy, cx = (ys.min() + ys.max()) / 2.0, (xs.min() + xs.max()) / 2.0
    radius = max(ys.max() - ys.min(), xs.max() - xs.min()) / 2.0
    yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2


def main():
    args, _ = support.parse_args(__doc__.splitlines()[0])
    photos = support.skimage_images(args.work)
    os.makedirs(support.DATA, exist_ok=True)
    for name, mask in (("horse_mask.png", horse_mask(photos["horse.png"])),
                       ("logo_disk_mask.png", logo_disk_mask(photos["logo.png"]))):
        path = os.path.join(support.DATA, name)
        Image.fromarray(mask.astype(np.uint8) * 255).save(path, optimize=True)
        print(f"{path}: {mask.shape[1]}x{mask.shape[0]}, {mask.mean():.3f} foreground")


if __name__ == "__main__":
    main()
