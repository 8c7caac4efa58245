#!/usr/bin/python3
"""The people stage of the real pipeline: the NanoDet person detector decides where people are.

    /usr/bin/python3 tests/models_real/people_stage_test.py --cache models/cache \\
        --segmentor build/src/app/segmentor --test-models build/test-models

Runs `segmentor run` twice over photos from Debian's python3-skimage .deb and over composites made
from them at test time: with the bundled detector (the default) and without it
(--person-detector none, the people model alone). The foreground model is the toy test-bright
(tools/make_test_models.py): what is checked is the people mask and how the product mask follows
from it, and a toy foreground keeps the runs to seconds. Checks:

- photos without people (objects, animals, logos, textures, text, space): no people mask at all,
  and product = foreground, pixel for pixel;
- photos with people (astronaut, cameraman): a people mask, with IoU >= 0.9 against the ungated one;
- a person beside a product: the person keeps a people mask, the product gets none of it;
- a product held against a person: most of the product stays product.

Needs the converted models (scripts/fetch-models.sh), the segmentor binary and the test models.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

WITHOUT_PEOPLE = ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "horse.png", "logo.png", "hubble_deep_field.jpg",
                  "retina.jpg", "coins.png", "moon.png", "clock_motion.png", "ihc.png", "color.png",
                  "brick.png", "grass.png", "gravel.png", "page.png", "text.png", "cell.png",
                  "chessboard_RGB.png", "phantom.png")
WITH_PEOPLE = ("astronaut.png", "camera.png")
MIN_IOU_WITH_UNGATED = 0.9
MIN_PERSON_IN_PERSON_BOXES = 0.9
MAX_PEOPLE_ON_PRODUCT_BESIDE = 0.01
MIN_HELD_PRODUCT_KEPT = 0.75

ARGS = None
REPORT = {}


def composites(photos):
    """{name: (RGB image, {region name: boolean mask})} built from the photos."""
    astronaut = support.load_rgb(photos["astronaut.png"])  # 512 x 512
    coffee = support.load_rgb(photos["coffee.png"])        # 600 x 400
    regions = support_regions()
    out = {}

    # A person on the left, a product photo on the right, on a plain light background.
    canvas = np.full((512, 1000, 3), 225, np.uint8)
    canvas[:, :330] = astronaut[:, :330]
    canvas[56:456, 380:980] = coffee
    person = np.zeros(canvas.shape[:2], bool)
    for x0, y0, x1, y1 in regions["person"]:
        person[y0:y1, x0:min(x1, 330)] = True
    product = np.zeros(canvas.shape[:2], bool)
    product[56:456, 380:980] = True
    out["person-beside-product"] = (canvas, {"person": person, "product": product})

    # A product held against the person's side at hand height.
    canvas = np.full((512, 760, 3), 225, np.uint8)
    canvas[:, :512] = astronaut
    held = support.resize_rgb(coffee, 300, 200)
    canvas[280:480, 420:720] = held
    product = np.zeros(canvas.shape[:2], bool)
    product[280:480, 420:720] = True
    out["product-held"] = (canvas, {"product": product})
    return out


def support_regions():
    import json
    with open(os.path.join(support.DATA, "astronaut_regions.json")) as f:
        return json.load(f)


def run_segmentor(inputs, out_dir, detector):
    env = dict(os.environ, MODEL_CACHE=ARGS.cache, DEVICE="cpu", LOG_LEVEL="warn")
    command = [ARGS.segmentor, "run", inputs, "--out", out_dir, "--no-progress",
               "--foreground-model", os.path.join(ARGS.test_models, "test-bright.pt"),
               "--people-model", "mediapipe-selfie", "--person-detector", detector]
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}")
    return result.stdout


def read_mask(out_dir, kind, stem, shape):
    """The mask as booleans; a people mask that was not written is all False."""
    path = os.path.join(out_dir, f"masks_{kind}", "product_images", stem + ".png")
    if not os.path.exists(path):
        if kind == "people":
            return np.zeros(shape, bool)
        raise AssertionError(f"{path} is missing")
    values = np.asarray(Image.open(path))
    assert set(np.unique(values)) <= {0, 255}, f"{path} is not 0/255"
    return values == 255


def iou(a, b):
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


class PeopleStageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.photos = support.skimage_images(ARGS.work)
        cls.tmp = tempfile.mkdtemp(prefix="people-stage-")
        inputs = os.path.join(cls.tmp, "in")
        os.makedirs(inputs)
        cls.shapes = {}
        for name in WITHOUT_PEOPLE + WITH_PEOPLE:
            stem = os.path.splitext(name)[0]
            rgb = support.load_rgb(cls.photos[name])
            Image.fromarray(rgb).save(os.path.join(inputs, stem + ".png"))
            cls.shapes[stem] = rgb.shape[:2]
        cls.regions = {}
        for stem, (rgb, regions) in composites(cls.photos).items():
            Image.fromarray(rgb).save(os.path.join(inputs, stem + ".png"))
            cls.shapes[stem] = rgb.shape[:2]
            cls.regions[stem] = regions
        cls.gated = os.path.join(cls.tmp, "gated")
        cls.ungated = os.path.join(cls.tmp, "ungated")
        summary = run_segmentor(inputs, cls.gated, "nanodet-g")
        print(summary, flush=True)
        REPORT["summary with the detector"] = summary
        run_segmentor(inputs, cls.ungated, "none")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def masks(self, out_dir, stem):
        shape = self.shapes[stem]
        return {kind: read_mask(out_dir, kind, stem, shape)
                for kind in ("foreground", "people", "product")}

    def test_photos_without_people_keep_the_whole_foreground(self):
        self.assertGreaterEqual(len(WITHOUT_PEOPLE), 15)
        marked_without_detector = 0
        for name in WITHOUT_PEOPLE:
            stem = os.path.splitext(name)[0]
            with self.subTest(photo=name):
                gated = self.masks(self.gated, stem)
                ungated = self.masks(self.ungated, stem)
                REPORT[f"people fraction without the detector: {name}"] = float(ungated["people"].mean())
                marked_without_detector += bool(ungated["people"].mean() > 0.01)
                self.assertFalse(gated["people"].any(), "people mask on a photo without people")
                np.testing.assert_array_equal(gated["product"], gated["foreground"])
        # Not vacuous: without the detector the selfie model marks several of these as people.
        print(f"without the detector, {marked_without_detector} of {len(WITHOUT_PEOPLE)} photos "
              f"without people had > 1 % people", flush=True)
        self.assertGreater(marked_without_detector, 0)

    def test_photos_with_people_keep_their_people_mask(self):
        for name in WITH_PEOPLE:
            stem = os.path.splitext(name)[0]
            with self.subTest(photo=name):
                gated = self.masks(self.gated, stem)
                ungated = self.masks(self.ungated, stem)
                score = iou(gated["people"], ungated["people"])
                REPORT[f"people IoU with / without the detector: {name}"] = score
                print(f"{name}: people IoU with/without the detector {score:.4f}, "
                      f"people fraction {gated['people'].mean():.3f}", flush=True)
                self.assertGreater(gated["people"].mean(), 0.05)
                self.assertGreaterEqual(score, MIN_IOU_WITH_UNGATED)
                np.testing.assert_array_equal(gated["product"], gated["foreground"] & ~gated["people"])

    def test_person_beside_a_product(self):
        masks = self.masks(self.gated, "person-beside-product")
        regions = self.regions["person-beside-product"]
        on_person = float(masks["people"][regions["person"]].mean())
        on_product = float(masks["people"][regions["product"]].mean())
        REPORT["person beside product"] = {"people on person": on_person, "people on product": on_product}
        print(f"person beside product: people mask covers {on_person:.3f} of the person boxes, "
              f"{on_product:.4f} of the product", flush=True)
        self.assertGreaterEqual(on_person, MIN_PERSON_IN_PERSON_BOXES)
        self.assertLessEqual(on_product, MAX_PEOPLE_ON_PRODUCT_BESIDE)

    def test_product_held_by_a_person(self):
        masks = self.masks(self.gated, "product-held")
        ungated = self.masks(self.ungated, "product-held")
        product = self.regions["product-held"]["product"]
        kept = 1.0 - float(masks["people"][product].mean())
        kept_ungated = 1.0 - float(ungated["people"][product].mean())
        REPORT["product held"] = {"kept": kept, "kept without the detector": kept_ungated}
        print(f"product held: {kept:.3f} of it is not people ({kept_ungated:.3f} without the "
              f"detector); people fraction {masks['people'].mean():.3f}", flush=True)
        self.assertTrue(masks["people"].any(), "the person lost her people mask")
        self.assertGreaterEqual(kept, MIN_HELD_PRODUCT_KEPT)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--segmentor", required=True, help="the segmentor binary")
    parser.add_argument("--test-models", required=True, help="folder of tools/make_test_models.py")
    extra, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0]] + rest
    ARGS, argv = support.parse_args(__doc__.splitlines()[0])
    ARGS.segmentor = os.path.abspath(extra.segmentor)
    ARGS.test_models = os.path.abspath(extra.test_models)
    program = unittest.main(argv=argv, exit=False, verbosity=2)
    print("report:", support.write_report(ARGS.work, "people_stage", REPORT))
    sys.exit(0 if program.result.wasSuccessful() else 1)
