#!/usr/bin/python3
"""A real Prometheus scraping a real `segmentor serve` and the broker's exporter, under a short
load, with the alert and recording rules loaded: every metric, label and label value the rules and
the Grafana dashboard use must exist in what was scraped. Names drift; this test stops that.

Starts (all on loopback, free ports, temp folders; scripts/test-services/): RabbitMQ with its
prometheus and management plugins, PostgreSQL, `segmentor serve` on the CPU with the test models,
and Debian's prometheus. Publishes product images (and one missing file, so a failure exists)
through the management API, waits for them, then asks Prometheus' HTTP API.
"""
import argparse
import base64
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promql_selectors import analyse  # noqa: E402

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(SOURCE, "deploy")
SERVICES = os.path.join(SOURCE, "scripts", "test-services")
EXCHANGE = "product_video_matching"
IMAGES = 12
# Series Prometheus makes itself, not an exporter.
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Exported only where a GPU lane calibrated at start-up, so a CPU run cannot scrape them; their
# name and labels are checked in src/observability/metrics.cpp instead.
GPU_ONLY = {"segmentation_calibrated_task_bytes": {"device", "model", "size_class"}}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, data=None, auth=None, timeout=10):
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_for(what, check, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what} (last error: {last})")


def expressions():
    """(origin, PromQL text) from the rule files and the dashboard, and the recorded names."""
    exprs, recorded = [], set()
    for path in sorted(glob.glob(os.path.join(DEPLOY, "prometheus", "rules", "*.yml"))):
        with open(path, encoding="utf-8") as f:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    name = rule.get("record") or rule.get("alert")
                    if "record" in rule:
                        recorded.add(rule["record"])
                    exprs.append((f"{os.path.basename(path)}:{name}", rule["expr"]))
    with open(os.path.join(DEPLOY, "grafana", "dashboards", "segmentor.json"), encoding="utf-8") as f:
        dashboard = json.load(f)
    # Grafana's variables, as an "All" selection expands them.
    def grafana(expr):
        return expr.replace("$__rate_interval", "1m").replace('"$instance"', '".*"')
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append((f"dashboard:{panel['title']}", grafana(target["expr"])))
    for annotation in dashboard["annotations"]["list"]:
        exprs.append((f"dashboard annotation:{annotation['name']}", grafana(annotation["expr"])))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric, label): the metric must exist and carry the label.
            inner = variable["definition"][len("label_values("):-1]
            metric, label = [part.strip() for part in inner.split(",")]
            exprs.append((f"dashboard variable:{variable['name']}", f"count by ({label}) ({metric})"))
    return exprs, recorded


