#!/usr/bin/python3
"""The deployment files agree with the code: the Kubernetes manifests (deploy/kubernetes/), the
compose project (deploy/compose/), the Prometheus scrape configuration and the Dockerfiles.

No cluster and no container engine here, so the files are parsed and checked against what the
worker really reads and serves: every environment variable is one src/config/variables.cpp knows,
secrets stay out of the ConfigMap, ports equal METRICS_PORT, probe paths are the ones
src/observability/http_endpoint.cpp answers, the grace period exceeds SHUTDOWN_GRACE_SECONDS,
KEDA's queue names are `queue.<topic>` of the topics src/messaging/events.h consumes, and the
Prometheus job name is the one the alert rules select.
"""
import argparse
import os
import re
import sys

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def read(source, *parts):
    with open(os.path.join(source, *parts), encoding="utf-8") as f:
        return f.read()


def known_variables(source):
    """{name: kind} from the variable table (kPlain, kSecret, kUrl)."""
    table = read(source, "src", "config", "variables.cpp")
    return dict(re.findall(r'\{"([A-Z0-9_]+)",\s*D::(k[A-Za-z]+)', table))


def defaults(source):
    """Defaults from docs/configuration.md (a test keeps it identical to the code's table)."""
    doc = read(source, "docs", "configuration.md")
    return dict(re.findall(r"^\| `([A-Z0-9_]+)` \| `([^`]*)` \|", doc, re.M))


