"""The serving API, on a model trained here and saved as an MLflow model directory."""

import asyncio
import json

import pytest
import yaml
from fastapi.testclient import TestClient
from gitops_ml.core.dataset import target_array, to_matrix
from gitops_ml.io.model_dir import save_model_dir

from {{ cookiecutter.package }} import data, serve
from {{ cookiecutter.package }}.features import build_pipeline
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, contract):
    frame = data.simulate_for(contract, 800, seed=5, drift=0.0)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    pipeline = build_pipeline(contract, params)
    pipeline.fit(to_matrix(frame, contract.data.features), target_array(frame, contract))
    path = tmp_path_factory.mktemp("model") / "model"
    save_model_dir(pipeline, path, contract)
    (path / "registry.json").write_text(json.dumps({"name": "{{ cookiecutter.project }}", "version": "7"}))
    return path


@pytest.fixture(scope="module")
def client(model_dir):
    app = serve.create_app(str(model_dir), max_rows=50)
    with TestClient(app) as test_client:
        for _ in range(100):  # the warm-up runs in a thread; wait until ready
            if test_client.get("/ready").status_code == 200:
                break
            __import__("time").sleep(0.05)
        yield test_client


@pytest.fixture
def row(contract):
    frame = data.simulate_for(contract, 1, seed=9, drift=0.0)
    record = frame[contract.data.features].iloc[0].to_dict()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}


def test_health_ready_metadata(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    meta = client.get("/metadata").json()
    assert meta["name"] == "{{ cookiecutter.project }}" and meta["version"] == "7"
    assert meta["image_digest"] is None  # not deployed: no IMAGE_DIGEST
    assert [f["name"] for f in meta["features"]]


def test_metadata_reports_the_image_digest_the_deploy_passes(model_dir, monkeypatch):
    digest = "sha256:" + "ab" * 32
    monkeypatch.setenv("IMAGE_DIGEST", digest)
    with TestClient(serve.create_app(str(model_dir))) as deployed:
        assert deployed.get("/metadata").json()["image_digest"] == digest


def test_predict_one_row_and_a_batch(client, row):
    one = client.post("/predict", json=row)
    assert one.status_code == 200, one.text
    assert len(one.json()["predictions"]) == 1
    many = client.post("/predict", json={"rows": [row] * 5})
    assert many.status_code == 200
    assert many.json()["predictions"] == one.json()["predictions"] * 5
    assert many.json()["model_version"] == "7"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"age": "old"}, "age"),
        ({"contract": "lifetime"}, "contract"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_rows_get_422_naming_the_field(client, row, change, field):
    response = client.post("/predict", json={**row, **change})
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


def test_missing_field_and_malformed_json(client, row):
    incomplete = {k: v for k, v in row.items() if k != "age"}
    response = client.post("/predict", json=incomplete)
    assert response.status_code == 422 and "age" in response.text
    bad = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "invalid JSON" in bad.text


def test_batches_over_the_row_limit_get_422_and_huge_bodies_413(client, row):
    response = client.post("/predict", json={"rows": [row] * 51})
    assert response.status_code == 422
    assert "the maximum is 50" in response.text
    huge = b'{"rows": [' + b"0," * 150_000 + b"0]}"
    response = client.post("/predict", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "the limit is" in response.text


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_infinity_are_refused(client, row, literal):
    body = json.dumps({**row, "monthly_charges": 1.5}).replace("1.5", literal.decode()).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_integers_beyond_json_precision_are_refused(client, row):
    response = client.post("/predict", json={**row, "age": 2**60})
    assert response.status_code == 422 and "age" in response.text


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"text"', b"null", b'{"rows": []}', b'{"rows": 5}'])
def test_bodies_of_the_wrong_shape_get_422(client, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_openapi_documents_every_feature(client, contract):
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["schemas"]["Row"]["properties"]) == set(contract.data.features)


def test_concurrent_requests_share_one_prediction_and_each_gets_its_own_rows(model_dir, contract):
    predictor = serve.Predictor(serve.load(str(model_dir)))
    frame = data.simulate_for(contract, 5, seed=11, drift=0.0)
    requests = [to_matrix(frame.iloc[[i]], contract.data.features).tolist() for i in range(5)]
    requests.append(to_matrix(frame, contract.data.features).tolist())  # and one batch of five
    expected = [predictor.predict_values(rows) for rows in requests]
    calls = []
    predict_values = predictor.predict_values
    predictor.predict_values = lambda rows: calls.append(len(rows)) or predict_values(rows)

    async def arrive_together():
        batcher = serve.MicroBatcher(predictor)
        return await asyncio.gather(*(batcher.submit(rows) for rows in requests))

    results = asyncio.run(arrive_together())
    assert calls == [10]  # one estimator call for six requests
    for got, want in zip(results, expected, strict=True):
        assert got["predictions"] == want["predictions"]
        if "probabilities" in want:  # classifiers; BLAS may round batches a last digit apart
            assert got["probabilities"] == pytest.approx(want["probabilities"], rel=1e-12)