class Stack:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="segmentor-promtest.")
        # As root, postgres.sh runs the server as the postgres user: it must reach its folder.
        os.chmod(self.tmp, 0o755)
        self.procs, self.rabbit_dir, self.pg_dir = [], None, None

    def start(self):
        env = dict(os.environ)
        self.rmq_prom_port, self.rmq_mgmt_port = free_port(), free_port()
        env.update(RABBITMQ_PROMETHEUS_PORT=str(self.rmq_prom_port),
                   RABBITMQ_MANAGEMENT_PORT=str(self.rmq_mgmt_port))
        self.rabbit_dir = os.path.join(self.tmp, "rabbitmq")
        self.broker = subprocess.run([os.path.join(SERVICES, "rabbitmq.sh"), "start", self.rabbit_dir],
                                     env=env, check=True, capture_output=True, text=True).stdout.strip()
        self.pg_dir = os.path.join(self.tmp, "postgres")
        self.dsn = subprocess.run([os.path.join(SERVICES, "postgres.sh"), "start", self.pg_dir],
                                  check=True, capture_output=True, text=True).stdout.strip()
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(os.path.join(self.data, "in"))
        samples = [p for p in sorted(glob.glob(os.path.join(SOURCE, "samples", "*.jpg")))
                   if "corrupt" not in p]
        self.images = []
        for i in range(IMAGES):
            target = os.path.join(self.data, "in", f"img{i}.jpg")
            shutil.copy(samples[i % len(samples)], target)
            self.images.append(target)

        self.metrics_port = free_port()
        worker_env = dict(os.environ)
        worker_env.update(
            BUS_BROKER=self.broker, POSTGRES_DSN=self.dsn, DATA_ROOT_CONTAINER=self.data,
            INPUT_ROOTS=self.data, METRICS_PORT=str(self.metrics_port), DEVICE="cpu",
            FOREGROUND_SEG_MODEL_NAME=os.path.join(self.args.models, "test-bright.pt"),
            PEOPLE_SEG_MODEL_NAME=os.path.join(self.args.models, "test-yolo.pt"),
            CPU_THREADS="1", LOG_FORMAT="text", LOG_LEVEL="WARNING", SHUTDOWN_GRACE_SECONDS="5")
        self.worker_log = open(os.path.join(self.tmp, "worker.log"), "w")
        self.worker = subprocess.Popen([self.args.segmentor, "serve"], env=worker_env, cwd=self.tmp,
                                       stdout=self.worker_log, stderr=subprocess.STDOUT)
        self.procs.append(self.worker)

        self.prom_port = free_port()
        # The rule files as they are, but evaluated every second (their groups say 30 s and 5 m).
        rule_files = []
        for path in sorted(glob.glob(os.path.join(DEPLOY, "prometheus", "rules", "*.yml"))):
            with open(path, encoding="utf-8") as f:
                rules = yaml.safe_load(f)
            for group in rules["groups"]:
                group["interval"] = "1s"
            rule_files.append(os.path.join(self.tmp, os.path.basename(path)))
            with open(rule_files[-1], "w") as f:
                yaml.safe_dump(rules, f)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "scrape_configs": [
                {"job_name": "segmentor", "static_configs": [{"targets": [f"127.0.0.1:{self.metrics_port}"]}]},
                {"job_name": "rabbitmq", "static_configs": [{"targets": [f"127.0.0.1:{self.rmq_prom_port}"]}]},
            ],
        }
        config_path = os.path.join(self.tmp, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        self.prom_log = open(os.path.join(self.tmp, "prometheus.log"), "w")
        self.prometheus = subprocess.Popen(
            [self.args.prometheus, f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(self.tmp, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=self.prom_log, stderr=subprocess.STDOUT)
        self.procs.append(self.prometheus)

    def publish(self, routing_key, payload):
        body = json.dumps({"properties": {"delivery_mode": 2, "correlation_id": "promtest"},
                           "routing_key": routing_key, "payload": json.dumps(payload),
                           "payload_encoding": "string"}).encode()
        url = f"http://127.0.0.1:{self.rmq_mgmt_port}/api/exchanges/%2F/{EXCHANGE}/publish"
        status, text = http(url, data=body, auth="guest:guest")
        if status != 200 or not json.loads(text).get("routed"):
            raise RuntimeError(f"publish {routing_key} not routed: {status} {text}")

    def worker_metrics(self):
        return http(f"http://127.0.0.1:{self.metrics_port}/metrics")[1]

    def prom(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        status, text = http(f"http://127.0.0.1:{self.prom_port}{path}?{query}")
        answer = json.loads(text)
        if answer.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {answer}")
        return answer["data"]

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.rabbit_dir and os.path.exists(os.path.join(self.rabbit_dir, "ports")):
            subprocess.run([os.path.join(SERVICES, "rabbitmq.sh"), "stop", self.rabbit_dir], capture_output=True)
        if self.pg_dir and os.path.exists(self.pg_dir):
            subprocess.run([os.path.join(SERVICES, "postgres.sh"), "stop", self.pg_dir], capture_output=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--segmentor", required=True)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args()
    args.segmentor, args.models = os.path.abspath(args.segmentor), os.path.abspath(args.models)

    exprs, recorded = expressions()
    failures = []
    # Parse everything first: an expression the tokenizer cannot read fails without servers.
    parsed = []
    for origin, expr in exprs:
        try:
            parsed.append((origin, expr, *analyse(expr)))
        except ValueError as e:
            failures.append(f"{origin}: {e}")

    stack = Stack(args)
    started = time.time()
    try:
        stack.start()
        wait_for("the worker's /readyz", lambda: http(f"http://127.0.0.1:{stack.metrics_port}/readyz")[0] == 200, 90)
        job = "promtest-job"
        for i, path in enumerate(stack.images):
            stack.publish("products.image.ready", {"product_id": f"p{i}", "image_id": f"img{i}",
                                                   "local_path": path, "job_id": job})
        stack.publish("products.image.ready", {"product_id": "gone", "image_id": "gone",
                                               "local_path": os.path.join(stack.data, "in", "gone.jpg"),
                                               "job_id": job})
        stack.publish("products.images.ready.batch", {"job_id": job, "event_id": "e1",
                                                      "total_images": IMAGES + 1})

        def finished():
            text = stack.worker_metrics()
            total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith("segmentor_messages_total{") and "products.image.ready" in line)
            return total >= IMAGES + 1
        wait_for("the worker to handle every message", finished, 90)
        # A few scrapes and rule evaluations after the load.
        time.sleep(4)
        wait_for("both targets up", lambda: all(
            t["health"] == "up" for t in stack.prom("/api/v1/targets")["activeTargets"]) and len(
            stack.prom("/api/v1/targets")["activeTargets"]) == 2, 30)

        # Every rule loaded and evaluating without error.
        groups = stack.prom("/api/v1/rules")["groups"]
        loaded = sum(len(g["rules"]) for g in groups)
        if loaded != len([e for e in exprs if not e[0].startswith("dashboard")]):
            failures.append(f"Prometheus loaded {loaded} rules, the files have "
                            f"{len([e for e in exprs if not e[0].startswith('dashboard')])}")
        for group in groups:
            for rule in group["rules"]:
                if rule.get("health") not in ("ok", "unknown") or rule.get("lastError"):
                    failures.append(f"rule {rule['name']}: health {rule.get('health')} {rule.get('lastError', '')}")

        names = set(stack.prom("/api/v1/label/__name__/values"))
        checked = 0
        for origin, expr, selectors, grouping in parsed:
            labels_seen = set(TARGET_LABELS)
            for name, matchers, text in selectors:
                if name in SYNTHETIC:
                    continue
                if name in recorded:
                    continue  # checked through its own rule
                if ":" in name:
                    failures.append(f"{origin}: {name} looks recorded but no rule records it")
                    continue
                if name in GPU_ONLY:
                    source = open(os.path.join(SOURCE, "src", "observability", "metrics.cpp")).read()
                    used = {m[0] for m in matchers} | grouping
                    if f'"{name}"' not in source or not used <= GPU_ONLY[name] | TARGET_LABELS:
                        failures.append(f"{origin}: {text} does not match metrics.cpp")
                    checked += 1
                    continue
                if name not in names:
                    failures.append(f"{origin}: metric {name} is not exported")
                    continue
                # The selector as written (names, labels and values) must match scraped series.
                series = stack.prom("/api/v1/series", **{"match[]": text})
                checked += 1
                if not series:
                    failures.append(f"{origin}: {text} matches no scraped series")
                    continue
                for s in series:
                    labels_seen.update(s.keys())
            missing = grouping - labels_seen - {""}
            if missing and any(n not in recorded and n not in SYNTHETIC for n, _, _ in selectors):
                failures.append(f"{origin}: grouping by {sorted(missing)}: no such label on its series")
        # Recorded series exist once their inputs do (the baseline reads an hour back: no data yet).
        def recorded_all():
            return all(stack.prom("/api/v1/query", query=name)["result"]
                       for name in recorded if not name.endswith("baseline_1d"))
        try:
            wait_for("the recording rules' series", recorded_all, 20)
        except TimeoutError:
            for name in sorted(recorded):
                if not name.endswith("baseline_1d") and not stack.prom("/api/v1/query", query=name)["result"]:
                    failures.append(f"recording rule {name} produced no series")
        print(f"checked {checked} selectors from {len(exprs)} expressions against "
              f"{len(names)} scraped metric names in {time.time() - started:.0f} s")
    except Exception as e:  # noqa: BLE001 - report and clean up
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        stack.stop()
        if failures or args.keep:
            for log in ("worker.log", "prometheus.log"):
                path = os.path.join(stack.tmp, log)
                if os.path.exists(path):
                    with open(path) as f:
                        print(f"--- {log} (last lines)\n" + "".join(f.readlines()[-15:]))
        if not args.keep:
            shutil.rmtree(stack.tmp, ignore_errors=True)
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
