"""The reverse proxy of a `docker` environment, driven through HAProxy's runtime API.

The proxy is long-lived and configured once (deploy/docker/haproxy.cfg in a generated repo): one
backend with two server slots. A deploy never reloads it; it only sends runtime commands:
`set server B/S addr IP port P`, `set server B/S state ready|drain|maint`, and reads `show stat`.
Each command is one connection in HAProxy's non-interactive mode (the answer ends at EOF).

The runtime API has no authentication: reach it on a loopback address or a unix socket only.
"""

from __future__ import annotations

import csv
import io
import socket
from typing import Literal
from urllib.parse import urlsplit

from gitops_ml.core.deploy import Slot
from gitops_ml.errors import GitopsMLError

State = Literal["ready", "drain", "maint"]


class ProxyError(GitopsMLError):
    """The proxy's runtime API is unreachable or refused a command; the message names both."""


class HAProxy:
    def __init__(self, admin: str, timeout_s: float = 5.0):
        """`admin`: tcp://HOST:PORT or unix:///PATH, as in the contract's deploy.environments.*.proxy.admin."""
        self.admin = admin
        self.timeout_s = timeout_s
        parts = urlsplit(admin)
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            self.family, self.address = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET, \
                (parts.hostname, parts.port)
        elif parts.scheme == "unix" and parts.path:
            self.family, self.address = socket.AF_UNIX, parts.path
        else:
            raise ProxyError(f"proxy admin address {admin!r}: expected tcp://HOST:PORT or unix:///PATH")

    def command(self, line: str) -> str:
        """Send one command and return HAProxy's answer (stripped)."""
        try:
            with socket.socket(self.family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(self.address)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as error:
            raise ProxyError(f"the proxy's runtime API at {self.admin} did not answer `{line}`: {error}. Is the "
                             "proxy running with `stats socket ... level admin` at that address?") from None
        return b"".join(chunks).decode(errors="replace").strip()

    def _checked(self, line: str, success: tuple[str, ...] = ()) -> str:
        """Run a command whose answer is empty, or starts with one of `success`, when it worked."""
        answer = self.command(line)
        if answer and not answer.startswith(success):
            raise ProxyError(f"the proxy at {self.admin} refused `{line}`: {answer.splitlines()[0]}")
        return answer

    def stats(self, backend: str) -> list[dict[str, str]]:
        """`show stat` rows of `backend`'s servers."""
        text = self.command("show stat")
        if not text.startswith("# pxname"):
            raise ProxyError(f"the proxy at {self.admin} answered `show stat` with: {text[:200]!r}")
        rows = list(csv.DictReader(io.StringIO(text.removeprefix("# "))))
        if not any(row["pxname"] == backend and row["svname"] == "BACKEND" for row in rows):
            names = sorted({row["pxname"] for row in rows if row["svname"] == "BACKEND"})
            raise ProxyError(f"the proxy at {self.admin} has no backend {backend!r} (it has {names}); "
                             "check deploy.environments.*.proxy.backend against its configuration")
        return [row for row in rows if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")]

    def slots(self, backend: str) -> list[Slot]:
        found = []
        for row in self.stats(backend):
            status = row["status"]
            admin: State = "maint" if status.startswith("MAINT") else "drain" if status.startswith("DRAIN") else "ready"
            found.append(Slot(row["svname"], admin, status, row["addr"], _int(row["scur"]) + _int(row["qcur"])))
        return found

    def slot(self, backend: str, server: str) -> Slot:
        for found in self.slots(backend):
            if found.name == server:
                return found
        raise ProxyError(f"the proxy at {self.admin} has no server {backend}/{server}")

    def point(self, backend: str, server: str, host: str, port: int) -> None:
        """Point a slot at host:port (an IP address: the runtime API does not resolve names)."""
        self._checked(f"set server {backend}/{server} addr {host} port {port}",
                      success=("IP changed", "no need to change", "port changed"))

    def set_state(self, backend: str, server: str, state: State) -> None:
        self._checked(f"set server {backend}/{server} state {state}")


def _int(value: str) -> int:
    return int(value) if value.strip().isdigit() else 0
