#!/usr/bin/python3
"""The container image's runtime package list covers the binary.

Every shared library `segmentor` links directly (ELF NEEDED) must come from a Debian package that
deploy/docker/runtime-packages.txt names, or from one those packages depend on (libc6,
libstdc++6, libgomp1, ...: what `apt-get install` of the list brings). The list is what Dockerfile.cpu and prove-runtime.sh
install, so a library added to the build without its package fails here, not in production.
Also: every listed package exists in the archive this machine uses (a typo fails here).
"""
import argparse
import subprocess
import sys


def read_list(path):
    packages = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            name = line.split("#", 1)[0].strip()
            if name:
                packages.append(name)
    return packages


def needed(binary):
    out = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    return [line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines() if "(NEEDED)" in line]


def resolved_paths(binary):
    """soname -> path, from ldd."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    paths = {}
    for line in out.splitlines():
        if "=>" in line:
            name, rest = line.split("=>", 1)
            target = rest.strip().split(" ", 1)[0]
            paths[name.strip()] = target
    return paths


def owning_package(path):
    for candidate in (path, subprocess.run(["readlink", "-f", path], capture_output=True, text=True).stdout.strip()):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0].strip()
        # /lib is a symlink to /usr/lib on bookworm: dpkg knows one spelling only.
        alt = candidate.replace("/usr/lib/", "/lib/", 1) if candidate.startswith("/usr/lib/") else candidate.replace("/lib/", "/usr/lib/", 1)
        out = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0].strip()
    return None


def closure(packages):
    """What `apt-get install --no-install-recommends PACKAGES` brings: the Depends/Pre-Depends
    closure, read from this machine's dpkg database (the packages are installed here: the build
    needs them), every alternative of an "a | b" taken."""
    depends, provides = {}, {}
    with open("/var/lib/dpkg/status", encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith((" ", "\t")) and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    fields[key] = value.strip()
            name = fields.get("Package")
            if not name or "installed" not in fields.get("Status", ""):
                continue
            names = []
            for field in ("Depends", "Pre-Depends"):
                for group in fields.get(field, "").split(","):
                    for alternative in group.split("|"):
                        dep = alternative.strip().split(" ", 1)[0].split(":", 1)[0]
                        if dep:
                            names.append(dep)
            depends[name] = names
            for provided in fields.get("Provides", "").split(","):
                provided = provided.strip().split(" ", 1)[0]
                if provided:
                    provides.setdefault(provided, []).append(name)
    seen, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(depends.get(name, []))
        todo.extend(provides.get(name, []))
    return seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--packages", required=True)
    args = parser.parse_args()

    listed = set(read_list(args.packages))
    installed = closure(sorted(listed)) | listed
    failures = []
    paths = resolved_paths(args.binary)
    sonames = needed(args.binary)
    if not sonames:
        failures.append("no NEEDED entries read from the binary")
    for soname in sonames:
        path = paths.get(soname)
        if not path or path == "not":
            failures.append(f"{soname}: not found by ldd on this machine")
            continue
        package = owning_package(path)
        if package is None:
            failures.append(f"{soname} ({path}): no Debian package owns it")
            continue
        if package in listed:
            print(f"ok   {soname:40} {package}")
            continue
        if package in installed:
            print(f"ok   {soname:40} {package} (a dependency of the listed packages)")
            continue
        failures.append(f"{soname}: package {package} is missing from {args.packages}")

    # One apt-cache call for the whole list (each call loads apt's cache: seconds).
    policy = subprocess.run(["apt-cache", "policy", *sorted(listed)], capture_output=True, text=True)
    known = {line[:-1] for line in policy.stdout.splitlines() if line and not line[0].isspace() and line.endswith(":")}
    for package in sorted(listed - known):
        failures.append(f"{package}: listed but unknown to apt")

    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
