"""Shared fixtures: a real MLflow server, baked projects, free ports, waiting for services."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# `github_fake`: a local fake of GitHub's REST API; `fake_kubectl`: a recorded kubectl on PATH.
pytest_plugins = ["tests.github_fake", "tests.kube"]

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = ROOT / "actions"
VENV_BIN = Path(sys.executable).parent


# The logs of the MLflow servers this session started: a failing test's report ends with their tail,
# so a 500 in CI says what the server raised.
SERVER_LOGS: dict[str, Path] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for name, path in SERVER_LOGS.items():
            if name in item.fixturenames and path.exists():
                tail = path.read_text(errors="replace").splitlines()[-60:]
                report.sections.append((f"{name} log (last 60 lines)", "\n".join(tail)))
    return report


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as error:  # noqa: BLE001 - still starting
            last = error
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s: {last}")


def wait_for_port(address: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until host:port accepts connections (for servers whose every URL needs credentials)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {address} (process exit code {process.poll()})") from None
            time.sleep(0.1)


def post(url: str, body: object) -> tuple[int, dict]:
    """POST JSON; the status and the decoded answer, error statuses included."""
    import urllib.error

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and every process it started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _restore_mlflow_uris(saved: dict[str, str | None]) -> None:
    """`mlflow.set_tracking_uri` is process-global and also writes MLFLOW_TRACKING_URI into os.environ,
    which every later subprocess inherits: without this, a test talks to an earlier test's (stopped)
    server. Forget the global and put the variables back as they were."""
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def mlflow_pointed_at(url: str | None = None, **variables: str):
    """Point MLflow (tracking and registry) at `url` for a block, with extra variables such as
    credentials; afterwards the variables and MLflow's process globals are as before. Session and
    module fixtures use it: the autouse fixtures below snapshot only after those have run, so a URI
    they leave behind (`Registry` calls `mlflow.set_registry_uri`, which writes MLFLOW_REGISTRY_URI)
    would send later registrations to their server."""
    saved = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_REGISTRY_URI", raising=False)
        for name, value in (({"MLFLOW_TRACKING_URI": url} if url else {}) | variables).items():
            env.setenv(name, value)
        try:
            yield env
        finally:
            _restore_mlflow_uris(saved)


@pytest.fixture(autouse=True, scope="module")
def _mlflow_uris_per_module():
    saved = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
    yield
    _restore_mlflow_uris(saved)


@pytest.fixture(autouse=True)
def _mlflow_uris_per_test():
    saved = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
    yield
    _restore_mlflow_uris(saved)


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a project from the template (hooks included) and return its folder."""
    from cookiecutter.main import cookiecutter

    env_remote = output_dir / "dvc-remotes"
    os.environ["GITOPS_ML_DVC_REMOTE_ROOT"] = str(env_remote)
    path = cookiecutter(str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=answers)
    return Path(path)


