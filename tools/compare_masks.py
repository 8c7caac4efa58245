#!/usr/bin/env python3
"""Compares two mask folders written by `segmentor run` (same images, e.g. fp16 vs fp32).

Prints one line per mask kind with the mean and minimum IoU over the images, and exits 1 when any
IoU is below --min-iou. Uses numpy and Pillow only.
Usage: compare_masks.py DIR_A DIR_B [--min-iou 0.99]
"""
import argparse
import pathlib
import sys

import numpy as np
from PIL import Image


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum()) / float(union)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=pathlib.Path)
    parser.add_argument("b", type=pathlib.Path)
    parser.add_argument("--min-iou", type=float, default=0.99)
    args = parser.parse_args()
    worst_overall = 1.0
    for kind in ("masks_foreground", "masks_people", "masks_product"):
        scores = []
        for path_a in sorted((args.a / kind).rglob("*.png")):
            path_b = args.b / path_a.relative_to(args.a)
            mask_a = np.asarray(Image.open(path_a)) > 127
            mask_b = np.asarray(Image.open(path_b)) > 127 if path_b.exists() else np.zeros_like(mask_a)
            scores.append((iou(mask_a, mask_b), path_a.name))
        if not scores:
            continue
        worst = min(scores)
        worst_overall = min(worst_overall, worst[0])
        mean = sum(s for s, _ in scores) / len(scores)
        print(f"{kind}: {len(scores)} masks, mean IoU {mean:.4f}, min {worst[0]:.4f} ({worst[1]})")
    return 0 if worst_overall >= args.min_iou else 1


if __name__ == "__main__":
    sys.exit(main())
