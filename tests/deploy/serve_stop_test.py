#!/usr/bin/python3
"""SIGTERM during start-up is a clean stop: what a container engine or Kubernetes sends when a pod
that is still starting is deleted (the images' exec-form ENTRYPOINT delivers it to the worker).

`segmentor serve` with the test models and a database that refuses connections (it keeps
retrying at start-up): once /healthz answers, SIGTERM must end the process with status 0 within
seconds, not leave it to a SIGKILL after the grace period or report a start-up failure (2).
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--segmentor", required=True)
    parser.add_argument("--models", required=True)
    args = parser.parse_args()
    args.segmentor, args.models = os.path.abspath(args.segmentor), os.path.abspath(args.models)
    port = free_port()
    env = dict(os.environ, METRICS_PORT=str(port), DEVICE="cpu", LOG_FORMAT="text",
               POSTGRES_DSN=f"postgresql://postgres:dev@127.0.0.1:{free_port()}/none",
               BUS_BROKER=f"amqp://guest:guest@127.0.0.1:{free_port()}/",
               FOREGROUND_SEG_MODEL_NAME=os.path.join(args.models, "test-bright.pt"),
               PEOPLE_SEG_MODEL_NAME=os.path.join(args.models, "test-yolo.pt"))
    with tempfile.TemporaryDirectory() as tmp:
        env["DATA_ROOT_CONTAINER"] = tmp
        proc = subprocess.Popen([args.segmentor, "serve"], env=env, cwd=tmp,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            proc.kill()
            print("FAIL /healthz never answered\n" + proc.communicate()[0])
            return 1
        time.sleep(0.5)  # in the database retry loop or still loading: either must stop cleanly
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        try:
            out = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            print("FAIL still running 30 s after SIGTERM\n" + proc.communicate()[0])
            return 1
        took = time.time() - sent
        print(out[-2000:])
        print(f"exit status {proc.returncode} {took:.1f} s after SIGTERM")
        if proc.returncode != 0:
            print("FAIL a SIGTERM during start-up must be a clean stop (status 0)")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