def mlflow_server_env() -> dict:
    """The server's environment: without MLflow 3's job runner (seven more processes we never use)."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking + registry + artifact server on 127.0.0.1, for the whole session."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")  # closed in the finally below
    SERVER_LOGS["mlflow_server"] = root / "server.log"
    process = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own group: all of it stops at the end
        env=mlflow_server_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=180, process=process)  # a busy 2-core machine can take minutes
        yield url
    finally:
        stop_group(process)
        log.close()


class AuthServer:
    """A basic-auth MLflow server: an admin, and the two identities of a model repository.

    `candidate` (what pull-request jobs hold) and `production` (what the merge job holds) are real
    MLflow users; `grant_model(name)` gives them the per-model permissions the generated README asks
    for, through MLflow's auth REST API: candidate MANAGE on `<name>-candidates` and READ on `<name>`;
    production MANAGE on `<name>` and READ on `<name>-candidates`.
    """

    IDENTITIES = ("candidate", "production")

    def __init__(self, url: str, admin_password: str):
        self.url = url
        self.admin = ("admin", admin_password)
        self.passwords = {name: f"{name}-pw-{os.urandom(6).hex()}" for name in self.IDENTITIES}

    def api(self, method: str, path: str, **kwargs) -> dict:
        import httpx

        response = httpx.request(method, f"{self.url}{path}", auth=self.admin, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else {}

    def create_users(self) -> None:
        for name, password in self.passwords.items():
            self.api("POST", "/api/2.0/mlflow/users/create", json={"username": name, "password": password})

    def grant(self, username: str, model: str, permission: str) -> None:
        self.api("POST", "/api/3.0/mlflow/users/permissions/grant",
                 json={"username": username, "resource_type": "registered_model", "resource_id": model,
                       "permission": permission})

    def grant_model(self, model: str, candidates: str | None = None) -> None:
        """Create both registered models (as the admin: the README's set-up) and grant the two identities."""
        candidates = candidates or f"{model}-candidates"
        for name in (model, candidates):
            self.api("POST", "/api/2.0/mlflow/registered-models/create", json={"name": name})
        self.grant("candidate", candidates, "MANAGE")
        self.grant("candidate", model, "READ")
        self.grant("production", model, "MANAGE")
        self.grant("production", candidates, "READ")

    def env(self, identity: str) -> dict[str, str]:
        """The MLflow client environment of `identity` (admin, candidate or production)."""
        username, password = self.admin if identity == "admin" else (identity, self.passwords[identity])
        return {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": username,
                "MLFLOW_TRACKING_PASSWORD": password}


@pytest.fixture(scope="session")
def mlflow_auth_server(tmp_path_factory):
    """A real MLflow server with its own auth app (`--app-name basic-auth`), users created."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    port = free_port()
    admin_password = f"admin-pw-{os.urandom(6).hex()}"
    config = root / "basic_auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'auth.db'}\n"
                      "admin_username = admin\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                      # as the generated README advises: each password hash is checked once, not per request
                      "auth_cache_ttl_seconds = 300\n")
    env = {**mlflow_server_env(), "MLFLOW_AUTH_CONFIG_PATH": str(config),
           "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password, "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex()}
    log = (root / "server.log").open("w")
    SERVER_LOGS["mlflow_auth_server"] = root / "server.log"
    process = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--app-name", "basic-auth",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=180, process=process)
        server = AuthServer(url, admin_password)
        server.create_users()
        yield server
    finally:
        stop_group(process)
        log.close()


@pytest.fixture
def tracking(mlflow_server, monkeypatch):
    """Point MLflow clients in this test at the shared server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return mlflow_server


BASE_IMAGE = "gitops-ml/python-base:bookworm"


@pytest.fixture(scope="session")
def docker_client():
    """The local Docker engine (started by scripts/setup.sh --test); fails loudly when absent."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"no Docker engine answers ({error}); run `scripts/setup.sh --test` (or `make test`) first")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The stand-in for python:*-slim (no registry can be pulled from here), built once and cached."""
    subprocess.run([str(ROOT / "scripts" / "build-base-image.sh"), BASE_IMAGE], check=True)
    return BASE_IMAGE


def run(args, cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode} in {cwd}\n"
                    f"--- stdout ---\n{result.stdout[-5000:]}\n--- stderr ---\n{result.stderr[-5000:]}")
    return result


# --- a generated project, installed and trained once per session ------------------------------

GENERATED = "gen-model"  # the session's generated project: its own registered model on the shared server
ROW = {"age": 40, "tenure_months": 12, "monthly_charges": 70.5, "support_calls": 2,
       "contract": "month-to-month", "payment_method": "card", "region": "north", "gender": "female"}


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    """One virtualenv shared by the generated projects of the session (each installs itself into it)."""
    return tmp_path_factory.mktemp("venv") / ".venv"


