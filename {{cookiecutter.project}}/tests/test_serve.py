"""The serving API, on a model trained here and saved as an MLflow model directory.

Everything is derived from gitops-ml.yaml (features, their types, the target and its classes), so
these tests pass on any dataset the contract describes.
"""

import asyncio
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from gitops_ml.core.contract import Column
from gitops_ml.io import model_dir as gitops_ml_model_dir
from gitops_ml.io.model_dir import feature_schema, save_model_dir

from {{ cookiecutter.package }} import serve
from {{ cookiecutter.package }}.fastpath import probe_rows
from {{ cookiecutter.package }}.features import build_pipeline
from tests.conftest import ROOT
from tests.feature_shapes import SHAPES, as_json, shape, training_data, with_columns


def train_and_save(contract, path: Path) -> Path:
    features, targets = training_data(contract, rows=600, seed=5)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    pipeline = build_pipeline(contract, params).fit(features, targets)
    save_model_dir(pipeline, path, contract)
    (path / "registry.json").write_text(json.dumps({"name": "{{ cookiecutter.project }}", "version": "7"}))
    return path


def wait_ready(client: TestClient) -> TestClient:
    for _ in range(200):  # the warm-up runs in a thread; wait until ready
        if client.get("/ready").status_code == 200:
            return client
        time.sleep(0.05)
    raise AssertionError("the app did not get ready")


def outputs(response) -> dict:
    """A prediction response without its ids (which differ from one request to the next)."""
    return {k: v for k, v in response.json().items() if k not in ("id", "ids")}


