"""`gitops-ml deploy` (docker target) and `gitops-ml rollback --environment`, for real.

Real: the Docker engine, images pulled from a real OCI registry by digest, the HAProxy binary
running the config file generated repos ship, the MLflow server. Every failure injected below
(an image that is never ready, one that exits, one whose model lies about its version, a proxy
whose API disappears, a URL the proxy does not serve) must end with the old version still serving
through the proxy, the new container gone, the champion alias where it was, and exit 1 with the
reason (and the new container's last log lines). Every deploy and rollback is also recorded as a
GitHub deployment in the local fake of GitHub's REST API (the one part that is not real).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from functools import partial

import httpx
import pytest
import yaml
from gitops_ml.cli import main
from gitops_ml.commands import bake
from gitops_ml.commands.deploy import redeploy
from gitops_ml.commands.deploy_docker import deploy as deploy_docker
from gitops_ml.core.contract import load_contract
from gitops_ml.io.docker import Engine
from gitops_ml.io.proxy import HAProxy
from gitops_ml.io.registry import CHAMPION, PREVIOUS, Registry

from benchmarks import loadgen
from tests.conftest import SHIP_MODEL, mlflow_pointed_at

pytestmark = [pytest.mark.docker, pytest.mark.slow]
LABEL = "io.github.gitops-ml"


class Ship:
    """The shipping project driven like the workflows drive it: `gitops-ml` with a contract."""

    def __init__(self, project, shipped, docker_client):
        self.project, self.shipped, self.docker = project, shipped, docker_client
        self.contract_path = project / "gitops-ml.yaml"
        self.registry = Registry.for_contract(load_contract(self.contract_path))

    def environment(self, name, proxy, url=None, network=None, **settings) -> str:
        """Declare environment `name` behind `proxy` (tight timeouts, so failures are quick)."""
        raw = yaml.safe_load(self.contract_path.read_text())
        raw["deploy"].update({"smoke_timeout_s": 60, "drain_timeout_s": 10, "stop_timeout_s": 10, "smoke_rows": 20,
                              **settings})
        environment = {"url": url or proxy.url, "proxy": {"admin": proxy.admin}}
        if network:
            environment["network"] = network
        raw["deploy"]["environments"] = {name: environment}
        self.contract_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return name

    def gitops(self, *args: str) -> int:
        return main([args[0], "--contract", str(self.contract_path), *args[1:]])

    def deploy(self, environment, version, *more) -> int:
        return self.gitops("deploy", "--environment", environment, "--version", version,
                           "--golden", str(self.project / f"build/golden-{version}.json"), *more)

    def result(self, environment) -> dict:
        return json.loads((self.project / "reports" / f"deploy-{environment}.json").read_text())

    def image(self, version) -> str:
        return self.shipped[version]["image"]["image"]

    def digest(self, version) -> str:
        return self.shipped[version]["image"]["digest"]

    def containers(self, environment) -> list[str]:
        found = self.docker.containers.list(all=True, filters={"label": f"{LABEL}.environment={environment}"})
        return sorted(c.name for c in found if c.labels.get(f"{LABEL}.model") == SHIP_MODEL)

    def deployments(self, environment) -> list[tuple[str, str, list[str]]]:
        """GitHub deployments to `environment`, oldest first: (version, task, states oldest first)."""
        found = [d for d in self.github.deployments if d["environment"] == environment]
        return [(d["payload"]["version"], d["task"], [s["state"] for s in self.github.deployment_statuses[d["id"]]])
                for d in found]

    def last_status(self, environment) -> dict:
        deployment = [d for d in self.github.deployments if d["environment"] == environment][-1]
        return self.github.deployment_statuses[deployment["id"]][-1]

    def aliases(self) -> tuple[str | None, str | None]:
        champion, previous = self.registry.by_alias(CHAMPION), self.registry.by_alias(PREVIOUS)
        return champion and champion.version, previous and previous.version


def serving(url: str) -> dict:
    """What the environment's stable URL serves right now (through the proxy)."""
    response = httpx.get(f"{url}/metadata", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def predict(url: str, rows: list[dict]) -> dict:
    response = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def ship(ship_project, shipped, tracking, monkeypatch, docker_client, github_fake):
    for name in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", github_fake.token)  # deploys record GitHub deployments in the fake
    monkeypatch.setenv("GITHUB_REPOSITORY", f"acme/{SHIP_MODEL}")
    helper = Ship(ship_project, shipped, docker_client)
    helper.github = github_fake
    helper.registry.set_alias(CHAMPION, "1")
    contract = helper.contract_path.read_text()
    yield helper
    helper.contract_path.write_text(contract)  # the next test (and module) sees the contract as it was
    for found in docker_client.containers.list(all=True, filters={"label": f"{LABEL}.model={SHIP_MODEL}"}):
        found.remove(force=True)


def assert_old_version_still_serves(ship, environment, proxy, version="1"):
    assert serving(proxy.url)["image_digest"] == ship.digest(version)
    assert ship.containers(environment) == [f"{SHIP_MODEL}-{environment}-blue"]  # the new container is gone
    assert ship.aliases()[0] == "1"  # the champion alias did not move


def test_deploys_behind_the_proxy_then_replaces_the_old_version(ship, haproxy, capsys):
    proxy = haproxy()
    env = ship.environment("prod-a", proxy)
    rows = ship.shipped["1"]["golden"]["rows"]

    assert ship.deploy(env, "1") == 0
    meta = serving(proxy.url)
    assert (meta["name"], meta["version"], meta["image_digest"]) == (SHIP_MODEL, "1", ship.digest("1"))
    assert predict(proxy.url, rows)["predictions"] == ship.shipped["1"]["golden"]["predictions"]
    assert ship.containers(env) == [f"{SHIP_MODEL}-prod-a-blue"]
    first = ship.result(env)
    assert (first["status"], first["slot"], first["environment_url"]) == ("success", "blue", proxy.url)
    assert first["image"] == ship.image("1")

    assert ship.deploy(env, "2") == 0
    assert serving(proxy.url)["image_digest"] == ship.digest("2")
    assert predict(proxy.url, rows)["probabilities"] == pytest.approx(ship.shipped["2"]["golden"]["probabilities"])
    assert ship.containers(env) == [f"{SHIP_MODEL}-prod-a-green"]  # blue was retired
    second = ship.result(env)
    assert (second["status"], second["slot"], second["replaced"]) == ("success", "green", [f"{SHIP_MODEL}-prod-a-blue"])
    assert set(second["timings_s"]) == {"inspect", "pull", "start", "ready", "smoke", "switch", "verify", "retire"}
    slots = {slot.name: slot for slot in HAProxy(proxy.admin).slots("model")}
    assert slots["blue"].admin == "maint" and slots["green"].serving
    assert ship.registry.get("2").tags[f"deploy.{env}.status"] == "success"
    assert ship.aliases()[0] == "1"  # deploying never moves an alias; promote does, after this
    # GitHub: each deploy is a deployment; the replaced one is inactive, the live one has the URL.
    assert ship.deployments(env) == [("1", "deploy", ["in_progress", "success", "inactive"]),
                                     ("2", "deploy", ["in_progress", "success"])]
    latest = ship.github.deployments[-1]
    assert (latest["sha"], latest["payload"]["image"]) == ("2" * 40, ship.image("2"))  # the version's commit
    assert ship.last_status(env)["environment_url"] == proxy.url
    assert "smoke test passed: 50 golden rows predicted as version 2 does offline" in capsys.readouterr().out


def test_an_image_absent_from_the_engine_is_pulled_by_digest(ship, haproxy, capsys):
    env = ship.environment("prod-pull", haproxy())
    Engine(ship.docker).remove_image(ship.image("1"))
    assert ship.deploy(env, "1") == 0
    assert f"pulled {ship.image('1')}" in capsys.readouterr().out


def test_containers_on_a_user_defined_network_are_reached_at_their_address_there(ship, haproxy, docker_client):
    network = docker_client.networks.create(f"ship-net-{os.getpid()}")
    try:
        proxy = haproxy()
        env = ship.environment("prod-net", proxy, network=network.name)
        assert ship.deploy(env, "1") == 0
        container = docker_client.containers.get(f"{SHIP_MODEL}-prod-net-blue")
        address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        assert HAProxy(proxy.admin).slot("model", "blue").address == f"{address}:8000"
        assert not any(container.attrs["NetworkSettings"]["Ports"].values())  # nothing published on the host
        assert serving(proxy.url)["version"] == "1"
    finally:
        for found in docker_client.containers.list(all=True, filters={"network": network.name}):
            found.remove(force=True)
        network.remove()


@pytest.fixture(scope="module")
def broken_images(shipped, ship_project, oci_registry, base_image, docker_client, tmp_path_factory, mlflow_server):
    """Images pushed by digest that must never replace a good one."""
    engine = Engine(docker_client)
    repository = f"{oci_registry}/{SHIP_MODEL}"
    good = shipped["2"]["image"]["image"]
    images = {}
    for name, step in (("never-ready", 'CMD ["python3", "-m", "http.server", "8000"]'),  # no /ready at all
                       ("exits", "ENV MODEL_URI=/opt/no-model")):  # the app cannot load a model and exits
        context = tmp_path_factory.mktemp(name)
        (context / "Dockerfile").write_text(f"FROM {good}\n{step}\n")
        engine.build(context, f"{repository}:{name}", {}, {}, echo=lambda _: None)
        images[name] = f"{repository}@{engine.push(repository, name, echo=lambda _: None)}"
    # A model that lies: version 1's model, labelled version 2 (so /metadata looks right).
    liar = tmp_path_factory.mktemp("liar") / "project"
    shutil.copytree(ship_project, liar, ignore=shutil.ignore_patterns(".git", ".dvc", "build", "reports"))
    with mlflow_pointed_at(mlflow_server):
        bake.run(load_contract(liar), bake.Inputs(model="1", out=liar / "build" / "model"))
    info = json.loads((liar / "build/model/registry.json").read_text())
    (liar / "build/model/registry.json").write_text(json.dumps({**info, "version": "2"}))
    engine.build(liar, f"{repository}:liar", {"BASE_IMAGE": base_image}, {}, echo=lambda _: None)
    images["liar"] = f"{repository}@{engine.push(repository, 'liar', echo=lambda _: None)}"
    return images


@pytest.mark.parametrize(("image", "step", "reason", "log"), [
    ("never-ready", "ready", "was not ready within 8 s: HTTP 404", "GET /ready HTTP/1.1\" 404"),
    ("exits", "ready", "exited with exit code 2", "cannot load the model"),
    ("liar", "smoke", "value(s) differ from version 2's offline predictions", None),
])
def test_a_bad_image_never_replaces_the_serving_one(ship, haproxy, broken_images, capsys, image, step, reason, log):
    proxy = haproxy()
    env = ship.environment(f"prod-{image}", proxy, smoke_timeout_s=8)
    assert ship.deploy(env, "1") == 0
    capsys.readouterr()

    assert ship.deploy(env, "2", "--image", broken_images[image]) == 1

    assert_old_version_still_serves(ship, env, proxy)
    result = ship.result(env)
    assert (result["status"], result["step"], result["image"]) == ("failure", step, broken_images[image])
    assert reason in result["reason"]
    assert f"removed the new container {SHIP_MODEL}-{env}-green" in result["undo"]
    assert HAProxy(proxy.admin).slot("model", "green").admin == "maint"
    assert ship.registry.get("2").tags[f"deploy.{env}.status"] == "failure"
    assert ship.deployments(env) == [("1", "deploy", ["in_progress", "success"]),  # still live, never inactive
                                     ("2", "deploy", ["in_progress", "failure"])]
    assert ship.last_status(env)["description"].startswith(f"failed at {step}: ")
    shown = capsys.readouterr()
    assert f"failed at {step}" in shown.err and reason in shown.err
    if log:
        assert log in result["log_tail"] and log in shown.out  # the new container's last log lines


class SocketGoneAtSwitch(HAProxy):
    """The real proxy, whose admin socket is deleted just before the switch (the API goes away)."""

    def point(self, backend, server, host, port):
        os.unlink(self.address)
        return super().point(backend, server, host, port)


def test_a_proxy_api_that_goes_away_at_the_switch_leaves_the_old_version_serving(ship, haproxy):
    proxy = haproxy(admin="unix")
    env = ship.environment("prod-api", proxy)
    assert ship.deploy(env, "1") == 0

    contract = load_contract(ship.contract_path)
    backend = partial(deploy_docker, proxy=SocketGoneAtSwitch(proxy.admin))
    result = redeploy(contract, "2", env, ship.project, golden=ship.project / "build/golden-2.json", backend=backend)

    assert (result.status, result.step) == ("failure", "switch")
    assert f"runtime API at {proxy.admin} did not answer `set server model/green addr" in result.reason
    assert_old_version_still_serves(ship, env, proxy)
    assert ship.registry.get("2").tags[f"deploy.{env}.status"] == "failure"


class EngineBreaksAfterStart(Engine):
    """The real engine, with a bug that surfaces once the new container runs (not a DockerError)."""

    def upstream(self, container_id, spec):
        raise RuntimeError("the engine answered something nobody expected")


def test_an_unexpected_error_is_undone_and_reported_not_raised(ship, haproxy, docker_client):
    proxy = haproxy()
    env = ship.environment("prod-bug", proxy)
    assert ship.deploy(env, "1") == 0

    contract = load_contract(ship.contract_path)
    backend = partial(deploy_docker, engine=EngineBreaksAfterStart(docker_client))
    result = redeploy(contract, "2", env, ship.project, golden=ship.project / "build/golden-2.json", backend=backend)

    assert (result.status, result.step) == ("failure", "ready")
    assert result.reason == "unexpected RuntimeError: the engine answered something nobody expected"
    assert result.undo == [f"removed the new container {SHIP_MODEL}-{env}-green"]
    assert_old_version_still_serves(ship, env, proxy)


def test_a_proxy_api_that_refuses_from_the_start_starts_nothing(ship, haproxy):
    proxy = haproxy()
    env = ship.environment("prod-refused", proxy)
    assert ship.deploy(env, "1") == 0
    closed = type("Closed", (), {"url": proxy.url, "admin": "tcp://127.0.0.1:9"})  # nothing listens on port 9
    ship.environment(env, closed)

    assert ship.deploy(env, "2") == 1
    result = ship.result(env)
    assert result["step"] == "inspect" and "tcp://127.0.0.1:9 did not answer `show stat`" in result["reason"]
    assert result["undo"] == [] and result["container"] is None
    assert_old_version_still_serves(ship, env, proxy)


def test_a_url_the_proxy_does_not_serve_fails_verification_and_switches_back(ship, haproxy):
    proxy, elsewhere = haproxy(), haproxy()
    env = ship.environment("prod-verify", proxy)
    assert ship.deploy(env, "1") == 0
    ship.environment(env, proxy, url=elsewhere.url)  # a misconfigured URL: another proxy, nothing behind it

    assert ship.deploy(env, "2") == 1
    result = ship.result(env)
    assert result["step"] == "verify" and f"{elsewhere.url}/metadata does not report the new image" in result["reason"]
    assert result["undo"] == ["re-enabled model/blue", "put model/green back in maintenance",
                              f"removed the new container {SHIP_MODEL}-{env}-green"]
    assert_old_version_still_serves(ship, env, proxy)
    assert HAProxy(proxy.admin).slot("model", "blue").serving


def test_no_request_fails_during_a_deploy_under_load(ship, haproxy):
    """32 keep-alive connections predict through the proxy while version 2 replaces version 1."""
    proxy = haproxy()
    env = ship.environment("prod-load", proxy)
    assert ship.deploy(env, "1") == 0
    body = json.dumps(ship.shipped["1"]["golden"]["rows"][0]).encode()
    stop, outcome = threading.Event(), {}

    def load():
        outcome.update(asyncio.run(loadgen.run(f"{proxy.url}/predict", body, connections=32, seconds=180,
                                               max_requests=10_000_000, stop=stop)))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(1.0)
        assert ship.deploy(env, "2") == 0
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert serving(proxy.url)["version"] == "2"
    assert outcome["requests"] > 100
    assert outcome["errors"] == 0, outcome["first_error"]


def test_rollback_redeploys_the_previous_champion_then_swaps_the_aliases(ship, haproxy):
    proxy = haproxy()
    env = ship.environment("prod-rollback", proxy)
    assert ship.deploy(env, "2") == 0
    ship.registry.set_alias(CHAMPION, "2")
    ship.registry.set_alias(PREVIOUS, "1")

    assert ship.gitops("rollback", "--environment", env, "--reason", "version 2 misbehaves") == 0
    assert serving(proxy.url)["image_digest"] == ship.digest("1")  # by the digest recorded on version 1
    assert ship.aliases() == ("1", "2")
    assert ship.containers(env) == [f"{SHIP_MODEL}-{env}-green"]
    # Reported as a failed deployment, never a success; version 2's deployment is no longer live.
    assert ship.deployments(env) == [("2", "deploy", ["in_progress", "success", "inactive"]),
                                     ("1", "deploy:rollback", ["in_progress", "failure"])]
    status = ship.last_status(env)
    assert status["description"] == "rolled back: version 2 replaced by version 1: version 2 misbehaves"
    assert status["environment_url"] == proxy.url


def test_a_rollback_whose_redeploy_fails_moves_no_alias(ship, haproxy):
    proxy = haproxy()
    env = ship.environment("prod-rollback-fails", proxy)
    assert ship.deploy(env, "2") == 0
    ship.registry.set_alias(CHAMPION, "2")
    ship.registry.set_alias(PREVIOUS, "1")
    ship.environment(env, proxy, smoke_rows=20, health_path="/nowhere")  # the smoke test cannot pass

    assert ship.gitops("rollback", "--environment", env, "--reason", "try") == 1
    assert ship.aliases() == ("2", "1")
    assert serving(proxy.url)["image_digest"] == ship.digest("2")
    assert ship.result(env)["step"] == "smoke"
    assert ship.deployments(env) == [("2", "deploy", ["in_progress", "success"]),
                                     ("1", "deploy:rollback", ["in_progress", "failure"])]
    assert "version 2 still serves" in ship.last_status(env)["description"]


def test_a_token_that_cannot_record_deployments_stops_the_deploy_before_anything_moves(ship, haproxy, capsys):
    proxy = haproxy()
    env = ship.environment("prod-no-permission", proxy)
    assert ship.deploy(env, "1") == 0
    ship.github.fail["create_deployment"] = 403
    capsys.readouterr()

    assert ship.deploy(env, "2") == 2
    assert "deployments: write" in capsys.readouterr().err
    assert ship.containers(env) == [f"{SHIP_MODEL}-{env}-blue"]  # nothing was started
    assert serving(proxy.url)["image_digest"] == ship.digest("1")
