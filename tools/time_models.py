#!/usr/bin/python3
"""CPU timings of converted models, plain and with torch.jit.freeze / optimize_for_inference.

    /usr/bin/python3 tools/time_models.py --cache models/cache --threads 2 \
        isnet-medium:1024,512 mediapipe-selfie:256

Each variant is loaded as the C++ loader does (weights cast to float32), warmed up once, then
timed as the median of --repeat runs. Also checks each variant's output against the plain one.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_export  # noqa: E402


def variants(module):
    yield "plain", module
    frozen = torch.jit.freeze(module)
    yield "freeze", frozen
    try:
        yield "freeze+optimize_for_inference", torch.jit.optimize_for_inference(torch.jit.freeze(module))
    except Exception as err:  # noqa: BLE001 - report, do not stop the other timings
        print(f"  optimize_for_inference failed: {err}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="name:size[,size...]")
    parser.add_argument("--cache", default="models/cache")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for spec in args.models:
        name, sizes = spec.split(":")
        for size in [int(s) for s in sizes.split(",")]:
            x = torch.rand(1, 3, size, size)
            reference = None
            module, _ = model_export.load_model(os.path.join(args.cache, name + ".pt"))
            for label, variant in variants(module):
                with torch.no_grad():
                    out = variant(x)  # warm-up (also runs the profiling executor's first passes)
                    out = variant(x)
                    times = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        out = variant(x)
                        times.append(time.perf_counter() - start)
                if reference is None:
                    reference = out
                # A detector returns a tuple of tensors: the largest difference over all of them.
                outs = out if isinstance(out, (tuple, list)) else (out,)
                refs = reference if isinstance(reference, (tuple, list)) else (reference,)
                diff = max((o - r).abs().max().item() for o, r in zip(outs, refs))
                print(f"{name} {size}x{size} {label}: median {statistics.median(times) * 1000:.0f} ms "
                      f"(min {min(times) * 1000:.0f}), max diff vs plain {diff:.2e}", flush=True)


if __name__ == "__main__":
    main()