@pytest.fixture(scope="module", autouse=True)
def _prediction_log(tmp_path_factory):
    """The apps of these tests log their predictions to a temporary folder (tests/test_monitoring.py reads it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREDICTION_LOG_DIR", str(tmp_path_factory.mktemp("predictions")))
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, contract):
    return train_and_save(contract, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(serve.create_app(str(model_dir), max_rows=50)) as test_client:
        yield wait_ready(test_client)


@pytest.fixture
def row(contract):
    return as_json(probe_rows(feature_schema(contract), rows=3, seed=9)[1].tolist(), contract)


def first(contract, *types, nullable=None):
    """The first feature of one of these types (and nullability), or skip the test."""
    for name in contract.data.features:
        column = contract.data.columns[name]
        if column.type in types and (nullable is None or column.nullable == nullable):
            return name
    pytest.skip(f"the contract has no {'/'.join(types)} feature")


def test_health_ready_metadata(client, contract):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    meta = client.get("/metadata").json()
    assert meta["name"] == "{{ cookiecutter.project }}" and meta["version"] == "7"
    assert meta["image_digest"] is None  # not deployed: no IMAGE_DIGEST
    assert [f["name"] for f in meta["features"]] == contract.data.features


def test_metadata_reports_the_image_digest_the_deploy_passes(model_dir, monkeypatch):
    digest = "sha256:" + "ab" * 32
    monkeypatch.setenv("IMAGE_DIGEST", digest)
    with TestClient(serve.create_app(str(model_dir))) as deployed:
        assert deployed.get("/metadata").json()["image_digest"] == digest


def test_predict_one_row_and_a_batch(client, row, contract):
    one = client.post("/predict", json=row)
    assert one.status_code == 200, one.text
    assert len(one.json()["predictions"]) == 1
    many = client.post("/predict", json={"rows": [row] * 5})
    assert many.status_code == 200
    assert many.json()["predictions"] == one.json()["predictions"] * 5
    assert many.json()["model_version"] == "7"
    assert one.json()["ids"] == [one.json()["id"]] == [one.headers["x-request-id"]]
    assert many.json()["ids"] == [f"{many.json()['id']}-{i}" for i in range(5)]
    if contract.model.task == "classification":
        classes = client.get("/metadata").json()["classes"]
        assert one.json()["predictions"][0] in classes


def test_invalid_rows_get_422_naming_the_field(client, row, contract):
    number, category = first(contract, "int", "float"), first(contract, "category")
    for change, field in (({number: "old"}, number), ({category: "no-such-category"}, category),
                          ({"unexpected": 1}, "unexpected")):
        response = client.post("/predict", json={**row, **change})
        assert response.status_code == 422, change
        assert field in json.dumps(response.json()["detail"])


def test_missing_field_and_malformed_json(client, row, contract):
    required = first(contract, "int", "float", "bool", "category", nullable=False)
    response = client.post("/predict", json={k: v for k, v in row.items() if k != required})
    assert response.status_code == 422 and required in response.text
    bad = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "invalid JSON" in bad.text


def test_batches_over_the_row_limit_get_422_and_huge_bodies_413(client, row):
    response = client.post("/predict", json={"rows": [row] * 51})
    assert response.status_code == 422
    assert "the maximum is 50" in response.text
    huge = b'{"rows": [' + b"0," * 150_000 + b"0]}"
    response = client.post("/predict", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "the limit is" in response.text


def test_a_chunked_body_without_length_is_capped_by_the_bytes_read(client):
    chunks = (b" " * 65536 for _ in range(20))  # 1.3 MB, no Content-Length: Transfer-Encoding chunked
    response = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "the limit is" in response.text


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_infinity_are_refused(client, row, contract, literal):
    field = first(contract, "float", "int")
    body = json.dumps({**row, field: "<number>"}).replace('"<number>"', literal.decode()).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_integers_beyond_json_precision_are_refused(client, row, contract):
    field = first(contract, "int")
    response = client.post("/predict", json={**row, field: 2**60})
    assert response.status_code == 422 and field in response.text


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"text"', b"null", b'{"rows": []}', b'{"rows": 5}'])
def test_bodies_of_the_wrong_shape_get_422(client, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_openapi_documents_every_feature(client, contract):
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["schemas"]["Row"]["properties"]) == set(contract.data.features)


def test_categories_written_as_numbers_or_booleans_accept_json_numbers_and_booleans():
    Row = serve.row_model([
        {"name": "plan", "type": "category", "nullable": False, "categories": ["0", "1", "-2"]},
        {"name": "member", "type": "category", "nullable": True, "categories": ["True", "False"]},
    ])
    row = Row.model_validate({"plan": 0, "member": True})
    assert (row.plan, row.member) == ("0", "True")  # the text the pipeline was trained on
    assert Row.model_validate({"plan": "-2", "member": None}).plan == "-2"
    assert Row.model_validate({"plan": -2, "member": "False"}).member == "False"
    for bad in ({"plan": 3}, {"plan": True}, {"plan": 0.0}, {"plan": "00"}, {"plan": 0, "member": 1}):
        with pytest.raises(serve.ValidationError):
            Row.model_validate(bad)
    assert Row.model_json_schema()["properties"]["plan"]["enum"] == ["0", "1", "-2", 0, 1, -2]


# Every kind of feature, nullable or not, with categories that read as numbers and booleans.
EVERY_KIND = [
    {"name": "count", "type": "int", "nullable": False},
    {"name": "maybe_count", "type": "int", "nullable": True},
    {"name": "amount", "type": "float", "nullable": False},
    {"name": "maybe_amount", "type": "float", "nullable": True},
    {"name": "flag", "type": "bool", "nullable": False},
    {"name": "maybe_flag", "type": "bool", "nullable": True},
    {"name": "plan", "type": "category", "nullable": False, "categories": ["basic", "0", "1", "true"]},
    {"name": "maybe_plan", "type": "category", "nullable": True, "categories": ["a", "b"]},
]
SAFE = serve.JSON_SAFE_INT
ANY_VALUE = [0, 1, -7, SAFE, -SAFE, SAFE + 1, -SAFE - 1, 10**400, 2.0, 2.5, -0.0, 1e308, float("inf"), float("nan"),
             True, False, None, "", "0", "1", "true", "basic", "a", "b", "BASIC", "2.5", [], [1], {}, {"a": 1}]


def hostile_rows(features, rng, count):
    """Rows of JSON values: mostly of each field's own type (so most rows are valid), any value at all
    about one time in ten, fields left out or unknown ones added now and then, a non-object row rarely."""
    rows = []
    for _ in range(count):
        if rng.random() < 0.03:
            rows.append(ANY_VALUE[rng.integers(len(ANY_VALUE))])
            continue
        row = {}
        for feature in features:
            roll = rng.random()
            if roll < 0.03:
                continue  # left out
            if roll < 0.12:
                row[feature["name"]] = ANY_VALUE[rng.integers(len(ANY_VALUE))]
            elif feature["type"] == "category":
                row[feature["name"]] = feature["categories"][rng.integers(len(feature["categories"]))]
            else:
                row[feature["name"]] = {"int": int(rng.integers(-1000, 1000)), "float": float(rng.normal(0, 100)),
                                        "bool": bool(rng.integers(2))}[feature["type"]]
        if rng.random() < 0.03:
            row["unknown_field"] = 1
        rows.append(row)
    return rows


def same_values(got, want):
    """Equal value by value, of the same Python type, NaN equal to NaN."""
    return len(got) == len(want) and all(
        type(g) is type(w) and (g == w or g != g and w != w) for gr, wr in zip(got, want, strict=True)
        for g, w in zip(gr, wr, strict=True))


@pytest.mark.parametrize("name", ["every kind", *SHAPES])
def test_the_plain_reader_accepts_only_what_the_row_model_accepts_and_reads_the_same_values(contract, name):
    """The fast reader of plainly valid rows (serve.plain_reader) may leave any row to the row model,
    but what it accepts, the row model must accept, with the same values; and it must take the
    common case, or serving pays the row model's cost on every request."""
    features = EVERY_KIND if name == "every kind" else [serve._as_trained(f) for f in
                                                          feature_schema(shape(contract, name))]
    predictor = serve.Predictor(serve.LoadedModel(None, features, "classification", [0, 1]))
    rng = np.random.default_rng(20261207)
    read_plainly = valid = 0
    for _ in range(3000):
        rows = hostile_rows(features, rng, int(rng.integers(1, 4)))
        try:
            valid_rows = predictor.rows_adapter.validate_python(rows)
        except serve.ValidationError:
            want = None
            with pytest.raises(serve.ValidationError):  # what serving does: the 422 naming the field
                predictor.values(rows)
        else:
            valid += 1
            want = [[np.nan if (v := getattr(r, f["name"])) is None else v for f in features] for r in valid_rows]
            assert same_values(predictor.values(rows), want)
        got = predictor.read_plain(rows)
        if got is not None:
            read_plainly += 1
            assert want is not None, f"the plain reader accepted rows the row model refuses: {rows}"
            assert same_values(got, want), f"{rows}: plain reader {got}, row model {want}"
    assert valid > 300 and read_plainly > 0.8 * valid, (valid, read_plainly)
    requests = [{f["name"]: None if v != v else v for f, v in zip(features, row, strict=True)}
                for row in probe_rows(features, rows=50, seed=5).tolist()]
    assert predictor.read_plain(requests) is not None, "valid requests must not pay for the row model"


