"""The Docker engine behind a small interface: build, push, pull by digest, run, retire.

The engine is the one `DOCKER_HOST` names (a local socket, tcp:// with DOCKER_TLS_VERIFY and
DOCKER_CERT_PATH, or ssh:// through the `ssh` client), exactly as the docker CLI reads them.
Registry credentials come from REGISTRY_USERNAME / REGISTRY_PASSWORD, else from the docker
configuration (`docker login`); they are never printed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.core.deploy import Running, running_from_labels
from gitops_ml.errors import GitopsMLError

Echo = Callable[[str], None]


class DockerError(GitopsMLError):
    """The Docker engine or a registry refused or failed an operation; the message says which and why."""


class BuildFailed(DockerError):
    """`docker build` failed; the message carries the failing step and its log."""


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str  # an image ID or a reference pinned by digest
    environment: dict[str, str]
    labels: dict[str, str]
    port: int  # the port the app listens on inside the container
    network: str | None  # join this network (the upstream is the container's address there) ...
    publish_host: str  # ... or publish `port` on this host address, on a port the engine picks


def _apierror(error) -> str:
    return getattr(error, "explanation", None) or str(error)


class Engine:
    def __init__(self, client):
        self.client = client

    @classmethod
    def connect(cls) -> Engine:
        import docker

        host = os.environ.get("DOCKER_HOST", "the local socket")
        try:
            client = docker.from_env(use_ssh_client=host.startswith("ssh://"), timeout=120)
            client.ping()
        except Exception as error:  # noqa: BLE001 - connection, TLS and SSH errors all mean the same here
            raise DockerError(f"no Docker engine answers at {host}: {error}. Set DOCKER_HOST (and DOCKER_TLS_VERIFY/"
                              "DOCKER_CERT_PATH for tcp://) to the engine to use") from None
        return cls(client)

    # --- images -------------------------------------------------------------------------------

    def build(self, context: Path, tag: str, buildargs: dict[str, str], labels: dict[str, str],
              echo: Echo = print) -> str:
        """Build `context`'s Dockerfile, streaming the log to `echo`; the image ID."""
        from docker.errors import APIError

        step: list[str] = []
        try:
            for record in self.client.api.build(path=str(context), tag=tag, buildargs=buildargs, labels=labels,
                                                rm=True, forcerm=True, decode=True):
                text = record.get("stream") or ""
                if text.startswith("Step "):
                    step = []
                if text.strip():
                    step.append(text.rstrip())
                    echo(text.rstrip())
                if "error" in record:
                    detail = (record.get("errorDetail") or {}).get("message") or record["error"]
                    failing = step[0] if step else "the build"
                    log = "\n".join(step[1:]) or "(no output)"
                    raise BuildFailed(f"docker build failed at `{failing}`: {detail}\n--- that step's log ---\n{log}")
        except APIError as error:
            raise BuildFailed(f"docker build of {context} failed: {_apierror(error)}") from None
        return self.client.images.get(tag).id

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        self.client.images.get(image_id).tag(repository, tag)

    def login(self, registry: str, username: str, password: str) -> None:
        from docker.errors import APIError

        try:
            self.client.login(username=username, password=password, registry=registry, reauth=True)
        except APIError as error:
            raise DockerError(f"login to {registry} as {username} was refused: {_apierror(error)}. Check "
                              "REGISTRY_USERNAME / REGISTRY_PASSWORD (for GHCR: the workflow token with "
                              "`packages: write`)") from None

    def push(self, repository: str, tag: str, echo: Echo = print) -> str:
        """Push one tag; the manifest digest the registry answered (sha256:...)."""
        from docker.errors import APIError

        digest, seen = None, {}
        try:
            for record in self.client.images.push(repository, tag=tag, stream=True, decode=True):
                if "error" in record:
                    raise DockerError(f"push of {repository}:{tag} failed: {record['error']}. If the registry "
                                      "needs credentials, set REGISTRY_USERNAME and REGISTRY_PASSWORD")
                digest = (record.get("aux") or {}).get("Digest") or digest
                layer, status = record.get("id"), record.get("status")
                if layer and status and status != "Pushing" and seen.get(layer) != status:
                    seen[layer] = status
                    echo(f"{layer}: {status}")
        except APIError as error:
            raise DockerError(f"push of {repository}:{tag} failed: {_apierror(error)}") from None
        if not digest:
            raise DockerError(f"push of {repository}:{tag} finished without a digest from the registry")
        return digest

    def ensure(self, reference: str) -> tuple[str, bool]:
        """The image ID for a reference pinned by digest, pulling it when absent; (id, pulled)."""
        from docker.errors import APIError, ImageNotFound

        try:
            return self.client.images.get(reference).id, False
        except ImageNotFound:
            pass
        try:
            return self.client.images.pull(reference).id, True
        except APIError as error:
            raise DockerError(f"pull of {reference} failed: {_apierror(error)}") from None

    def remove_image(self, reference: str) -> None:
        from docker.errors import ImageNotFound

        with contextlib.suppress(ImageNotFound):
            self.client.images.remove(reference, force=True)

    # --- containers ---------------------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        """Start a hardened container (read-only root, /tmp in memory, no capabilities); its ID.

        No restart policy yet: a container that exits while it is tested must stay exited, with its
        exit code, rather than restart. `keep_running` sets one once it is accepted."""
        from docker.errors import APIError

        try:
            container = self.client.containers.run(
                spec.image, name=spec.name, detach=True, environment=spec.environment, labels=spec.labels,
                network=spec.network,
                ports=None if spec.network else {f"{spec.port}/tcp": (spec.publish_host, None)},
                read_only=True, tmpfs={"/tmp": "rw,size=64m"},
                cap_drop=["ALL"], security_opt=["no-new-privileges"],
            )
        except APIError as error:
            raise DockerError(f"starting container {spec.name} from {spec.image} failed: {_apierror(error)}") from None
        return container.id

    def keep_running(self, container_id: str) -> None:
        """Restart the container after a crash or an engine restart, unless it is stopped on purpose."""
        from docker.errors import APIError

        try:
            self._get(container_id).update(restart_policy={"Name": "unless-stopped"})
        except APIError as error:
            raise DockerError(f"setting the restart policy of {container_id[:12]} failed: {_apierror(error)}") from None

    def _get(self, container_id: str):
        return self.client.containers.get(container_id)

    def upstream(self, container_id: str, spec: ContainerSpec) -> tuple[str, int] | None:
        """Where the proxy (and the smoke test) reach the container; None while it has no address."""
        attrs = self._get(container_id).attrs["NetworkSettings"]
        if spec.network:
            address = ((attrs.get("Networks") or {}).get(spec.network) or {}).get("IPAddress")
            return (address, spec.port) if address else None
        bindings = (attrs.get("Ports") or {}).get(f"{spec.port}/tcp") or []
        return (spec.publish_host, int(bindings[0]["HostPort"])) if bindings else None

    def crashed(self, container_id: str) -> str | None:
        """Why the container is not running (it exited), or None while it runs."""
        container = self._get(container_id)
        state = container.attrs["State"]
        if state.get("Status") in ("exited", "dead"):
            return f"container {container.name} {state['Status']} with exit code {state.get('ExitCode')}"
        return None

    def logs(self, container_id: str, lines: int = 40) -> str:
        from docker.errors import NotFound

        try:
            return self._get(container_id).logs(tail=lines).decode(errors="replace")
        except NotFound:
            return ""

    def running(self, labels: dict[str, str]) -> list[Running]:
        """Every container (running or not) carrying all of `labels`."""
        found = self.client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        return [running_from_labels(c.id, c.name, c.labels) for c in found]

    def retire(self, container_id: str, timeout_s: float) -> None:
        """SIGTERM (the server finishes in-flight requests), SIGKILL after `timeout_s`, then remove."""
        from docker.errors import NotFound

        try:
            container = self._get(container_id)
            container.stop(timeout=int(timeout_s))
            container.remove()
        except NotFound:
            pass

    def remove(self, container_id: str) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self._get(container_id).remove(force=True)
