#!/usr/bin/env bash
# Start a Docker engine in the background if none answers (CI and fresh machines have none running).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd not installed: run scripts/setup-machine.sh" >&2; exit 1; }
log=${DOCKERD_LOG:-/tmp/gitops-ml-dockerd.log}
echo "starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s; see $log" >&2
tail -20 "$log" >&2
exit 1
