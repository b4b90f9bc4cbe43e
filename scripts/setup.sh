#!/usr/bin/env bash
# Set up a fresh machine for gitops-ml. Idempotent: each step is skipped when already done.
#   scripts/setup.sh          the Python environment (.venv) only: enough for `make demo`
#   scripts/setup.sh --test   also the system packages, a Docker engine and the base-image
#                             stand-in that the tests need (Debian/Ubuntu, root or sudo)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=false; [ "${1:-}" = "--test" ] && want_test=true
sudo=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo"

step() { printf '\n==> %s\n' "$*"; }

# command -> Debian package providing it; a command already present (e.g. Docker CE on GitHub's
# runners) is left alone rather than replaced.
commands=(git:git make:make)
$want_test && commands+=(dockerd:docker.io docker-registry:docker-registry debootstrap:debootstrap haproxy:haproxy)
missing=()
for entry in "${commands[@]}"; do
  command -v "${entry%%:*}" >/dev/null || missing+=("${entry#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing system packages: ${missing[*]}; install them with your package manager" >&2; exit 1
  fi
  step "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  step "installing uv"
  python3 -m pip install -q "uv==0.13.9"  # pinned: the same resolver everywhere
fi

step "python environment (.venv, locked by requirements-dev.txt)"
uv venv --allow-existing -q -p 3.11 .venv 2>/dev/null || uv venv --allow-existing -q .venv
VIRTUAL_ENV=.venv uv pip install -q -r requirements-dev.txt

if $want_test; then
  step "Docker engine"
  $sudo scripts/start-docker.sh
  docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}'
  step "base image stand-in (no registry is reachable to pull python:*-slim)"
  $sudo scripts/build-base-image.sh
fi
echo "setup done"
