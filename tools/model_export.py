"""Writes a model as the project expects it: `<name>.pt` (TorchScript) + `<name>.json` (manifest).

Shared by the bundled-model converter (convert_bundled.py) and the upstream exporter
(export_upstream.py); the format is docs/model-manifest.md. Everything here is deterministic:
the same module and manifest give byte-identical files, so checksums can be pinned and compared.

Note [Generated TorchScript source]
The converters generate Python source for a module's forward() and compile it with
torch.jit.script. TorchScript needs the source text (inspect.getsource), and stores source
ranges with the file name in the saved archive's debug records. Registering the text in
linecache under a fixed pseudo file name ("<segmentor:name>") gives inspect the text without a
file on disk and keeps machine-specific paths out of the archive, so outputs are reproducible.
"""

import hashlib
import json
import linecache
import os
import types

import numpy as np

import torch

MANIFEST_KINDS = ("foreground_probability", "person_probability", "yolo_seg", "person_detector")

# Field -> (type check, default). Mirrors the table in docs/model-manifest.md.
_FIELDS = {
    "name": (str, None),
    "kind": (str, None),
    "input_width": (int, None),
    "input_height": (int, None),
    "layout": (str, "nchw"),
    "channel_order": (str, "rgb"),
    "pixel_scale": ((int, float), 1.0 / 255.0),
    "mean": (list, [0.0, 0.0, 0.0]),
    "std": (list, [1.0, 1.0, 1.0]),
    "resize": (str, "stretch"),
    "letterbox_pad_value": ((int, float), 114),
    "output_index": (int, -1),
    "output_activation": (str, "none"),
    "mask_threshold": ((int, float), 0.5),
    "num_classes": (int, None),
    "person_class": (int, 0),
    "conf_threshold": ((int, float), 0.5),
    "iou_threshold": ((int, float), 0.7),
    "strides": (list, None),
    "reg_bins": (int, None),
    "box_margin": ((int, float), 0.1),
    "weights_dtype": (str, "float32"),
    "is_test_model": (bool, False),
    "source": (str, ""),
    "licence": (str, ""),
}
_REQUIRED = ("name", "kind", "input_width", "input_height")
_ENUMS = {
    "kind": MANIFEST_KINDS,
    "layout": ("nchw", "nhwc"),
    "channel_order": ("rgb", "bgr"),
    "resize": ("stretch", "letterbox"),
    "output_activation": ("none", "sigmoid"),
    "weights_dtype": ("float16", "float32"),
}


class ManifestError(ValueError):
    pass


def validate_manifest(manifest):
    """Checks names, types and enumerations; returns the manifest unchanged or raises ManifestError."""
    unknown = sorted(set(manifest) - set(_FIELDS))
    if unknown:
        raise ManifestError(f"unknown manifest fields: {unknown}")
    for key in _REQUIRED:
        if key not in manifest:
            raise ManifestError(f"manifest field '{key}' is required")
    for key, value in manifest.items():
        kind, _ = _FIELDS[key]
        # bool is an int in Python; keep them apart so `"input_width": True` is rejected.
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise ManifestError(f"manifest field '{key}' has the wrong type: {value!r}")
        if key in _ENUMS and value not in _ENUMS[key]:
            raise ManifestError(f"manifest field '{key}' must be one of {_ENUMS[key]}, not {value!r}")
    for key in ("mean", "std"):
        if key in manifest:
            values = manifest[key]
            if len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
                raise ManifestError(f"manifest field '{key}' must hold 3 numbers")
    if "std" in manifest and any(v == 0 for v in manifest["std"]):
        raise ManifestError("manifest field 'std' must not contain 0")
    if manifest["input_width"] <= 0 or manifest["input_height"] <= 0:
        raise ManifestError("input size must be positive")
    if manifest["kind"] == "yolo_seg" and "num_classes" not in manifest:
        raise ManifestError("yolo_seg manifests need num_classes")
    if manifest["kind"] == "person_detector":
        for key in ("num_classes", "strides", "reg_bins"):
            if key not in manifest:
                raise ManifestError(f"person_detector manifests need {key}")
        if not manifest["strides"] or not all(isinstance(v, int) and v > 0 for v in manifest["strides"]):
            raise ManifestError("manifest field 'strides' must hold positive integers")
    return manifest


def manifest_json(manifest):
    """The manifest as text: validated, keys in a fixed order, newline-terminated."""
    validate_manifest(manifest)
    ordered = {key: manifest[key] for key in _FIELDS if key in manifest}
    return json.dumps(ordered, indent=2) + "\n"


def compile_generated(source, module_name, namespace=None):
    """Executes generated source as a module whose text TorchScript can read; see
    Note [Generated TorchScript source]. Returns the module object."""
    filename = f"<segmentor:{module_name}>"
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    if namespace:
        module.__dict__.update(namespace)
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module


def script_generated(source, class_name, params, op_counts):
    """Compiles generated converter source, builds its class from numpy `params` and scripts it.
    Returns (scripted module, info dict) as both converters report them."""
    module = compile_generated(source, class_name.lower())
    # A contiguous, writable copy: initializers read from ONNX are read-only views.
    tensors = {k: torch.from_numpy(np.array(v, copy=True, order="C")) for k, v in params.items()}
    scripted = torch.jit.script(getattr(module, class_name)(tensors).eval())
    info = {
        "op_counts": dict(sorted(op_counts.items())),
        "parameters": int(sum(v.size for v in params.values())),
        "tensors": len(params),
        "param_dtypes": sorted({str(v.dtype) for v in params.values()}),
        "source_text": source,
    }
    return scripted, info


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(script_module, manifest, out_dir):
    """Saves `<name>.pt` and `<name>.json` into out_dir atomically (temp file + rename).

    script_module must already be a torch.jit.ScriptModule. Returns the two paths."""
    if not isinstance(script_module, torch.jit.ScriptModule):
        raise TypeError("save_model needs a TorchScript module (torch.jit.script or trace)")
    text = manifest_json(manifest)
    name = manifest["name"]
    if not name or "/" in name or name.startswith("."):
        raise ManifestError(f"bad model name {name!r}")
    os.makedirs(out_dir, exist_ok=True)
    pt_path = os.path.join(out_dir, name + ".pt")
    json_path = os.path.join(out_dir, name + ".json")
    tmp_pt = pt_path + ".tmp"
    tmp_json = json_path + ".tmp"
    torch.jit.save(script_module, tmp_pt)
    with open(tmp_json, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp_pt, pt_path)
    os.replace(tmp_json, json_path)
    return pt_path, json_path


def load_model(pt_path, dtype=torch.float32):
    """Loads a saved model the way the C++ loader does on CPU: weights cast to dtype, eval mode.

    Returns (module, manifest)."""
    with open(os.path.splitext(pt_path)[0] + ".json", encoding="utf-8") as f:
        manifest = validate_manifest(json.load(f))
    module = torch.jit.load(pt_path, map_location="cpu")
    module = module.to(dtype)
    module.eval()
    return module, manifest


def floating_storage_dtypes(module):
    """The set of dtypes of a module's floating-point parameters and buffers."""
    tensors = list(module.parameters()) + list(module.buffers())
    return {t.dtype for t in tensors if t.is_floating_point()}