def project_env(venv: Path, tracking_uri: str | None = None) -> dict:
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("GITHUB_ACTIONS", None)
    env.pop("MLFLOW_REGISTRY_URI", None)  # the registry is the tracking server
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def setup_project(tmp_path_factory, venv: Path, **answers) -> Path:
    project = bake(tmp_path_factory.mktemp("generated"), **answers)
    run(["make", "setup", f"VENV={venv}", f"GITOPS_ML={ACTIONS}"], cwd=project)
    return project


@pytest.fixture(scope="session")
def classification(tmp_path_factory, venv) -> Path:
    return setup_project(tmp_path_factory, venv, project=GENERATED, task="classification")


@pytest.fixture(scope="session")
def trained(classification, venv, mlflow_server) -> dict:
    """`make train` against the real MLflow server: dvc repro, then register a version."""
    run(["make", "train", f"VENV={venv}"], cwd=classification, env=project_env(venv, mlflow_server))
    return json.loads((classification / "reports" / "train.json").read_text())


# --- shipping: a real OCI registry and the real reverse proxy -----------------------------------

PROXY_CONFIG = ROOT / "{{cookiecutter.project}}" / "deploy" / "docker" / "haproxy.cfg"  # what generated repos ship


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def need(command: str) -> str:
    found = shutil.which(command)
    if not found:
        pytest.fail(f"`{command}` is not installed; run `scripts/setup.sh --test` (or `make test`) first")
    return found


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory) -> str:
    """A real OCI registry (CNCF distribution, Debian's `docker-registry`) on 127.0.0.1; its host:port."""
    root = tmp_path_factory.mktemp("oci-registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(json.dumps({"version": 0.1, "log": {"level": "warn"}, "http": {"addr": address},
                                  "storage": {"filesystem": {"rootdirectory": str(root / "data")},
                                              "delete": {"enabled": True}}}))
    with (root / "registry.log").open("w") as log:
        process = subprocess.Popen([need("docker-registry"), "serve", str(config)], stdout=log, stderr=log)
        try:
            wait_for_http(f"http://{address}/v2/", timeout=30, process=process)
            yield address
        finally:
            stop(process)


class Proxy:
    """A running HAProxy: `url` is the entry point clients use, `admin` its runtime API (contract form)."""

    def __init__(self, process: subprocess.Popen, url: str, admin: str, log: Path):
        self.process, self.url, self.admin, self.log = process, url, admin, log


