#!/usr/bin/python3
"""Exports the upstream models to TorchScript + manifest, for machines with internet and PyTorch.

    python3 tools/export_upstream.py rmbg2 --out models/cache      # briaai/RMBG-2.0 (transformers)
    python3 tools/export_upstream.py yolo  --out models/cache      # yolo11l-seg (ultralytics)

UNTESTED HERE: our machines reach neither Hugging Face nor the ultralytics downloads, so the two
upstream paths (load_rmbg2, load_yolo) have never run in this project. The part they share with
everything else (wrapping, tracing, checking and saving with a manifest) is tested on small local
models by tests/models_real/export_upstream_test.py. Licences: RMBG-2.0 is CC BY-NC 4.0
(non-commercial), YOLO11 is AGPL-3.0; see docs/models.md.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_export  # noqa: E402

RMBG2_REPO = "briaai/RMBG-2.0"
YOLO_WEIGHTS = "yolo11l-seg.pt"


def rmbg2_manifest(name="rmbg-2.0", weights_dtype="float32"):
    return {
        "name": name,
        "kind": "foreground_probability",
        "input_width": 1024,
        "input_height": 1024,
        "layout": "nchw",
        "pixel_scale": 1.0 / 255.0,
        "mean": [0.485, 0.456, 0.406],  # ImageNet, as RMBG-2.0's model card prescribes
        "std": [0.229, 0.224, 0.225],
        "resize": "stretch",
        "output_index": -1,
        "output_activation": "sigmoid",  # the last output holds logits
        "mask_threshold": 0.5,
        "weights_dtype": weights_dtype,
        "source": f"https://huggingface.co/{RMBG2_REPO} (transformers, trust_remote_code), "
                  "exported by tools/export_upstream.py",
        "licence": "CC BY-NC 4.0 (non-commercial use only; BRIA offers commercial licences)",
    }


def yolo_manifest(name="yolo11l-seg", num_classes=80, weights_dtype="float32"):
    return {
        "name": name,
        "kind": "yolo_seg",
        "input_width": 640,
        "input_height": 640,
        "layout": "nchw",
        "pixel_scale": 1.0 / 255.0,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "resize": "letterbox",
        "letterbox_pad_value": 114,
        "num_classes": num_classes,
        "person_class": 0,
        "conf_threshold": 0.5,
        "iou_threshold": 0.7,
        "weights_dtype": weights_dtype,
        "source": f"ultralytics {YOLO_WEIGHTS} (COCO), exported by tools/export_upstream.py",
        "licence": "AGPL-3.0 (Ultralytics; enterprise licence available)",
    }


class SelectOutput(torch.nn.Module):
    """Returns one element of a model's list/tuple output (RMBG-2.0 returns one per decoder
    stage; the last is the full-resolution mask logits)."""

    def __init__(self, model, index=-1):
        super().__init__()
        self.model = model
        self.index = index

    def forward(self, x):
        out = self.model(x)
        if isinstance(out, (list, tuple)):
            out = out[self.index]
        return out


class YoloSegOutputs(torch.nn.Module):
    """Returns (predictions [1, 4+nc+32, N], prototypes [1, 32, h, w]) from a YOLO-seg model in
    export mode, which returns them as its first two items (or nested one level)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        if isinstance(out, (list, tuple)) and isinstance(out[0], (list, tuple)):
            out = out[0]
        return out[0], out[1]


def trace_module(module, example):
    """Traces module in eval mode without gradients; checks the trace reproduces eager outputs."""
    module = module.eval()
    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False, strict=False)
        expected = module(example)
        actual = traced(example)
    _assert_close(expected, actual, "trace")
    return traced


def _flatten(value):
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    return [value]


def _assert_close(expected, actual, what, atol=1e-4):
    expected, actual = _flatten(expected), _flatten(actual)
    if len(expected) != len(actual):
        raise RuntimeError(f"{what}: {len(actual)} outputs instead of {len(expected)}")
    for e, a in zip(expected, actual):
        if e.shape != a.shape:
            raise RuntimeError(f"{what}: shape {tuple(a.shape)} instead of {tuple(e.shape)}")
        diff = (e.float() - a.float()).abs().max().item() if e.numel() else 0.0
        if diff > atol:
            raise RuntimeError(f"{what}: outputs differ by {diff}")


