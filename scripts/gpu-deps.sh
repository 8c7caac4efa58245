#!/usr/bin/env bash
# Run HERE (a Debian machine with apt), not on the GPU machine: downloads the Debian packages the
# GPU machine lacks and extracts them under .gpu-deps/ (git-ignored), which the device tool
# carries. scripts/gpu-check.sh points CMake and the loader at it. libjpeg is not carried: the
# GPU machine has its own libjpeg-turbo headers, and mixing its headers with our library fails.
# tcmalloc is, so the GPU machine's build links the malloc the images ship (Note [A caching
# malloc for the CPU lane]); builds there before the ninth session used glibc's.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu-deps
pkgs=(
  nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libcli11-dev
  libpng-dev libpng16-16 libwebp-dev libwebp7 libwebpdemux2
  libwebpmux3 libexif-dev libexif12
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  librabbitmq-dev librabbitmq4 libpqxx-dev libpqxx-6.4 libpq-dev libpq5 libldap-2.5-0
  prometheus-cpp-dev libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 libcivetweb-dev
  zlib1g-dev
  libtcmalloc-minimal4
)
[ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "${pkgs[*]}" ] && exit 0
rm -rf "$dest" && mkdir -p "$dest/debs"
(cd "$dest/debs" && apt-get download "${pkgs[@]}" >/dev/null)
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
rm -rf "$dest/debs" "$dest/root/usr/share/doc" "$dest/root/usr/share/man"
echo "${pkgs[*]}" > "$dest/.stamp"
du -sh "$dest"