def start_haproxy(folder: Path, config: Path = PROXY_CONFIG, admin: str = "tcp") -> Proxy:
    """Start the real HAProxy binary with a config file (default: the one generated repos ship), on
    free ports, its admin API over TCP or a unix socket; `stop(proxy.process)` ends it."""
    port = free_port()
    if admin == "unix":
        socket_path = folder / f"admin-{port}.sock"
        admin_env, admin_url = str(socket_path), f"unix://{socket_path}"
    else:
        admin_port = free_port()
        admin_env, admin_url = f"ipv4@127.0.0.1:{admin_port}", f"tcp://127.0.0.1:{admin_port}"
    env = {**os.environ, "PROXY_BIND": f"127.0.0.1:{port}", "PROXY_ADMIN": admin_env}
    log_path = folder / f"haproxy-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([need("haproxy"), "-db", "-f", str(config)], env=env, stdout=log, stderr=log)
    proxy = Proxy(process, f"http://127.0.0.1:{port}", admin_url, log_path)
    deadline = time.monotonic() + 10
    while not _admin_answers(admin_url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"haproxy did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return proxy


@pytest.fixture
def haproxy(tmp_path):
    """`start_haproxy` for one test: every proxy it started is stopped at the end."""
    started: list[Proxy] = []

    def start(config: Path = PROXY_CONFIG, admin: str = "tcp") -> Proxy:
        started.append(start_haproxy(tmp_path, config, admin))
        return started[-1]

    yield start
    for proxy in started:
        stop(proxy.process)


def _admin_answers(admin: str) -> bool:
    family, address = ((socket.AF_UNIX, admin.removeprefix("unix://")) if admin.startswith("unix://")
                       else (socket.AF_INET, ("127.0.0.1", int(admin.rsplit(":", 1)[1]))))
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(address)
            sock.sendall(b"show info\n")
            return bool(sock.recv(100))
    except OSError:
        return False


SHIP_MODEL = "ship-model"  # the shipping tests' registered model and image name


def import_file(name: str, path: Path):
    """A generated repo's module, loaded by file path (its package is not installed here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ship_project(tmp_path_factory, mlflow_server, oci_registry) -> Path:
    """A generated classification repo whose images go to the test registry, with two registered
    versions that predict differently: 1 (the template's parameters) and 2 (much stronger regularisation)."""
    import mlflow
    import yaml
    from gitops_ml.core.contract import load_contract
    from gitops_ml.core.dataset import read_typed, target_array, to_matrix
    from gitops_ml.io.model_dir import log_model
    from gitops_ml.io.registry import Registry
    from sklearn.model_selection import train_test_split

    root = bake(tmp_path_factory.mktemp("ship"), project=SHIP_MODEL, task="classification")
    contract_path = root / "gitops-ml.yaml"
    raw = yaml.safe_load(contract_path.read_text())
    raw["registry"]["image"] = f"{oci_registry}/{SHIP_MODEL}"
    contract_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    contract = load_contract(contract_path)
    frame = read_typed(root / contract.data.train, contract)
    train, test = train_test_split(frame, test_size=contract.data.test_size, random_state=contract.data.split_seed)
    (root / "data/split").mkdir(parents=True)
    train.to_csv(root / "data/split/train.csv", index=False)
    test.to_csv(root / "data/split/test.csv", index=False)

    features = import_file("ship_features", root / "src" / SHIP_MODEL.replace("-", "_") / "features.py")
    params = yaml.safe_load((root / "params.yaml").read_text())["train"]
    with mlflow_pointed_at(mlflow_server):
        registry = Registry.for_contract(contract)
        mlflow.set_experiment(SHIP_MODEL)
        for version, hyper in (("1", params), ("2", {**params, "logistic_regression": {"C": 0.002, "max_iter": 500}})):
            model = features.build_pipeline(contract, hyper)
            model.fit(to_matrix(train, contract.data.features), target_array(train, contract))
            with mlflow.start_run(run_name=f"v{version}"):
                info = log_model(model, contract, SHIP_MODEL)
            assert str(info.registered_model_version) == version
            registry.set_tags(version, {"git_sha": version * 40, "data_hash": f"md5-{version}"})
    return root


@pytest.fixture(scope="session")
def shipped(ship_project, mlflow_server, base_image, docker_client) -> dict:
    """`gitops-ml build-image` run for versions 1 and 2: each one's build/image.json and golden.json."""
    from gitops_ml.cli import main

    built = {}
    with mlflow_pointed_at(mlflow_server) as env:
        for name in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_SHA", "REGISTRY_USERNAME",
                     "REGISTRY_PASSWORD"):
            env.delenv(name, raising=False)
        env.setenv("GITHUB_SERVER_URL", "https://github.com")  # the source label's repository URL
        env.setenv("GITHUB_REPOSITORY", f"acme/{SHIP_MODEL}")
        for version in ("1", "2"):
            code = main(["build-image", "--contract", str(ship_project / "gitops-ml.yaml"), "--version", version,
                         "--base-image", base_image])
            assert code == 0, f"build-image --version {version} exited {code}"
            build = ship_project / "build"
            built[version] = {"image": json.loads((build / "image.json").read_text()),
                              "golden": json.loads((build / "golden.json").read_text())}
            shutil.copy(build / "golden.json", build / f"golden-{version}.json")
    yield built
    for found in docker_client.containers.list(all=True, filters={"label": f"io.github.gitops-ml.model={SHIP_MODEL}"}):
        found.remove(force=True)
    for image in docker_client.images.list(name=f"*/{SHIP_MODEL}"):
        docker_client.images.remove(image.id, force=True)
