#!/usr/bin/env python3
"""Issue 13 target 3's reference on a machine without node: the foreground network through
onnxruntime on the CPU, as @imgly/background-removal-node runs it (onnxruntime, fp32, its default
thread pool), timed at steady state. The ONNX file is exported here from our own TorchScript
(fp16 weights widened to fp32), so no npm package is needed; the network's input is fixed, so
any frame costs the same.

  bench/ort_cpu_reference.py MODEL.pt [--size 1024] [--runs 12] [--threads 0 8 4]

Prints one line per thread setting: seconds per image (median of the runs after two untimed).
Needs torch and onnxruntime (the GPU machine has both)."""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch


def export(model_path, size, out):
    """Exports with TorchScript's exporter (the only one that takes a ScriptModule); returns the
    module and an input with its output, to check the export against."""
    module = torch.jit.load(model_path, map_location="cpu").float().eval()
    x = torch.rand(1, 3, size, size)
    kwargs = dict(opset_version=17, input_names=["input"])
    try:
        torch.onnx.export(module, (x,), out, dynamo=False, **kwargs)
    except TypeError:  # LibTorch before 2.5 has one exporter and no `dynamo` argument
        torch.onnx.export(module, (x,), out, **kwargs)
    with torch.no_grad():
        expected = module(x)
    while isinstance(expected, (list, tuple)):
        expected = expected[0]
    return x.numpy(), expected.numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--threads", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "model.onnx")
        t0 = time.perf_counter()
        probe, expected = export(args.model, args.size, onnx_path)
        print(f"exported to ONNX in {time.perf_counter() - t0:.1f} s; onnxruntime "
              f"{ort.__version__}, {os.cpu_count()} cores", flush=True)
        check = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        got = check.run(None, {check.get_inputs()[0].name: probe})[0]
        difference = float(np.abs(got - expected).max())
        print(f"largest difference from TorchScript's output: {difference:.2e}", flush=True)
        if difference > 1e-2:
            print("the export does not give TorchScript's output", file=sys.stderr)
            return 1
        x = np.random.default_rng(1).random((1, 3, args.size, args.size), dtype=np.float32)
        for threads in args.threads:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads  # 0: onnxruntime's default, every core
            session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            for _ in range(2):
                session.run(None, {name: x})
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                session.run(None, {name: x})
                times.append(time.perf_counter() - t)
            print(f"onnxruntime threads {threads or 'default'}: "
                  f"{statistics.median(times):.3f} s per image (min {min(times):.3f}, "
                  f"{args.runs} runs)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