def check_outputs(manifest, outputs):
    """Raises if the traced outputs do not have the layout the manifest's kind promises."""
    h, w = manifest["input_height"], manifest["input_width"]
    if manifest["kind"] == "yolo_seg":
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            raise RuntimeError("yolo_seg models must return (predictions, prototypes)")
        pred, proto = outputs
        channels = 4 + manifest["num_classes"] + proto.shape[1]
        if pred.dim() != 3 or pred.shape[1] != channels or proto.dim() != 4:
            raise RuntimeError(f"yolo_seg outputs {tuple(pred.shape)}, {tuple(proto.shape)} do not "
                               f"match 4 + {manifest['num_classes']} classes + {proto.shape[1]} masks")
    else:
        out = outputs[manifest.get("output_index", -1)] if isinstance(outputs, (list, tuple)) else outputs
        if out.dim() not in (3, 4) or tuple(out.shape[-2:]) != (h, w):
            raise RuntimeError(f"mask output {tuple(out.shape)} is not [1, 1, {h}, {w}]")


def export(module, manifest, out_dir, fp16=False):
    """Traces `module` at the manifest's input size, checks its outputs, optionally stores the
    weights as float16 (manifest weights_dtype), saves <name>.pt + .json and checks that the saved
    file reloads (cast back to float32, as the C++ loader does on CPU) with the same outputs.
    Returns the two paths."""
    example = torch.rand(1, 3, manifest["input_height"], manifest["input_width"])
    traced = trace_module(module, example)
    with torch.no_grad():
        reference = traced(example)
    check_outputs(manifest, reference)
    manifest = dict(manifest, weights_dtype="float16" if fp16 else "float32")
    if fp16:
        traced = traced.half()
    paths = model_export.save_model(traced, manifest, out_dir)
    reloaded, _ = model_export.load_model(paths[0], torch.float32)
    with torch.no_grad():
        again = reloaded(example)
    # float16 storage rounds the weights: compare loosely then, exactly otherwise.
    _assert_close(reference, again, "reloaded model", atol=5e-2 if fp16 else 1e-5)
    return paths


def load_rmbg2():  # pragma: no cover - needs the internet; untested here
    from transformers import AutoModelForImageSegmentation
    model = AutoModelForImageSegmentation.from_pretrained(RMBG2_REPO, trust_remote_code=True)
    return SelectOutput(model.float().eval(), -1)


def load_yolo(weights=YOLO_WEIGHTS):  # pragma: no cover - needs the internet; untested here
    from ultralytics import YOLO
    model = YOLO(weights).model.float().eval()
    model = model.fuse() if hasattr(model, "fuse") else model
    for m in model.modules():
        # Detect/Segment heads return (cat(boxes, classes, mask coeffs), prototypes) in export mode.
        if hasattr(m, "export"):
            m.export = True
            m.format = "torchscript"
        if hasattr(m, "dynamic"):
            m.dynamic = False
    return YoloSegOutputs(model), len(model.names)


def main(argv=None):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("rmbg2", "yolo"))
    parser.add_argument("--out", default=os.environ.get("MODEL_CACHE", os.path.join(repo, "models", "cache")))
    parser.add_argument("--name", help="model name (default rmbg-2.0 / yolo11l-seg)")
    parser.add_argument("--weights", default=YOLO_WEIGHTS, help="yolo: ultralytics weights file or name")
    parser.add_argument("--fp16", action="store_true", help="store weights as float16 (half the file)")
    args = parser.parse_args(argv)
    if args.model == "rmbg2":
        module, manifest = load_rmbg2(), rmbg2_manifest(args.name or "rmbg-2.0")
    else:
        module, classes = load_yolo(args.weights)
        manifest = yolo_manifest(args.name or "yolo11l-seg", classes)
    for path in export(module, manifest, args.out, args.fp16):
        print(f"{path}: {os.path.getsize(path)} bytes, sha256 {model_export.sha256_file(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