def test_a_model_whose_contract_declares_integer_categories_serves_json_integers(tmp_path, contract):
    """Defect: `Input should be a valid string (got 0)` for categories declared as integers."""
    features = {n: contract.data.columns[n] for n in contract.data.features}
    features["plan_code"] = Column(type="category", categories=("0", "1", "2"))
    variant = with_columns(contract, features)
    path = train_and_save(variant, tmp_path / "model")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())  # as a contract with `categories: [0, 1, 2]` saves it
    for feature in mlmodel["metadata"]["gitops_ml"]["features"]:
        if feature["name"] == "plan_code":
            feature["categories"] = [0, 1, 2]
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    row = as_json(probe_rows(feature_schema(variant), rows=2, seed=4)[1].tolist(), variant)
    with TestClient(serve.create_app(str(path))) as app:
        wait_ready(app)
        as_number = app.post("/predict", json={**row, "plan_code": 1})
        as_text = app.post("/predict", json={**row, "plan_code": "1"})
        assert as_number.status_code == 200, as_number.text
        assert outputs(as_number) == outputs(as_text)
        assert app.post("/predict", json={**row, "plan_code": 3}).status_code == 422


def test_concurrent_requests_share_one_prediction_and_each_gets_its_own_rows(model_dir, contract):
    predictor = serve.Predictor(serve.load(str(model_dir)))
    rows = probe_rows(feature_schema(contract), rows=5, seed=11).tolist()
    requests = [[r] for r in rows] + [rows]  # five one-row requests and one batch of five
    expected = [predictor.predict_values(r) for r in requests]
    calls = []
    predict_values = predictor.predict_values
    predictor.predict_values = lambda values: calls.append(len(values)) or predict_values(values)

    async def arrive_together():
        batcher = serve.MicroBatcher(predictor)
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    results = asyncio.run(arrive_together())
    assert calls == [10]  # one estimator call for six requests
    for got, want in zip(results, expected, strict=True):
        assert got["predictions"] == want["predictions"]
        if "probabilities" in want:  # classifiers (one number per row, or one list per row for multiclass);
            # BLAS may round batches a last digit apart
            assert np.allclose(got["probabilities"], want["probabilities"], rtol=1e-12, atol=0)


# --- a model file is data, never code ----------------------------------------------------------


