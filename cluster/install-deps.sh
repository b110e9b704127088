#!/usr/bin/env bash
# Installs the Debian packages the build needs, when missing. As root it runs
# apt-get; otherwise it prints the exact command and stops.
#   cluster/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(cmake ninja-build g++ make pkg-config python3 libasio-dev libcereal-dev libcli11-dev libssl-dev libgtest-dev
          openmpi-bin libopenmpi-dev libpmix-dev "$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "ipc: missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "ipc: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q "${missing[@]}" >/tmp/ipc-apt.log 2>&1; then
  apt-get update -q >>/tmp/ipc-apt.log 2>&1
  apt-get install -y -q "${missing[@]}" >>/tmp/ipc-apt.log 2>&1 || {
    echo "ipc: apt-get install failed; see /tmp/ipc-apt.log" >&2
    exit 1
  }
fi
