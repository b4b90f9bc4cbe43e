"""The Docker edge against the real engine and real OCI registries (one open, one with htpasswd auth)."""

from __future__ import annotations

import subprocess
import uuid
import warnings

import pytest
from gitops_ml.io.docker import BuildFailed, DockerError, Engine

from tests.conftest import free_port, need, stop, wait_for_port

pytestmark = pytest.mark.docker
PREFIX = "ship-io"


@pytest.fixture
def engine(docker_client):
    yield Engine(docker_client)
    for image in docker_client.images.list():
        for tag in image.tags:
            if f"/{PREFIX}" in tag or tag.startswith(PREFIX):
                docker_client.images.remove(tag, force=True)


def context(tmp_path, base: str, *steps: str):
    (tmp_path / "Dockerfile").write_text("\n".join([f"FROM {base}", *steps]) + "\n")
    (tmp_path / "payload").write_text("a few bytes\n")
    return tmp_path


def tiny_image(engine, tmp_path, reference: str, labels: dict | None = None) -> str:
    """An image of one small file (FROM scratch): quick to push, nothing to pull."""
    return engine.build(context(tmp_path, "scratch", "COPY payload /payload"), reference, {}, labels or {},
                        echo=lambda _: None)


def test_build_streams_its_log_and_a_failure_shows_the_failing_steps_log(engine, tmp_path, base_image):
    lines: list[str] = []
    nonce = uuid.uuid4().hex  # no build cache: every step runs and logs
    path = context(tmp_path, base_image, f"RUN echo step-one {nonce}", "RUN echo compiling the model server && exit 3")
    with pytest.raises(BuildFailed) as failure:
        engine.build(path, f"{PREFIX}:broken", {}, {}, echo=lines.append)
    message = str(failure.value)
    assert message.startswith("docker build failed at `Step 3/3 : RUN echo compiling the model server && exit 3`")
    assert "returned a non-zero code: 3" in message
    assert "--- that step's log ---" in message and "compiling the model server" in message.split("---")[-1]
    assert "step-one" not in message.split("--- that step's log ---")[1]  # only the failing step's lines
    assert f"step-one {nonce}" in lines  # the whole log streamed as it built


def test_push_answers_the_digest_and_the_image_pulls_back_by_digest(engine, tmp_path, oci_registry):
    repository = f"{oci_registry}/{PREFIX}"
    image_id = tiny_image(engine, tmp_path, f"{repository}:v1", {"org.opencontainers.image.version": "1"})
    engine.tag(image_id, repository, "sha-abcdef0")
    digest = engine.push(repository, "v1", echo=lambda _: None)
    assert digest.startswith("sha256:") and len(digest) == 71
    assert engine.push(repository, "sha-abcdef0", echo=lambda _: None) == digest  # one image, one digest

    for tag in ("v1", "sha-abcdef0"):
        engine.client.images.remove(f"{repository}:{tag}")
    engine.remove_image(f"{repository}@{digest}")
    pulled_id, pulled = engine.ensure(f"{repository}@{digest}")
    assert pulled and pulled_id == image_id
    assert engine.client.images.get(pulled_id).labels["org.opencontainers.image.version"] == "1"
    assert engine.ensure(f"{repository}@{digest}") == (image_id, False)  # present now: no second pull
    engine.remove_image(f"{repository}@{digest}")


def test_pulling_a_digest_the_registry_does_not_have_fails_clearly(engine, oci_registry):
    reference = f"{oci_registry}/{PREFIX}@sha256:{'0' * 64}"
    with pytest.raises(DockerError, match=f"pull of {reference} failed: .*manifest unknown"):
        engine.ensure(reference)


@pytest.fixture
def private_registry(tmp_path):
    """A registry that needs a user and password (htpasswd, bcrypt)."""
    crypt = pytest.importorskip("crypt")  # Python <= 3.12; bcrypt through libxcrypt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hashed = crypt.crypt("s3cret-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    (tmp_path / "htpasswd").write_text(f"ci:{hashed}\n")
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "config.yml"
    config.write_text(f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}
http: {{addr: {address}}}
auth: {{htpasswd: {{realm: ci, path: {tmp_path / 'htpasswd'}}}}}
""")
    process = subprocess.Popen([need("docker-registry"), "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_port(address, process)
    yield address
    stop(process)


def test_a_registry_with_credentials_refuses_anonymous_and_wrong_logins(engine, private_registry, tmp_path):
    repository = f"{private_registry}/{PREFIX}"
    tiny_image(engine, tmp_path, f"{repository}:v1")
    with pytest.raises(DockerError, match="no basic auth credentials. If the registry needs credentials, set "
                                          "REGISTRY_USERNAME and REGISTRY_PASSWORD"):
        engine.push(repository, "v1", echo=lambda _: None)
    with pytest.raises(DockerError) as wrong:
        engine.login(private_registry, "ci", "not-the-password")
    assert f"login to {private_registry} as ci was refused" in str(wrong.value)
    assert "not-the-password" not in str(wrong.value)
    engine.login(private_registry, "ci", "s3cret-pw")
    assert engine.push(repository, "v1", echo=lambda _: None).startswith("sha256:")
