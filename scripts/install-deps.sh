#!/usr/bin/env bash
# Installs the Debian packages topicbridge needs to build and to run its local
# stack and integration tests. Idempotent: only missing packages are installed,
# and `apt-get update` runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config python3
  libpq-dev libpqxx-dev libnats-dev librdkafka-dev libsimdjson-dev libyaml-cpp-dev
  libspdlog-dev doctest-dev libcpp-httplib-dev libcli11-dev rapidjson-dev
  postgresql-15 postgresql-15-wal2json nats-server kcat curl
  # fuzz targets (scripts/fuzz.sh, fuzz phase of scripts/test.sh): clang and its runtime with
  # libFuzzer, which clang only recommends
  clang libclang-rt-14-dev
)

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: missing ${missing[*]}; run as root (no sudo found)" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
