"""Shared helpers of the real-model tests: paths, test photos, preprocessing, reference runtimes.

Everything downloaded goes under the git-ignored .cache/ of the repository and is verified:
photos come from Debian's python3-skimage package (downloaded, unpacked, never installed) and are
checked by sha256; the reference runtimes are installed with `npm ci` from the committed lockfile.
"""

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO, "tools")
DATA = os.path.join(REPO, "tests", "data", "models_real")
REF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref")
sys.path.insert(0, TOOLS)

SKIMAGE_DEB_VERSION = "0.19.3-8"
# skimage/data files used by the tests (identical across recent python3-skimage versions).
SKIMAGE_IMAGES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "horse.png": "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455",
    "logo.png": "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    # For the people stage (people_stage_test.py): the cameraman, and photos without people.
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "motorcycle_right.png": "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "moon.png": "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577",
    "clock_motion.png": "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "color.png": "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e",
    "page.png": "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
    "text.png": "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
    "cell.png": "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515",
    "chessboard_RGB.png": "1ac01eff2d4e50f4eda55a2ddecdc28a6576623a58d7a7ef84513c5cc19a0331",
    "phantom.png": "552ff698167aa402cceb17981130607a228a0a0aa7c519299eaa4d5f301ba36c",
}


def parse_args(description):
    """Common options; returns (args, remaining argv for unittest)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cache", default=os.environ.get("MODEL_CACHE", os.path.join(REPO, "models", "cache")),
                        help="MODEL_CACHE holding the converted models (scripts/fetch-models.sh)")
    parser.add_argument("--work", default=os.path.join(REPO, ".cache"),
                        help="git-ignored folder for downloads (npm, deb)")
    args, rest = parser.parse_known_args()
    args.cache = os.path.abspath(args.cache)
    args.work = os.path.abspath(args.work)
    return args, [sys.argv[0]] + rest


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def skimage_images(work_dir):
    """Returns {file name: path} of the verified skimage photos, unpacking python3-skimage's .deb
    into work_dir/deb (apt-get download + dpkg -x; nothing is installed)."""
    deb_dir = os.path.join(work_dir, "deb")
    data_dir = os.path.join(deb_dir, "x", "usr", "lib", "python3", "dist-packages", "skimage", "data")
    paths = {name: os.path.join(data_dir, name) for name in SKIMAGE_IMAGES}

    def valid():
        return all(os.path.exists(p) and _sha256(p) == SKIMAGE_IMAGES[n]
                   for n, p in paths.items())

    if valid():
        return paths
    os.makedirs(deb_dir, exist_ok=True)
    debs = glob.glob(os.path.join(deb_dir, "python3-skimage_*.deb"))
    if not debs:
        for spec in (f"python3-skimage={SKIMAGE_DEB_VERSION}", "python3-skimage"):
            result = subprocess.run(["apt-get", "download", spec], cwd=deb_dir,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if result.returncode == 0:
                break
        debs = glob.glob(os.path.join(deb_dir, "python3-skimage_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download python3-skimage failed: {result.stdout.strip()}")
    subprocess.run(["dpkg", "-x", sorted(debs)[-1], os.path.join(deb_dir, "x")], check=True)
    if not valid():
        bad = [n for n, p in paths.items() if not os.path.exists(p) or _sha256(p) != SKIMAGE_IMAGES[n]]
        raise RuntimeError(f"skimage photos do not match their pinned sha256: {bad}")
    return paths


def load_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def load_rgba(path):
    return np.asarray(Image.open(path).convert("RGBA"))


def resize_rgb(rgb, width, height):
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))


def preprocess(rgb, manifest):
    """HWC uint8 RGB -> float32 [1, 3, H, W] (or NHWC per manifest) as docs/model-manifest.md
    describes: stretch to the model size, reorder channels, scale, normalise."""
    if manifest.get("resize", "stretch") != "stretch":
        raise ValueError("these tests only use stretch models")
    rgb = resize_rgb(rgb, manifest["input_width"], manifest["input_height"])
    scale = manifest.get("pixel_scale", 1.0 / 255.0)
    mean = np.asarray(manifest.get("mean", [0, 0, 0]), np.float32)
    std = np.asarray(manifest.get("std", [1, 1, 1]), np.float32)
    if manifest.get("channel_order", "rgb") == "bgr":
        rgb = rgb[:, :, ::-1]
    x = (rgb.astype(np.float32) * np.float32(scale) - mean) / std
    if manifest.get("layout", "nchw") == "nchw":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None])


def load_model(cache, name):
    """The converted model and its manifest, loaded as the C++ loader does on CPU (float32)."""
    import model_export
    path = os.path.join(cache, name + ".pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run scripts/fetch-models.sh (MODEL_CACHE={cache})")
    return model_export.load_model(path)


def run_model(module, manifest, batch):
    """Probabilities [N, H, W] for a float32 input batch (one image at a time, as served)."""
    import torch
    outputs = []
    with torch.no_grad():
        for i in range(batch.shape[0]):
            y = module(torch.from_numpy(batch[i:i + 1]))
            if isinstance(y, (tuple, list)):
                y = y[manifest.get("output_index", -1)]
            if manifest.get("output_activation", "none") == "sigmoid":
                y = torch.sigmoid(y)
            outputs.append(y.reshape(y.shape[-2], y.shape[-1]).numpy())
    return np.stack(outputs)


def reference_runtime(work_dir):
    """Installs (once) the pinned onnxruntime-node and @tensorflow/tfjs with `npm ci` from the
    committed lockfile; returns the folder holding node_modules."""
    target = os.path.join(work_dir, "npm", "parity-ref")
    lock = os.path.join(REF_DIR, "package-lock.json")
    stamp = os.path.join(target, "installed.sha256")
    want = _sha256(lock) + _sha256(os.path.join(REF_DIR, "package.json"))
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == want:
                return target
    os.makedirs(target, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        with open(os.path.join(REF_DIR, name), "rb") as src, open(os.path.join(target, name), "wb") as dst:
            dst.write(src.read())
    result = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"],
                            cwd=target, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"npm ci of the reference runtimes failed: {result.stdout.strip()}")
    with open(stamp, "w") as f:
        f.write(want)
    return target


def run_reference(work_dir, kind, model_path, batch, dims, input_name="-", output_name="-"):
    """Runs infer.js over a float32 batch (each item of shape dims); returns float32 outputs."""
    runtime = reference_runtime(work_dir)
    tmp = os.path.join(work_dir, "npm", "parity-io")
    os.makedirs(tmp, exist_ok=True)
    in_path = os.path.join(tmp, f"{kind}-in.f32")
    out_path = os.path.join(tmp, f"{kind}-out.f32")
    np.ascontiguousarray(batch, dtype="<f4").tofile(in_path)
    env = dict(os.environ, NODE_PATH=os.path.join(runtime, "node_modules"))
    result = subprocess.run(["node", os.path.join(REF_DIR, "infer.js"), kind, model_path, in_path,
                             ",".join(str(d) for d in dims), input_name, output_name, out_path],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"reference run failed: {result.stdout.strip()}")
    return np.fromfile(out_path, dtype="<f4")


def write_report(work_dir, name, data):
    """Keeps the measured numbers next to the downloads for the docs (not asserted upon)."""
    path = os.path.join(work_dir, "reports", name + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return path


def float32_onnx(onnx_path, out_path):
    """Writes (once) a float32 copy of a float16 ONNX model: initializers widened exactly and
    Casts to float16 turned into Casts to float32. onnxruntime on CPU keeps the graph's own Casts,
    so the float16 model rounds its input and every Resize output to float16; the converted
    module computes in float32, and this copy is the like-for-like reference for it."""
    if os.path.exists(out_path) and os.path.getmtime(out_path) >= os.path.getmtime(onnx_path):
        return out_path
    import onnx
    from onnx import numpy_helper
    model = onnx.load(onnx_path)
    graph = model.graph
    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == onnx.TensorProto.FLOAT16:
            wide = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)
            graph.initializer[i].CopyFrom(wide)
    for node in graph.node:
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT16:
                    attr.i = onnx.TensorProto.FLOAT
    for value in list(graph.value_info) + list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    tmp = out_path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out_path)
    return out_path
