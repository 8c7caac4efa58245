#!/usr/bin/env python3
"""What a TorchScript model's first call on a new thread costs on a GPU, and what cuDNN has to do
with it (Note [Dear first calls on a new thread], src/pipeline/calibrate.h).

  bench/thread_first_calls.py MODEL.pt SIZE [MODEL.pt SIZE ...]

For each model and each setting (LibTorch's defaults; cuDNN's older API by
TORCH_CUDNN_V8_API_DISABLED=1; cuDNN off; cuDNN autotuning on), a fresh process loads and
freezes the model in fp16, makes three calls on its main thread, then times: a steady call;
one call on each of three new threads, one after another; and eight new threads calling at once
(the total, and each thread's first call). Prints one JSON line per model and setting. Runs where
PyTorch with CUDA is installed (the GPU machine)."""
import json
import os
import subprocess
import sys
import threading
import time

SETTINGS = ("default", "v8off", "nocudnn", "autotune")


def measure(path, size, setting, concurrent):
    import torch
    torch._C._jit_set_texpr_fuser_enabled(False)  # as the worker runs (Note [The TorchScript fuser is off])
    if setting == "nocudnn":
        torch.backends.cudnn.enabled = False
    if setting == "autotune":
        torch.backends.cudnn.benchmark = True
    model = torch.jit.load(path, map_location="cuda").eval()
    try:
        model = torch.jit.freeze(model)
    except RuntimeError:
        pass  # not every graph freezes; the worker then runs it plain too
    x = torch.rand(1, 3, size, size, device="cuda", dtype=torch.half)
    out = {"model": os.path.basename(path), "setting": setting}
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(50):
            model(x)
        torch.cuda.synchronize()
        out["steady_ms"] = round((time.perf_counter() - start) / 50 * 1e3, 2)

    def first_call(results, i, barrier=None):
        stream = torch.cuda.Stream()
        if barrier:
            barrier.wait()
        start = time.perf_counter()
        with torch.inference_mode(), torch.cuda.stream(stream):
            model(x)
            stream.synchronize()
        results[i] = time.perf_counter() - start

    one_by_one = [0.0] * 3
    for i in range(3):
        thread = threading.Thread(target=first_call, args=(one_by_one, i))
        thread.start()
        thread.join()
    out["new_thread_first_call_s"] = [round(t, 3) for t in one_by_one]
    together = [0.0] * concurrent
    barrier = threading.Barrier(concurrent)
    threads = [threading.Thread(target=first_call, args=(together, i, barrier))
               for i in range(concurrent)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out[f"{concurrent}_threads_at_once_s"] = round(time.perf_counter() - start, 3)
    out["their_first_calls_s"] = sorted(round(t, 3) for t in together)
    print(json.dumps(out), flush=True)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        _, _, path, size, setting = sys.argv
        measure(path, int(size), setting, 8)
        return 0
    args = sys.argv[1:]
    if len(args) < 2 or len(args) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    for path, size in zip(args[::2], args[1::2]):
        for setting in SETTINGS:
            env = dict(os.environ)
            if setting == "v8off":
                env["TORCH_CUDNN_V8_API_DISABLED"] = "1"
            done = subprocess.run([sys.executable, __file__, "--one", path, size, setting],
                                  env=env, capture_output=True, text=True, timeout=300)
            print(done.stdout.strip() or f"{path} {setting}: failed: {done.stderr[-400:]}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
