#!/usr/bin/env bash
# Build a stand-in for the official python slim image, for machines that cannot pull from Docker Hub.
# The generated Dockerfile takes it through --build-arg BASE_IMAGE=<tag>. Cached by tag.
set -euo pipefail
tag=${1:-gitops-ml/python-base:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then echo "base image $tag present"; exit 0; fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "building base image $tag with debootstrap (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$root" >/tmp/gitops-ml-debootstrap.log 2>&1 || { tail -20 /tmp/gitops-ml-debootstrap.log >&2; exit 1; }
# The package index is reached through a proxy whose CA only the host bundle holds.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
echo "base image $tag built"