def consumed_queues(source):
    events = read(source, "src", "messaging", "events.h")
    topics = dict(re.findall(r'constexpr std::string_view (k\w+) = "([^"]+)"', events))
    return {"queue." + topics["kProductImageReady"], "queue." + topics["kVideoKeyframesReady"]}


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    source = parser.parse_args().source

    known = known_variables(source)
    check(len(known) > 30, f"read only {len(known)} variables from variables.cpp: the parser drifted")
    secret_names = {n for n, kind in known.items() if kind == "kSecret"} | {"BUS_BROKER", "POSTGRES_DSN"}
    default = defaults(source)
    check("SHUTDOWN_GRACE_SECONDS" in default and "METRICS_PORT" in default,
          "docs/configuration.md table not readable")
    endpoint = read(source, "src", "observability", "http_endpoint.cpp")
    served = set(re.findall(r'uri == "(/[a-z]+)"', endpoint))
    check({"/healthz", "/readyz", "/metrics"} <= served, f"endpoint serves {served}")
    queues = consumed_queues(source)
    alert_rules = read(source, "deploy", "prometheus", "rules", "segmentor-alerts.yml")
    rule_jobs = set(re.findall(r'up\{job="([^"]+)"\}', alert_rules))
    check(rule_jobs == {"segmentor"}, f"alert rules select jobs {rule_jobs}")

    # Every alert links a runbook section that exists.
    for group in yaml.safe_load(alert_rules)["groups"]:
        for rule in group["rules"]:
            link = rule.get("annotations", {}).get("runbook", "")
            path, _, anchor = link.partition("#")
            if check(path and os.path.exists(os.path.join(source, path)), f"{rule['alert']}: runbook {link} missing"):
                check(f'<a id="{anchor}"></a>' in read(source, path), f"{rule['alert']}: no anchor {link}")

    # ---- Kubernetes ----
    kdir = os.path.join(source, "deploy", "kubernetes")
    kustomization = yaml.safe_load(read(source, "deploy", "kubernetes", "kustomization.yaml"))
    docs = []
    for resource in kustomization["resources"]:
        path = os.path.join(kdir, resource)
        if check(os.path.exists(path), f"kustomization lists missing {resource}"):
            docs += load_all(path)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmap = by_kind["ConfigMap"][0]
    secret = by_kind["Secret"][0]
    config = {k: str(v) for k, v in configmap["data"].items()}
    secrets = dict(secret.get("stringData", {}), **secret.get("data", {}))
    for name in config:
        check(name in known, f"ConfigMap sets {name}, which the worker does not read")
        check(name not in secret_names, f"ConfigMap holds the secret {name}: move it to the Secret")
    for name in secrets:
        check(name in known, f"Secret sets {name}, which the worker does not read")
    metrics_port = int(config.get("METRICS_PORT", default["METRICS_PORT"]))
    grace = int(config.get("SHUTDOWN_GRACE_SECONDS", default["SHUTDOWN_GRACE_SECONDS"]))

    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    container = spec["containers"][0]
    check(len(spec["containers"]) == 1, "one container per pod")
    refs = {(k, v["name"]) for e in container.get("envFrom", []) for k, v in e.items()}
    check(("configMapRef", configmap["metadata"]["name"]) in refs, "Deployment does not load the ConfigMap")
    check(("secretRef", secret["metadata"]["name"]) in refs, "Deployment does not load the Secret")
    for env in container.get("env", []):
        check(env["name"] in known, f"Deployment env {env['name']} unknown to the worker")
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    check(ports.get("metrics") == metrics_port, f"container port {ports} != METRICS_PORT {metrics_port}")

    def probe(name, path):
        p = container.get(name, {}).get("httpGet", {})
        check(p.get("path") == path, f"{name} path {p.get('path')} != {path}")
        check(p.get("path") in served, f"{name} path {p.get('path')} is not served")
        port = p.get("port")
        check(port == "metrics" or port == metrics_port, f"{name} port {port} is not METRICS_PORT")
    probe("livenessProbe", "/healthz")
    probe("readinessProbe", "/readyz")
    check(spec.get("terminationGracePeriodSeconds", 30) > grace,
          f"terminationGracePeriodSeconds {spec.get('terminationGracePeriodSeconds')} <= SHUTDOWN_GRACE_SECONDS {grace}")
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    check(str(gpus) == "1", f"one GPU per pod, got {gpus}")
    check(spec["securityContext"].get("runAsNonRoot") is True, "pods must run as non-root")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    check(config.get("DATA_ROOT_CONTAINER", default["DATA_ROOT_CONTAINER"]) in mounts,
          "DATA_ROOT_CONTAINER is not a mounted volume")
    check(config.get("MODEL_CACHE") in mounts, "MODEL_CACHE is not a mounted volume")
    check(config.get("DEVICE", "auto") != "cpu", "a GPU pod with DEVICE=cpu")
    labels = pod["metadata"]["labels"]

    podmonitor = by_kind["PodMonitor"][0]
    selector = podmonitor["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in selector.items()), "PodMonitor does not select the pods")
    endpoints = podmonitor["spec"]["podMetricsEndpoints"]
    check(all(e["port"] in ports and e.get("path", "/metrics") == "/metrics" for e in endpoints),
          "PodMonitor scrapes another port or path")
    job = labels.get(podmonitor["spec"].get("jobLabel", ""), None)
    check(job in rule_jobs, f"PodMonitor's job label would be {job}, the rules select {rule_jobs}")

    scaled = by_kind["ScaledObject"][0]
    check(scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"],
          "ScaledObject scales another Deployment")
    triggers = scaled["spec"]["triggers"]
    trigger_queues = {t["metadata"]["queueName"] for t in triggers if t["type"] == "rabbitmq"}
    check(trigger_queues == queues, f"KEDA queues {trigger_queues} != the consumed queues {queues}")
    auths = {a["metadata"]["name"]: a for a in by_kind.get("TriggerAuthentication", [])}
    for t in triggers:
        ref = t.get("authenticationRef", {}).get("name")
        if check(ref in auths, f"trigger authentication {ref} missing"):
            for target in auths[ref]["spec"]["secretTargetRef"]:
                check(target["name"] == secret["metadata"]["name"] and target["key"] in secrets,
                      f"KEDA reads {target['name']}/{target['key']}, which the Secret lacks")

    # ---- compose ----
    compose = yaml.safe_load(read(source, "deploy", "compose", "docker-compose.yml"))
    worker = compose["services"]["product-segmentor"]
    environment = {k: str(v) for k, v in worker.get("environment", {}).items()}
    for name in environment:
        check(name in known, f"compose sets {name}, which the worker does not read")
    env_example = read(source, "deploy", "compose", "env.example")
    for name in re.findall(r"^([A-Z0-9_]+)=", env_example, re.M):
        check(name in known, f"compose env.example sets {name}, which the worker does not read")
    compose_port = int(environment.get("METRICS_PORT", default["METRICS_PORT"]))
    check(any(str(p).endswith(f":{compose_port}") for p in worker.get("ports", [])),
          "compose does not publish METRICS_PORT")
    # "source:target[:mode]"; the source may hold ${VAR:-default}, so split from the right.
    volumes = [re.sub(r":(ro|rw)$", "", v).rsplit(":", 1)[1] for v in worker["volumes"]]
    check(environment.get("DATA_ROOT_CONTAINER", "/app/data") in volumes, "compose: no /app/data volume")
    check(environment.get("MODEL_CACHE") in volumes, "compose: MODEL_CACHE not mounted")
    grace_text = str(worker.get("stop_grace_period", "10s"))
    check(grace_text.endswith("s") and int(grace_text[:-1]) > grace,
          f"compose stop_grace_period {grace_text} <= SHUTDOWN_GRACE_SECONDS {grace}")
    check({"rabbitmq", "postgres", "prometheus", "grafana"} <= set(compose["services"]),
          "compose lacks one of rabbitmq, postgres, prometheus, grafana")
    prom = yaml.safe_load(read(source, "deploy", "prometheus", "prometheus.yml"))
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    check(set(jobs) >= rule_jobs, f"prometheus.yml jobs {set(jobs)} lack {rule_jobs}")
    targets = [t for c in jobs["segmentor"]["static_configs"] for t in c["targets"]]
    check(targets == [f"product-segmentor:{compose_port}"], f"prometheus.yml scrapes {targets}")
    check(targets[0].split(":")[0] in compose["services"], f"prometheus.yml target {targets[0]} is no compose service")

    # ---- Dockerfiles ----
    for name in ("Dockerfile.cpu", "Dockerfile.cuda"):
        text = read(source, "deploy", "docker", name)
        expose = re.findall(r"^EXPOSE (\d+)", text, re.M)
        env_port = re.findall(r"^\s+METRICS_PORT=(\d+)", text, re.M)
        check(expose == [default["METRICS_PORT"]] and env_port == [default["METRICS_PORT"]],
              f"{name}: EXPOSE {expose} / METRICS_PORT {env_port} != {default['METRICS_PORT']}")
        check(re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M) is not None, f"{name}: no /healthz HEALTHCHECK")
        entry = re.findall(r"^ENTRYPOINT (.*)$", text, re.M)
        check(len(entry) == 1 and entry[0].startswith("["), f"{name}: ENTRYPOINT must be exec form")
        users = re.findall(r"^USER (\S+)", text, re.M)
        check(users and all(not u.startswith(("root", "0")) for u in users), f"{name}: runs as root")
        check(str(spec["securityContext"]["runAsUser"]) == users[-1].split(":")[0],
              f"{name}: USER {users[-1]} != the pod's runAsUser")
        for var in re.findall(r"^\s+([A-Z0-9_]+)=\S+ ?\\?$", text, re.M):
            check(var in known, f"{name}: ENV {var} unknown to the worker")

    for failure in failures:
        print("FAIL", failure)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
