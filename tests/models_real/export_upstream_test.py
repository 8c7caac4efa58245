#!/usr/bin/python3
"""Tests the tested half of tools/export_upstream.py (and model_export.py) on small local models:
wrapping, tracing, output checks, float16 storage, manifests, determinism, reload.

    /usr/bin/python3 tests/models_real/export_upstream_test.py

The upstream downloads themselves (RMBG-2.0, yolo11l-seg) cannot run here; see docs/models.md.
"""

import json
import os
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools"))
import export_upstream  # noqa: E402
import model_export  # noqa: E402


class TinyRmbg(torch.nn.Module):
    """Like RMBG-2.0's interface: a list of per-stage logits, the last at full resolution."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.a(x))
        coarse = self.b(torch.nn.functional.avg_pool2d(h, 2))
        return [coarse, self.b(h) * 4.0]


class TinyYoloSeg(torch.nn.Module):
    """Like an ultralytics Segment head in export mode: ((predictions, prototypes), extras)."""

    def __init__(self, classes=3, masks=32):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.head = torch.nn.Conv2d(8, 4 + classes + masks, 1)
        self.proto = torch.nn.Conv2d(8, masks, 1)

    def forward(self, x):
        f = torch.relu(self.stem(x))
        pred = self.head(f).flatten(2)
        return (pred, self.proto(f)), [f]


def small(manifest, size=64):
    return dict(manifest, input_width=size, input_height=size)


class ExportTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.tmp = tempfile.TemporaryDirectory()
        self.out = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_rmbg_like_export_roundtrip(self):
        model = TinyRmbg()
        manifest = small(export_upstream.rmbg2_manifest("tiny-rmbg"))
        pt, js = export_upstream.export(export_upstream.SelectOutput(model), manifest, self.out)
        with open(js) as f:
            written = json.load(f)
        self.assertEqual(written["kind"], "foreground_probability")
        self.assertEqual(written["output_activation"], "sigmoid")
        self.assertEqual(written["mean"], [0.485, 0.456, 0.406])
        self.assertEqual(written["weights_dtype"], "float32")
        self.assertIn("CC BY-NC 4.0", written["licence"])
        loaded, _ = model_export.load_model(pt)
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            self.assertTrue(torch.allclose(loaded(x), model(x)[-1], atol=1e-6))

    def test_fp16_storage_halves_the_file(self):
        model = export_upstream.SelectOutput(TinyRmbg())
        manifest = small(export_upstream.rmbg2_manifest("tiny32"))
        pt32, _ = export_upstream.export(model, manifest, self.out)
        pt16, js16 = export_upstream.export(model, dict(manifest, name="tiny16"), self.out, fp16=True)
        self.assertEqual(model_export.floating_storage_dtypes(torch.jit.load(pt16)), {torch.float16})
        with open(js16) as f:
            self.assertEqual(json.load(f)["weights_dtype"], "float16")
        raw16 = sum(p.numel() * p.element_size() for p in torch.jit.load(pt16).parameters())
        raw32 = sum(p.numel() * p.element_size() for p in torch.jit.load(pt32).parameters())
        self.assertEqual(raw16 * 2, raw32)

    def test_yolo_like_export_and_output_check(self):
        model = export_upstream.YoloSegOutputs(TinyYoloSeg(classes=3))
        manifest = small(export_upstream.yolo_manifest("tiny-yolo", num_classes=3))
        pt, js = export_upstream.export(model, manifest, self.out)
        loaded, written = model_export.load_model(pt)
        self.assertEqual(written["kind"], "yolo_seg")
        self.assertEqual(written["resize"], "letterbox")
        pred, proto = loaded(torch.rand(1, 3, 64, 64))
        self.assertEqual(tuple(pred.shape), (1, 4 + 3 + 32, 64))
        self.assertEqual(tuple(proto.shape), (1, 32, 8, 8))
        wrong = small(export_upstream.yolo_manifest("wrong", num_classes=80))
        with self.assertRaises(RuntimeError):
            export_upstream.export(model, wrong, self.out)

    def test_mask_size_mismatch_is_rejected(self):
        class Half(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.avg_pool2d(x[:, :1], 2)
        with self.assertRaises(RuntimeError):
            export_upstream.export(Half(), small(export_upstream.rmbg2_manifest("half")), self.out)

    def test_manifest_text_is_deterministic(self):
        # TorchScript archives are byte-identical across processes (checked for the bundled models,
        # docs/models.md); within one process a re-traced class gets a mangled name, so only the
        # manifest is compared here.
        manifest = small(export_upstream.rmbg2_manifest("det"))
        self.assertEqual(model_export.manifest_json(manifest), model_export.manifest_json(dict(manifest)))


class ManifestTest(unittest.TestCase):
    def base(self):
        return {"name": "m", "kind": "person_probability", "input_width": 8, "input_height": 8}

    def test_valid_manifest_is_written_in_field_order(self):
        text = model_export.manifest_json(dict(self.base(), licence="MIT", layout="nhwc"))
        self.assertEqual(list(json.loads(text)), ["name", "kind", "input_width", "input_height",
                                                  "layout", "licence"])

    def test_invalid_manifests_are_rejected(self):
        bad = [
            {"kind": "person_probability", "input_width": 8, "input_height": 8},
            dict(self.base(), kind="people"),
            dict(self.base(), input_width=True),
            dict(self.base(), input_width=0),
            dict(self.base(), mean=[0, 0]),
            dict(self.base(), std=[1, 0, 1]),
            dict(self.base(), colour="rgb"),
            dict(self.base(), kind="yolo_seg"),
            dict(self.base(), weights_dtype="bfloat16"),
        ]
        for manifest in bad:
            with self.subTest(manifest=manifest):
                with self.assertRaises(model_export.ManifestError):
                    model_export.validate_manifest(manifest)

    def test_save_needs_script_module(self):
        with tempfile.TemporaryDirectory() as out:
            with self.assertRaises(TypeError):
                model_export.save_model(torch.nn.Identity(), self.base(), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
