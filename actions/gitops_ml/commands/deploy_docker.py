"""The `docker` deploy target: blue/green on one Docker engine, behind HAProxy.

    inspect  the proxy says which slot is live; the engine lists this environment's containers
    pull     the image by digest (when the engine does not have it yet)
    start    the new container in the idle slot, IMAGE_DIGEST in its environment (no restart
             policy until it passes: a crash while tested stays a crash, with its exit code)
    ready    poll its /ready until 200 (bounded by deploy.smoke_timeout_s; stops early if it exits)
    smoke    /health, /ready, /metadata (model, version, digest), /predict on the golden rows
    switch   restart policy unless-stopped; point the idle slot at it, enable it, drain the live
             slot until no request is in
             flight (bounded by deploy.drain_timeout_s), then put the live slot in maintenance
    verify   the environment URL now answers with the new digest
    retire   SIGTERM the old container (it finishes what it serves), then remove it

Any failure up to `verify` undoes what was done: the old slot is enabled again, the new slot put
back in maintenance, the new container removed (its last log lines kept for the report). The old
container is only retired once the new one serves through the proxy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitops_ml.commands.build_image import registry_login
from gitops_ml.core import deploy as core
from gitops_ml.core.contract import Contract
from gitops_ml.core.image import ImageRef
from gitops_ml.core.smoke import Golden, problems
from gitops_ml.errors import GitopsMLError
from gitops_ml.io.docker import ContainerSpec, Engine
from gitops_ml.io.endpoint import Endpoint
from gitops_ml.io.proxy import HAProxy

LOG_LINES = 40
POLL_S = 0.1
SLOT_UP_S = 10.0  # how long the proxy may take to report the new slot serving
VERIFY_S = 10.0  # how long the environment URL may take to answer with the new digest


class Rollout:
    """One deploy in progress: what has been done so far, so that a failure undoes exactly that."""

    def __init__(self, contract: Contract, environment: str, ref: ImageRef, golden: Golden, engine: Engine,
                 proxy: HAProxy, echo: Callable[[str], None]):
        self.settings = contract.deploy
        self.env = contract.deploy.environments[environment]
        self.backend = self.env.proxy.backend
        self.model = contract.registry.model_name
        self.environment, self.ref, self.golden = environment, ref, golden
        self.engine, self.proxy, self.echo = engine, proxy, echo
        self.result = core.DeployResult("failure", environment, golden.version, str(ref), environment_url=self.env.url)
        self.plan: core.Plan | None = None
        self.new_id: str | None = None
        self.enabled: str | None = None  # the slot this deploy enabled
        self.disabled: str | None = None  # the live slot this deploy drained

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        self.result.step = name
        try:
            yield
        except core.DeployFailed:
            raise
        except GitopsMLError as error:  # the engine or the proxy refused: this step failed
            raise core.DeployFailed(name, str(error)) from None
        finally:
            self.result.timings_s[name] = round(time.monotonic() - started, 3)

    def run(self) -> core.DeployResult:
        self.result.started_at = round(time.time(), 3)
        try:
            self._deploy()
        except Exception as error:  # noqa: BLE001 - whatever broke, what was done is undone before reporting
            failure = error if isinstance(error, core.DeployFailed) else core.DeployFailed(
                self.result.step or "deploy", f"unexpected {type(error).__name__}: {error}")
            self.result.step, self.result.reason = failure.step, core.short_reason(failure.reason)
            self._undo()
            return self.result
        self.result.status, self.result.step = "success", None
        self._retire()
        return self.result

    def _deploy(self) -> None:
        with self.step("inspect"):
            slots = self.proxy.slots(self.backend)
            running = self.engine.running(core.selector(self.model, self.environment))
            self.plan = core.plan(slots, running, self.env.proxy.slots)
        live = self.plan.live
        self.echo(f"proxy backend {self.backend}: live slot {live or 'none (first deploy)'}; deploying into "
                  f"{self.plan.slot}")
        with self.step("pull"):
            registry_login(self.engine, self.ref.repository)
            _, pulled = self.engine.ensure(str(self.ref))
            self.echo(f"{'pulled' if pulled else 'found'} {self.ref}")
        slot = self.plan.slot
        spec = ContainerSpec(
            name=core.container_name(self.model, self.environment, slot), image=str(self.ref),
            environment={"IMAGE_DIGEST": self.ref.digest},
            labels=core.container_labels(self.model, self.environment, slot, self.golden.version, str(self.ref)),
            port=self.settings.port, network=self.env.network, publish_host=self.env.publish_host)
        with self.step("start"):
            for stale in self.plan.stale:
                self.echo(f"removing {stale.name}: left in the idle slot {self.plan.slot} by an earlier deploy")
                self.engine.remove(stale.id)
            self.new_id = self.engine.start(spec)
            self.result.slot, self.result.container = self.plan.slot, spec.name
        with self.step("ready"):
            host, port = self._address(spec)
            url = f"http://{host}:{port}"
            with Endpoint(url, direct=True) as endpoint:
                answer = endpoint.wait_ready(self.settings.ready_path, self.settings.smoke_timeout_s,
                                             gone=lambda: self.engine.crashed(self.new_id))
                if answer.status != 200:
                    raise core.DeployFailed("ready", f"{spec.name} at {url} was not ready within "
                                                f"{self.settings.smoke_timeout_s:g} s: {answer.describe()}")
                self.echo(f"{spec.name} is ready at {url}")
        with self.step("smoke"), Endpoint(url, direct=True) as endpoint:
            found = problems(endpoint.observe(self.golden, self.settings.health_path, self.settings.ready_path),
                             self.golden, self.ref.digest)
            if found:
                raise core.DeployFailed("smoke", "; ".join(found))
            self.echo(f"smoke test passed: {len(self.golden.rows)} golden rows predicted as version "
                      f"{self.golden.version} does offline")
        with self.step("switch"):
            self._switch(host, port)
        with self.step("verify"):
            self._verify()

    def _address(self, spec: ContainerSpec) -> tuple[str, int]:
        """The new container's upstream address, once the engine has given it one."""
        deadline = time.monotonic() + self.settings.smoke_timeout_s
        while (address := self.engine.upstream(self.new_id, spec)) is None:
            crashed = self.engine.crashed(self.new_id)
            if crashed or time.monotonic() > deadline:
                raise core.DeployFailed("ready", crashed or f"{spec.name} got no address within "
                                                       f"{self.settings.smoke_timeout_s:g} s")
            time.sleep(POLL_S)
        return address

    def _switch(self, host: str, port: int) -> None:
        slot, live, backend = self.plan.slot, self.plan.live, self.backend
        self.engine.keep_running(self.new_id)  # accepted: from now on a crash or an engine restart restarts it
        self.proxy.point(backend, slot, host, port)
        self.enabled = slot  # before the command: if its answer is lost, the undo still covers it
        self.proxy.set_state(backend, slot, "ready")
        deadline = time.monotonic() + SLOT_UP_S
        while not (state := self.proxy.slot(backend, slot)).serving:
            if time.monotonic() > deadline:
                raise core.DeployFailed("switch", f"the proxy reports {backend}/{slot} as {state.status} at "
                                             f"{state.address}, not serving (its health check fails)")
            time.sleep(POLL_S)
        self.echo(f"proxy: {backend}/{slot} -> {host}:{port} is serving")
        if live is None:
            return
        self.disabled = live
        self.proxy.set_state(backend, live, "drain")
        started = time.monotonic()
        while not core.drained(sessions := self.proxy.slot(backend, live).sessions, time.monotonic() - started,
                          self.settings.drain_timeout_s):
            time.sleep(POLL_S)
        if sessions:
            self.echo(f"drain timeout ({self.settings.drain_timeout_s:g} s) with {sessions} request(s) in flight on "
                      f"{live}; its container finishes them on SIGTERM")
        self.proxy.set_state(backend, live, "maint")
        self.echo(f"proxy: {backend}/{live} drained in {time.monotonic() - started:.2f} s, now in maintenance")

    def _verify(self) -> None:
        deadline, seen = time.monotonic() + VERIFY_S, None
        with Endpoint(self.env.url) as endpoint:
            while time.monotonic() < deadline:
                seen = endpoint.get("/metadata")
                if seen.status == 200 and isinstance(seen.body, dict) and \
                        seen.body.get("image_digest") == self.ref.digest:
                    self.echo(f"{self.env.url} serves {self.ref.digest}")
                    return
                time.sleep(POLL_S)
        raise core.DeployFailed("verify", f"{self.env.url}/metadata does not report the new image {self.ref.digest} "
                                          f"after the switch (last answer: {seen.describe() if seen else 'none'}); "
                                          f"is this URL served by backend {self.backend} of the proxy at "
                                          f"{self.env.proxy.admin}?")

    def _undo(self) -> None:
        """Put back what this deploy changed, best effort, recording each action (and what failed)."""
        undo, backend = self.result.undo, self.backend
        actions: list[tuple[str, Callable[[], None]]] = []
        if self.disabled:
            actions.append((f"re-enabled {backend}/{self.disabled}",
                            lambda: self.proxy.set_state(backend, self.disabled, "ready")))
        if self.enabled:
            actions.append((f"put {backend}/{self.enabled} back in maintenance",
                            lambda: self.proxy.set_state(backend, self.enabled, "maint")))
        if self.new_id:
            try:
                self.result.log_tail = self.engine.logs(self.new_id, LOG_LINES)
            except Exception as error:  # noqa: BLE001 - the logs are a courtesy; the undo must go on
                self.result.log_tail = f"(could not read its logs: {error})"
            actions.append((f"removed the new container {self.result.container}",
                            lambda: self.engine.remove(self.new_id)))
        for done, action in actions:
            try:
                action()
                undo.append(done)
            except Exception as error:  # noqa: BLE001 - keep undoing the rest; say what could not be undone
                undo.append(f"could not undo ({done}): {error}")

    def _retire(self) -> None:
        with self.step("retire"):
            for old in self.plan.retire:
                try:
                    self.engine.retire(old.id, self.settings.stop_timeout_s)
                    self.result.replaced.append(old.name)
                    self.echo(f"retired {old.name} (version {old.version})")
                except Exception as error:  # noqa: BLE001 - the new version serves; an old container is left
                    self.echo(f"warning: could not retire {old.name}: {error}; remove it by hand")
        self.result.step = None


def deploy(contract: Contract, environment: str, ref: ImageRef, golden: Golden, engine: Engine | None = None,
           proxy: HAProxy | None = None, echo: Callable[[str], None] = print) -> core.DeployResult:
    """Deploy `ref` to a docker environment; the result says whether it serves, and if not, why."""
    settings = contract.deploy.environments[environment]
    try:
        engine = engine or Engine.connect()
        proxy = proxy or HAProxy(settings.proxy.admin)
    except GitopsMLError as error:
        return core.DeployResult("failure", environment, golden.version, str(ref), environment_url=settings.url,
                            step="connect", reason=str(error))
    return Rollout(contract, environment, ref, golden, engine, proxy, echo).run()