def test_serving_trusts_the_same_types_as_gitops_ml():
    assert serve.TRUSTED_TYPES == gitops_ml_model_dir.TRUSTED_TYPES


def crafted_skops(path: Path, source: Path, target: Path) -> None:
    """A skops file that, when loaded with the types it declares, calls shutil.copyfile(source, target)."""
    import skops.io

    schema = json.loads(zipfile.ZipFile(__import__("io").BytesIO(skops.io.dumps((str(source), str(target))))).read(
        "schema.json"))
    call = {"__class__": "copyfile", "__module__": "shutil", "__loader__": "ConstructorFromReduceNode",
            "content": {k: v for k, v in schema.items() if k not in ("protocol", "_skops_version")}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps({**call, "protocol": schema["protocol"],
                                                    "_skops_version": schema["_skops_version"]}))


def hostile_model_dir(model_dir: Path, path: Path, flavor: dict) -> Path:
    path.mkdir()
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"] = {"sklearn_version": "1.5", **flavor}
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return path


def test_a_skops_file_declaring_a_function_that_writes_a_file_is_refused(model_dir, tmp_path):
    import skops.io

    source, written = tmp_path / "payload.txt", tmp_path / "written-by-the-model.txt"
    source.write_text("ran code")
    crafted = tmp_path / "crafted.skops"
    crafted_skops(crafted, source, written)
    declared = skops.io.get_untrusted_types(file=crafted)
    assert declared == ["shutil.copyfile"]
    skops.io.load(crafted, trusted=declared)  # loading it as the file asks to does run the function
    assert written.read_text() == "ran code"
    written.unlink()

    hostile = hostile_model_dir(model_dir, tmp_path / "hostile", {
        "serialization_format": "skops", "pickled_model": "model.skops", "skops_trusted_types": declared})
    shutil.copy(crafted, hostile / "model.skops")
    with pytest.raises(serve.ModelLoadError, match=r"shutil\.copyfile.*does not load"):
        serve.load(str(hostile))
    assert not written.exists()


class _WritesAFile:
    def __init__(self, source, target):
        self.args = (str(source), str(target))

    def __reduce__(self):
        return shutil.copyfile, self.args


def test_a_pickled_model_is_refused_without_being_read(model_dir, tmp_path):
    source, written = tmp_path / "payload.txt", tmp_path / "written-by-the-model.txt"
    source.write_text("ran code")
    payload = pickle.dumps(_WritesAFile(source, written))
    pickle.loads(payload)  # unpickling it runs the function
    assert written.exists()
    written.unlink()
    for fmt in ("cloudpickle", "pickle"):
        hostile = hostile_model_dir(model_dir, tmp_path / fmt, {"serialization_format": fmt,
                                                                 "pickled_model": "model.pkl"})
        (hostile / "model.pkl").write_bytes(payload)
        with pytest.raises(serve.ModelLoadError, match=f"'{fmt}' is refused"):
            serve.load(str(hostile))
        assert not written.exists()


def test_a_model_file_outside_its_folder_is_refused(model_dir, tmp_path):
    hostile = hostile_model_dir(model_dir, tmp_path / "hostile", {
        "serialization_format": "skops", "pickled_model": f"../{model_dir.name}/model.skops"})
    shutil.copytree(model_dir, tmp_path / model_dir.name)
    with pytest.raises(serve.ModelLoadError, match="not inside the folder"):
        serve.load(str(hostile))


# --- a real server process ----------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The app in its own uvicorn process, as `make serve` and the image run it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "{{ cookiecutter.package }}.serve", "--model", str(model_dir),
                                "--port", str(port)], env={**os.environ, "SERVE_MAX_ROWS": "50"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in sock.recv(1024):
                    break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"the server did not get ready (exit code {process.poll()})")
    yield port, process
    process.terminate()
    process.wait(timeout=15)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_a_100_mb_chunked_body_gets_413_and_the_server_does_not_hold_it(server):
    port, process = server
    before = rss_mb(process.pid)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    sent = [0]

    def send():  # 100 chunks of 1 MB; the server may answer and close before the last one
        try:
            for _ in range(100):
                sock.sendall(chunk)
                sent[0] += 1
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    response = b""
    while b"\r\n\r\n" not in response:
        data = sock.recv(65536)
        assert data, "the server closed the connection without an answer"
        response += data
    sender.join(timeout=60)
    grown = rss_mb(process.pid) - before
    sock.close()
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert grown < 50, f"the server grew by {grown:.0f} MB"
    assert process.poll() is None
