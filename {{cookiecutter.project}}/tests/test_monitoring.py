"""Monitoring: request ids, the prediction log (and its failures), /feedback and /metrics."""

import json
import logging
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gitops_ml.io.model_dir import feature_schema

from {{ cookiecutter.package }} import monitoring, serve
from {{ cookiecutter.package }}.fastpath import probe_rows
from tests.feature_shapes import as_json
from tests.test_serve import train_and_save, wait_ready

FILE_NAME = re.compile(r"(predictions|feedback)-\d{8}T\d{6}-\d+-\d+\.jsonl")
SAMPLE = re.compile(r'^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$')


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, contract):
    return train_and_save(contract, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture
def rows(contract):
    return [as_json(r, contract) for r in probe_rows(feature_schema(contract), rows=6, seed=3).tolist()]


@pytest.fixture
def serve_with(model_dir, monkeypatch, tmp_path):
    """Start the app with these environment settings (PREDICTION_LOG_DIR defaults to a temporary folder)."""
    clients = []

    def start(**env: str) -> TestClient:
        monkeypatch.setenv("PREDICTION_LOG_DIR", str(tmp_path / "predictions"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client = TestClient(serve.create_app(str(model_dir)))
        clients.append(client.__enter__())
        return wait_ready(client)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def records(folder: Path, kind: str) -> list[dict]:
    files = sorted(folder.glob(f"{kind}-*"))
    assert all(FILE_NAME.fullmatch(f.name) for f in files), [f.name for f in files]  # no .tmp left behind
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def samples(client: TestClient) -> dict[tuple[str, str], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, f"not Prometheus text format: {line!r}"
            found[(match["name"], match["labels"])] = float(match["value"])
    return found


def value(found: dict, name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include these; 0 when there is none."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    matching = [v for (n, ls), v in found.items() if n == name and all(w in ls.split(",") for w in want)]
    assert len(matching) <= 1, (name, labels, matching)
    return matching[0] if matching else 0.0


def test_every_response_carries_a_request_id_and_an_incoming_one_is_kept(serve_with, rows):
    client = serve_with()
    for method, path, body in (("post", "/predict", rows[0]), ("post", "/predict", {"bad": 1}),
                               ("get", "/health", None), ("get", "/ready", None), ("get", "/metadata", None),
                               ("get", "/metrics", None), ("get", "/no-such-page", None)):
        response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]), path
        kept = getattr(client, method)(path, headers={"X-Request-ID": "trace-42.a:b"},
                                       **({"json": body} if body is not None else {}))
        assert kept.headers["x-request-id"] == "trace-42.a:b", path
    unsafe = client.post("/predict", json=rows[0], headers={"X-Request-ID": "bad id\r\nwith spaces"})
    assert unsafe.status_code == 200 and unsafe.headers["x-request-id"] != "bad id\r\nwith spaces"
    assert unsafe.json()["id"] == unsafe.headers["x-request-id"]


def test_every_prediction_is_logged_with_its_inputs_outputs_and_latency(serve_with, rows, contract, tmp_path):
    client = serve_with()
    one = client.post("/predict", json=rows[0], headers={"X-Request-ID": "req-1"}).json()
    many = client.post("/predict", json={"rows": rows[1:4]}).json()
    client.app.state.serving.log.flush()
    logged = {r["id"]: r for r in records(tmp_path / "predictions", "predictions")}
    assert set(logged) == {"req-1", *many["ids"]}
    meta = client.get("/metadata").json()
    for i, (request_id, row) in enumerate([("req-1", rows[0]), *zip(many["ids"], rows[1:4], strict=True)]):
        record = logged[request_id]
        response, index = (one, 0) if i == 0 else (many, i - 1)
        outputs = ["prediction", "probabilities"] if "probabilities" in response else ["prediction"]
        assert list(record) == ["id", "ts", "model", "model_version", "inputs", *outputs, "latency_ms"]
        assert record["model"] == meta["name"] and record["model_version"] == "7"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
        assert record["inputs"] == {name: row.get(name) for name in contract.data.features}
        assert record["prediction"] == response["predictions"][index]
        if "probabilities" in response:
            assert record["probabilities"] == response["probabilities"][index]
        else:
            assert "probabilities" not in record
        assert 0 < record["latency_ms"] < 10_000


def test_records_reach_files_in_order_and_a_file_holds_at_most_file_records(serve_with, rows, tmp_path):
    client = serve_with(PREDICTION_LOG_FILE_RECORDS="4", PREDICTION_LOG_FLUSH_SECONDS="3600")
    ids = [client.post("/predict", json=row).json()["id"] for row in rows + rows[:4]]  # 10 predictions
    client.app.state.serving.log.flush()
    files = sorted((tmp_path / "predictions").glob("predictions-*.jsonl"), key=lambda f: int(f.stem.rsplit("-")[-1]))
    lines = [f.read_text().splitlines() for f in files]
    assert [len(found) for found in lines] == [4, 4, 2]
    assert [json.loads(line)["id"] for found in lines for line in found] == ids


def test_timestamps_are_utc_with_milliseconds_whatever_order_they_come_in():
    second = 1764687845  # 2025-12-02T15:04:05Z
    for ts, text in [(second + 0.1239, "2025-12-02T15:04:05.123Z"), (second + 0.1231, "2025-12-02T15:04:05.123Z"),
                     (second + 0.9999, "2025-12-02T15:04:05.999Z"), (second + 1.0, "2025-12-02T15:04:06.000Z"),
                     (second - 0.5, "2025-12-02T15:04:04.500Z"), (second + 0.1239, "2025-12-02T15:04:05.123Z")]:
        assert monitoring.utc_iso(ts) == text


def test_feedback_is_logged_and_joins_its_prediction_by_id(serve_with, rows, tmp_path):
    client = serve_with()
    prediction = client.post("/predict", json=rows[0]).json()
    classes = client.get("/metadata").json()["classes"]
    label = classes[-1] if classes else 123.5
    response = client.post("/feedback", json={"id": prediction["id"], "label": label})
    assert response.status_code == 202, response.text
    bad = client.post("/feedback", json={"id": prediction["id"], "label": "not-a-label", "extra": 1})
    assert bad.status_code == 422 and "label" in bad.text and "extra" in bad.text
    other_type = 0 if isinstance(label, bool) else True  # JSON's false is not the class 0, nor a number
    assert client.post("/feedback", json={"id": prediction["id"], "label": other_type}).status_code == 422
    client.app.state.serving.log.flush()
    predictions = {r["id"]: r for r in records(tmp_path / "predictions", "predictions")}
    feedback = records(tmp_path / "predictions", "feedback")
    assert [f["label"] for f in feedback] == [label]
    joined = predictions[feedback[0]["id"]]
    assert joined["prediction"] == prediction["predictions"][0]


def test_a_full_queue_drops_and_counts_records_and_never_fails_a_prediction(serve_with, rows, tmp_path):
    client = serve_with(PREDICTION_LOG_QUEUE="3", PREDICTION_LOG_FLUSH_SECONDS="3600")
    for row in rows:
        assert client.post("/predict", json=row).status_code == 200
    found = samples(client)
    assert value(found, "gitops_ml_log_records_dropped_total", stream="predictions") == len(rows) - 3
    client.app.state.serving.log.flush()
    assert len(records(tmp_path / "predictions", "predictions")) == 3
    assert value(samples(client), "gitops_ml_log_records_written_total", stream="predictions") == 3


def test_a_batch_that_does_not_fit_is_queued_as_far_as_there_is_room(serve_with, rows, tmp_path):
    client = serve_with(PREDICTION_LOG_QUEUE="5", PREDICTION_LOG_FLUSH_SECONDS="3600")
    first = client.post("/predict", json={"rows": rows[:3]}).json()
    second = client.post("/predict", json={"rows": rows[3:6] + rows[:1]}).json()
    assert len(second["predictions"]) == 4  # the prediction is whole; only its log records are dropped
    assert value(samples(client), "gitops_ml_log_records_dropped_total", stream="predictions") == 2
    client.app.state.serving.log.flush()
    assert [r["id"] for r in records(tmp_path / "predictions", "predictions")] == first["ids"] + second["ids"][:2]


def test_a_slow_sink_never_delays_a_prediction(serve_with, rows, monkeypatch):
    write = monitoring.RecordQueue._write

    def slow(self, lines, count):
        time.sleep(1.0)
        write(self, lines, count)

    monkeypatch.setattr(monitoring.RecordQueue, "_write", slow)
    client = serve_with(PREDICTION_LOG_FLUSH_SECONDS="0.01", PREDICTION_LOG_QUEUE="5")
    took = []
    for _ in range(4):
        for row in rows:
            started = time.perf_counter()
            assert client.post("/predict", json=row).status_code == 200
            took.append(time.perf_counter() - started)
    assert max(took) < 0.5, f"a prediction waited {max(took):.2f} s for the sink"
    assert value(samples(client), "gitops_ml_log_records_dropped_total", stream="predictions") > 0


def test_an_unwritable_sink_drops_and_counts_records_logged_once(serve_with, rows, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    client = serve_with(PREDICTION_LOG_DIR=str(blocker / "predictions"), PREDICTION_LOG_FILE_RECORDS="1")
    with caplog.at_level(logging.WARNING, logger=monitoring.__name__):
        for row in rows:
            assert client.post("/predict", json=row).status_code == 200
        client.app.state.serving.log.flush()
    found = samples(client)
    assert value(found, "gitops_ml_log_records_dropped_total", stream="predictions") == len(rows)
    assert value(found, "gitops_ml_log_records_written_total", stream="predictions") == 0
    assert len([r for r in caplog.records if "cannot write" in r.message]) == 1


def test_the_log_can_be_switched_off(serve_with, rows, tmp_path):
    client = serve_with(PREDICTION_LOG_DIR="off")
    assert client.post("/predict", json=rows[0]).status_code == 200
    assert client.app.state.serving.log is None
    classes = client.get("/metadata").json()["classes"]
    refused = client.post("/feedback", json={"id": "x", "label": classes[0] if classes else 1.0})
    assert refused.status_code == 503 and "PREDICTION_LOG_DIR=off" in refused.text
    assert not (tmp_path / "predictions").exists()


def test_metrics_expose_durations_statuses_predictions_log_counts_and_the_model_version(serve_with, rows, contract):
    client = serve_with()
    answers = [client.post("/predict", json=row).json() for row in rows]
    batch = client.post("/predict", json={"rows": rows[:2]}).json()
    client.post("/predict", json={"unexpected": 1})
    client.get("/health")
    found = samples(client)
    base = {"model": client.get("/metadata").json()["name"], "version": "7"}
    assert value(found, "gitops_ml_model_info", **base) == 1
    assert value(found, "gitops_ml_requests_total", endpoint="/predict", status="200", **base) == len(rows) + 1
    assert value(found, "gitops_ml_requests_total", endpoint="/predict", status="422", **base) == 1
    assert value(found, "gitops_ml_requests_total", endpoint="/health", status="200", **base) == 1
    name = "gitops_ml_request_duration_seconds"
    assert value(found, f"{name}_count", endpoint="/predict", **base) == len(rows) + 2
    assert value(found, f"{name}_bucket", endpoint="/predict", le="+Inf", **base) == len(rows) + 2
    assert 0 < value(found, f"{name}_sum", endpoint="/predict", **base) < 60
    buckets = [v for (n, ls), v in found.items() if n == f"{name}_bucket" and 'endpoint="/predict"' in ls]
    assert buckets == sorted(buckets)  # cumulative
    predicted = [answer["predictions"][0] for answer in answers] + batch["predictions"]
    if contract.model.task == "classification":
        for label in set(predicted):
            count = value(found, "gitops_ml_predictions_total", **{"class": str(label)}, **base)
            assert count == predicted.count(label), label
    else:
        assert value(found, "gitops_ml_prediction_value_count", **base) == len(predicted)
    for kind in ("written", "dropped"):
        assert (f"gitops_ml_log_records_{kind}_total", f'model="{base["model"]}",version="7",stream="predictions"') \
            in found
