"""The serving app: the natively loaded scikit-learn pipeline behind a thin ASGI layer and FastAPI.

    python -m {{ cookiecutter.package }}.serve --model models:/{{ cookiecutter.project }}@champion
    python -m {{ cookiecutter.package }}.serve --model /opt/model      # a baked MLflow model directory

Endpoints: POST /predict (one row, or {"rows": [...]}), POST /feedback (the true label of a
prediction id), GET /health, /ready, /metadata, /metrics (Prometheus), /docs, /openapi.json.
Every response carries X-Request-ID; every prediction is logged (monitoring.py).

Reading order: loading (`load`, `load_model`), the request model (`row_model`), prediction
(`Predictor`, `MicroBatcher`), the request path (`Serving.predict`, `ServingApp`), the documented
API (`add_predict`, `add_feedback`, `add_probes`), then `create_app`, which puts them together.

Why it is built this way (measurements in docs/serving.md of the gitops-ml repository):
- The request model is generated from the feature schema stored with the model, so a bad field
  gets a 422 that names it, and the OpenAPI schema documents every feature.
- The body is parsed with orjson and validated once; rows go straight into the arrays the
  pipeline takes (contract order): no per-request DataFrame, no MLflow pyfunc layer.
- The fitted preprocessor runs as its vectorised twin when that is provably equal (fastpath.py);
  anything going wrong with that twin falls back to the pipeline as is, logged once.
- The endpoint is `async`; requests arriving in the same event-loop turn share one estimator call
  (MicroBatcher). A sync endpoint would add a thread-pool hop per request.
- The model is loaded natively with skops (`load_model`), with a constant allowlist of types kept
  here, never the list the model file declares about itself; pickle and cloudpickle are refused.
  mlflow is imported only to resolve `models:/` URIs, so the serving image does not need it.
- The body is capped by the bytes actually read (chunked bodies declare no length): 413.
- /predict and /health are answered by `ServingApp`, a few lines of plain ASGI, without the
  framework's routing, request and response objects; FastAPI documents them and serves the rest.
- Logging a prediction is one append (a batch: one extend) to a bounded queue; a thread writes the files.
- After loading, `gc.freeze()` moves the model's objects out of the collector's reach, which
  removes 100+ ms collector pauses from the latency tail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import logging
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema, create_model

from {{ cookiecutter.package }}.compiled import load as load_compiled
from {{ cookiecutter.package }}.fastpath import compile_preprocessor, probe_rows
from {{ cookiecutter.package }}.monitoring import Metrics, PredictionLog

DEFAULT_MAX_ROWS = 1000
log = logging.getLogger(__name__)


def _whole_number(value: Any) -> Any:
    """JSON (and JSON Schema) count 6.0 as an integer; strict validation would refuse it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


PYTHON_TYPES: dict[str, Any] = {"int": Annotated[int, BeforeValidator(_whole_number)], "float": float, "bool": bool}
JSON_SAFE_INT = 2**53  # integers beyond this lose precision in JSON clients; refused with a 422


class ModelLoadError(RuntimeError):
    """The model source cannot be loaded; the message says which source and why."""


@dataclass
class LoadedModel:
    model: Any
    features: list[dict[str, Any]]
    task: str
    classes: list[Any] | None
    info: dict[str, Any] = field(default_factory=dict)


def _resolve(source: str) -> tuple[Path, dict[str, Any]]:
    """A local model directory for `source`, plus registry info (name, version) when known."""
    if source.startswith(("models:/", "runs:/")):
        try:
            import mlflow
            from mlflow import MlflowClient
        except ImportError:
            raise ModelLoadError(f"{source}: loading from the registry needs mlflow installed") from None
        info: dict[str, Any] = {"source": source}
        if source.startswith("models:/"):
            name, _, ref = source.removeprefix("models:/").partition("@")
            client = MlflowClient()
            if ref:
                version = client.get_model_version_by_alias(name, ref)
            else:
                name, _, number = name.partition("/")
                version = client.get_model_version(name, number)
            info.update(name=name, version=str(version.version), run_id=version.run_id)
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tempfile.mkdtemp())
        return Path(local), info
    path = Path(source)
    if not (path / "MLmodel").is_file():
        raise ModelLoadError(f"{source}: not an MLflow model directory (no MLmodel file)")
    registry = path / "registry.json"  # written when the model is baked into an image
    return path, json.loads(registry.read_text()) if registry.is_file() else {"source": source}


# Types skops does not trust by default that scikit-learn pipelines need: the fitted trees of random
# forests and gradient boosting, and numpy dtypes. The same constant as gitops-ml's TRUSTED_TYPES
# (gitops_ml/io/model_dir.py; a test checks they are equal). Never the list a model file declares
# about itself (MLmodel's skops_trusted_types): a model file is data, and must not decide what runs.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def load_native(path: Path, flavor: dict[str, Any], source: str) -> Any:
    """The fitted scikit-learn model from its skops file: allowlisted types only, never pickle."""
    if flavor.get("serialization_format") != "skops":
        raise ModelLoadError(
            f"{source}: serialization format '{flavor.get('serialization_format')}' is refused: pickle and "
            "cloudpickle run code when loaded. Re-log the model with the default 'skops' format (`gitops-ml train`)"
        )
    import skops.io

    file = (path / str(flavor.get("pickled_model", ""))).resolve()
    if not file.is_file() or not file.is_relative_to(path.resolve()):
        raise ModelLoadError(f"{source}: the model file {flavor.get('pickled_model')!r} is not inside the folder")
    unknown = sorted(set(skops.io.get_untrusted_types(file=file)) - set(TRUSTED_TYPES))
    if unknown:
        raise ModelLoadError(
            f"{source}: the model uses type(s) {unknown} that serving does not load (allowed beyond skops's "
            f"defaults: {list(TRUSTED_TYPES)}); a model file must not be able to run code. Use scikit-learn "
            "estimators, or add a type you trust to TRUSTED_TYPES here and in gitops-ml in a reviewed change"
        )
    return skops.io.load(file, trusted=list(TRUSTED_TYPES))


def load_model(path: Path, mlmodel: dict[str, Any], source: str) -> Any:
    """The model object serving predicts with. The one place that decides how a model is loaded."""
    # A compiled model (numpy arrays + JSON, verified equal to the pipeline when the image was baked)
    # serves without scikit-learn; without one (local development) the pipeline itself is served.
    compiled = load_compiled(path)
    if compiled is not None:
        return compiled
    flavor = (mlmodel.get("flavors") or {}).get("sklearn")
    if not flavor:
        raise ModelLoadError(f"{source}: not a scikit-learn MLflow model (flavors: {list(mlmodel.get('flavors', {}))})")
    return load_native(path, flavor, source)


def load(source: str) -> LoadedModel:
    path, info = _resolve(source)
    mlmodel = yaml.safe_load((path / "MLmodel").read_text()) or {}
    meta = (mlmodel.get("metadata") or {}).get("gitops_ml")
    if not meta:
        raise ModelLoadError(f"{source}: MLmodel has no metadata.gitops_ml block; train it with this repository")
    model = load_model(path, mlmodel, source)
    info = {**{k: v for k, v in meta.items() if k not in ("features", "classes")}, **info}
    return LoadedModel(model, [_as_trained(f) for f in meta["features"]], meta["task"], meta.get("classes"), info)


def _as_trained(feature: dict[str, Any]) -> dict[str, Any]:
    """The feature with its categories as the pipeline saw them in training: text, as CSV cells are read."""
    if feature["type"] != "category":
        return feature
    return {**feature, "categories": [c if isinstance(c, str) else _text(c) for c in feature["categories"]]}


def _text(value: Any) -> str:
    return str(value)  # as pandas writes ints and bools to CSV: 0, True


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def category_field(categories: list[str]) -> Any:
    """A field accepting exactly the declared categories, and JSON numbers or booleans for those that are
    numbers or booleans written as text ("0", "true"): each is mapped to the text the pipeline was trained on."""
    aliases: dict[tuple[type, Any], str] = {}
    for text in categories:
        if _INTEGER.fullmatch(text):
            aliases[(int, int(text))] = text
        elif text.lower() in ("true", "false"):
            aliases[(bool, text.lower() == "true")] = text

    def to_text(value: Any) -> Any:
        return aliases.get((type(value), value), value) if isinstance(value, int) else value

    accepted = [*categories, *(value for _, value in aliases)]
    return Annotated[Literal[tuple(categories)], BeforeValidator(to_text), WithJsonSchema({"enum": accepted})]


def row_model(features: list[dict[str, Any]]):
    """A pydantic model of one row: strict types, allowed categories, no NaN/inf, no unknown fields."""
    fields: dict[str, Any] = {}
    for feature in features:
        if feature["type"] == "category":
            kind: Any = category_field(feature["categories"])
            extra: dict[str, Any] = {}
        else:
            kind = PYTHON_TYPES[feature["type"]]
            extra = {
                "float": {"allow_inf_nan": False},
                "int": {"ge": -JSON_SAFE_INT, "le": JSON_SAFE_INT},
            }.get(feature["type"], {})
        description = feature.get("description") or None
        if feature["nullable"]:
            fields[feature["name"]] = (kind | None, Field(None, description=description, **extra))
        else:
            fields[feature["name"]] = (kind, Field(..., description=description, **extra))
    return create_model("Row", __config__=ConfigDict(strict=True, extra="forbid"), **fields)


_ABSENT = object()


def plain_reader(features: list[dict[str, Any]]) -> Callable[[list[Any]], list[list[Any]] | None]:
    """A reader of rows that are plainly valid: the values in contract order (missing ones as NaN), or
    None when any value is not plainly valid, and then the row model decides.

    Plainly valid: every value is of its feature's own JSON type and in range (an integer within JSON
    precision, a finite number, true or false, one of the category texts, null where allowed) and there
    is no unknown field. That is nearly every request, read here in about 1 us a row instead of the row
    model's 5. Everything else (a mistake to report with the field's name, a whole float for an int, a
    category written as a number) goes to the row model, which refuses it or converts it. So this
    reader accepts nothing the row model refuses and gives the same values (tests/test_serve.py checks
    both on hostile rows).
    """
    nan, absent = math.nan, _ABSENT
    kinds = {"int": int, "float": float, "bool": bool}
    fields = [(f["name"], kinds.get(f["type"], str), frozenset(f.get("categories") or ()), f["nullable"])
              for f in features]

    def read(rows: list[Any]) -> list[list[Any]] | None:
        out = []
        for row in rows:
            if type(row) is not dict:
                return None
            values, seen = [], 0
            for name, kind, categories, nullable in fields:
                value = row.get(name, absent)
                if value is absent or value is None:
                    if not nullable:
                        return None
                    seen += value is None
                    values.append(nan)
                    continue
                seen += 1
                plain = type(value)
                if kind is str:
                    if plain is not str or value not in categories:
                        return None
                elif kind is float:
                    if plain is int and -JSON_SAFE_INT <= value <= JSON_SAFE_INT:
                        value = float(value)
                    elif plain is not float or value - value != 0.0:  # not a number, or inf/nan
                        return None
                elif plain is not kind or (kind is int and not -JSON_SAFE_INT <= value <= JSON_SAFE_INT):
                    return None
                values.append(value)
            if seen != len(row):  # a field the row model does not know
                return None
            out.append(values)
        return out

    return read


class Predictor:
    """Validates rows and predicts; everything the endpoint does between bytes in and bytes out."""

    def __init__(self, loaded: LoadedModel, max_rows: int = DEFAULT_MAX_ROWS):
        self.loaded = loaded
        self.max_rows = max_rows
        self.names = [f["name"] for f in loaded.features]
        self.Row = row_model(loaded.features)
        self.rows_adapter = TypeAdapter(list[self.Row])
        self.read_plain = plain_reader(loaded.features)
        model = loaded.model
        self.proba = loaded.task == "classification" and hasattr(model, "predict_proba")
        self.classes = np.asarray(loaded.classes if loaded.classes is not None else [], dtype=object)
        # The preprocessor's vectorised twin, when it is provably equal (see fastpath.py).
        self.preprocess = None
        if not getattr(model, "compiled", False):  # a compiled model is already plain arrays
            from sklearn.pipeline import Pipeline

            if isinstance(model, Pipeline) and len(model.steps) == 2:
                self.preprocess = compile_preprocessor(model[0], probe_rows(loaded.features))

    def values(self, rows: list[Any]) -> list[list[Any]]:
        """The rows of a request as lists in contract order, missing values as NaN; a ValidationError
        naming every bad field when a row is invalid."""
        plain = self.read_plain(rows)
        if plain is not None:
            return plain
        nan = math.nan
        valid = self.rows_adapter.validate_python(rows)
        return [[nan if (v := getattr(row, n)) is None else v for n in self.names] for row in valid]

    def _estimate(self, method: str, values: list[list[Any]]) -> np.ndarray:
        model = self.loaded.model
        if self.preprocess is not None:
            try:
                inputs = self.preprocess(values)
            except Exception as error:  # noqa: BLE001 - the fast path may never fail a prediction
                log.warning("fast path failed (%s: %s); serving runs the pipeline as is from now on",
                            type(error).__name__, error)
                self.preprocess = None
            else:
                return getattr(model[-1], method)(inputs)
        if getattr(model, "compiled", False):  # numpy arrays already: takes the rows as they are
            return getattr(model, method)(values)
        return getattr(model, method)(np.array(values, dtype=object))

    def predict_values(self, values: list[list[Any]]) -> dict[str, Any]:
        """Predict rows given as lists in contract order (missing values as NaN)."""
        if self.proba:
            proba = self._estimate("predict_proba", values)
            labels = self.classes[proba.argmax(axis=1)] if len(self.classes) else proba.argmax(axis=1)
            result: dict[str, Any] = {"predictions": labels.tolist()}
            result["probabilities"] = (proba[:, 1] if proba.shape[1] == 2 else proba).tolist()
        else:
            result = {"predictions": self._estimate("predict", values).tolist()}
        result["model_version"] = self.loaded.info.get("version")
        return result


class MicroBatcher:
    """Predicts the rows of every request that arrives in the same event-loop turn in one call.

    The estimator's fixed cost per call (~0.1 ms, mostly input validation) then is paid once per
    batch instead of once per request: under 32 concurrent connections batches form by themselves;
    with one connection a batch is just that request and waits for nothing.
    """

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.pending: list[tuple[list[list[Any]], asyncio.Future]] = []

    def submit(self, values: list[list[Any]]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)  # runs after the requests already waiting in this turn
        self.pending.append((values, future))
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        try:
            result = self.predictor.predict_values([row for values, _ in batch for row in values])
        except Exception as error:  # noqa: BLE001 - every request of the batch gets the error
            for _, future in batch:
                future.set_exception(error)
            return
        start = 0
        for values, future in batch:
            end = start + len(values)
            future.set_result({k: v[start:end] if isinstance(v, list) else v for k, v in result.items()})
            start = end


# --- the HTTP layer ------------------------------------------------------------------------------

MAX_BYTES_PER_ROW = 4096  # a body larger than max_rows of these is refused, counting the bytes read
REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
JSON_HEADERS = [(b"content-type", b"application/json")]


class RequestError(Exception):
    """A request the app refuses: the status and the detail of the JSON error body."""

    def __init__(self, status: int, detail: Any):
        super().__init__(status, detail)
        self.status, self.detail = status, detail


def _error_body(detail: Any) -> bytes:
    return orjson.dumps({"detail": detail})


def _invalid(loc: list[str], msg: str, kind: str) -> RequestError:
    return RequestError(422, [{"loc": loc, "msg": msg, "type": kind}])


def _validation_detail(error: ValidationError, batch: bool, prefix: list[str] | None = None) -> list[dict[str, Any]]:
    """Pydantic's errors with FastAPI's `loc` (["body", field] or ["body", "rows", index, field])."""
    detail = []
    for item in error.errors(include_url=False, include_input=False):
        loc = list(item["loc"])
        loc = [*prefix, *loc] if prefix else ["body", "rows", *loc] if batch else ["body", *loc[1:]]
        detail.append({"loc": loc, "msg": f"{'.'.join(map(str, loc[1:]))}: {item['msg']}", "type": item["type"]})
    return detail


def request_headers(scope: dict[str, Any]) -> tuple[str, int | None]:
    """The request id (the caller's valid X-Request-ID, else a new one) and the declared body length."""
    request_id, length = None, None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            request_id = text if REQUEST_ID.fullmatch(text) else None
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    return request_id or new_request_id(), length


def _ids() -> Any:
    """Request ids: 32 hex digits, a random prefix drawn once per process and a counter (an id per
    request without a system call; unique across processes and restarts by the prefix)."""
    prefix = os.urandom(10).hex()
    return (f"{prefix}{n:012x}" for n in itertools.count())


new_request_id = _ids().__next__


async def read_body(receive: Any, declared: int | None, limit: int) -> bytes:
    """The body; 413 as soon as more than `limit` bytes are declared or read (chunked bodies declare no
    length), so a huge body is refused without being held in memory."""
    if declared is not None and declared > limit:
        raise RequestError(413, f"body of {declared} bytes; the limit is {limit} (SERVE_MAX_ROWS x "
                                f"{MAX_BYTES_PER_ROW})")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(499, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body over {limit} bytes; the limit is {limit} (SERVE_MAX_ROWS x "
                                    f"{MAX_BYTES_PER_ROW})")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def rows_of(payload: Any, names: list[str], max_rows: int) -> tuple[list[Any], bool]:
    """The rows of a body (one row, or {"rows": [...]}) and whether it was a batch."""
    if not (isinstance(payload, dict) and "rows" in payload and "rows" not in names):
        return [payload], False
    rows = payload["rows"]
    if set(payload) != {"rows"} or not isinstance(rows, list) or not rows:
        raise _invalid(["body", "rows"], 'a batch is {"rows": [row, ...]} with at least one row and no other keys',
                       "batch_invalid")
    if len(rows) > max_rows:
        raise _invalid(["body", "rows"], f"{len(rows)} rows in one request; the maximum is {max_rows} "
                                         "(SERVE_MAX_ROWS)", "too_long")
    return rows, True


class Serving:
    """What answers a prediction: the predictor (once warmed up), the prediction log and the metrics."""

    def __init__(self, loaded: LoadedModel, max_rows: int, prediction_log: PredictionLog | None):
        self.loaded = loaded
        self.predictor = Predictor(loaded, max_rows)
        self.max_rows = max_rows
        self.limit = max_rows * MAX_BYTES_PER_ROW
        self.log = prediction_log
        self.image_digest = os.environ.get("IMAGE_DIGEST") or None  # passed in by the deploy
        name = str(loaded.info.get("name") or "{{ cookiecutter.project }}")
        self.metrics = Metrics(name, loaded.info.get("version"), loaded.task,
                               {"image_digest": self.image_digest, "estimator": loaded.info.get("estimator")})
        self.batcher: MicroBatcher | None = None  # set last by warm_up: /ready and /predict look at it

    def warm_up(self) -> None:
        """Warm the estimator once, then freeze: the model's objects never need collecting."""
        self.predictor.predict_values(probe_rows(self.loaded.features, rows=1).tolist())
        gc.collect()
        gc.freeze()
        self.batcher = MicroBatcher(self.predictor)

    async def predict(self, receive: Any, request_id: str, declared: int | None, started: float) -> bytes:
        """The response body of a /predict request, or a RequestError."""
        batcher = self.batcher
        if batcher is None:
            raise RequestError(503, "model is loading")
        raw = await read_body(receive, declared, self.limit)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise _invalid(["body"], f"invalid JSON: {error}", "json_invalid") from None
        predictor = self.predictor
        rows_in, batch = rows_of(payload, predictor.names, self.max_rows)
        try:
            values = predictor.values(rows_in)
        except ValidationError as error:
            raise RequestError(422, _validation_detail(error, batch)) from None
        result = await batcher.submit(values)
        ids = [f"{request_id}-{i}" for i in range(len(values))] if batch else [request_id]
        if self.log is not None:
            self.log.record(ids, time.time(), values, result, (time.perf_counter() - started) * 1000)
        self.metrics.predictions(result["predictions"])
        return orjson.dumps({"id": request_id, "ids": ids, **result})

    def feedback_model(self):
        """The /feedback body: a prediction id and its true label (one of the classes, or a number)."""
        classes = self.loaded.classes
        if self.loaded.task == "regression":
            label: Any = Annotated[float, Field(allow_inf_nan=False)]
        else:
            label = Annotated[Literal[tuple(classes)], BeforeValidator(_exact_type(classes))] if classes else Any
        return create_model("Feedback", __config__=ConfigDict(strict=True, extra="forbid"),
                            id=(str, Field(..., min_length=1, max_length=200, description="the prediction's id")),
                            label=(label, Field(..., description="the true value for that prediction")))


def _exact_type(classes: list[Any]):
    """A validator refusing values of another JSON type than the classes' (false is not 0, 1.0 is not 1)."""
    types = {type(c) for c in classes}

    def check(value: Any) -> Any:
        if type(value) not in types:
            raise ValueError(f"expected one of {classes}, got {value!r}")
        return value

    return check


class ServingApp:
    """The ASGI app: /predict and /health answered directly, everything else by the FastAPI app.

    The two hot endpoints skip the framework's routing, request and response objects (measured in
    docs/serving.md); FastAPI still documents them in /openapi.json and serves /ready, /metadata,
    /feedback, /metrics and the docs. Every response carries X-Request-ID and is counted in /metrics.
    """

    def __init__(self, serving: Serving, api: FastAPI):
        self.serving, self.api = serving, api
        self.state = api.state  # as FastAPI's: app.state.serving

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: FastAPI starts and stops the prediction log
            return await self.api(scope, receive, send)
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        request_id, declared = request_headers(scope)
        if path == "/predict" and method == "POST":
            try:
                status, body = 200, await self.serving.predict(receive, request_id, declared, started)
            except RequestError as error:
                status, body = error.status, _error_body(error.detail)
            except Exception:  # noqa: BLE001 - answered as a 500 naming the request, never a dropped connection
                log.exception("prediction failed (request %s)", request_id)
                status, body = 500, _error_body(f"prediction failed; see the server log for request {request_id}")
            await respond(send, status, body, request_id)
        elif path == "/health" and method == "GET":
            status = 200
            await respond(send, 200, b'{"status":"ok"}', request_id)
        else:
            status = await self.forward(scope, receive, send, request_id)
        self.serving.metrics.request(path, status, time.perf_counter() - started)

    async def forward(self, scope: dict[str, Any], receive: Any, send: Any, request_id: str) -> int:
        seen = [500]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.api(scope, receive, send_with_id)
        return seen[0]


async def respond(send: Any, status: int, body: bytes, request_id: str) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- the FastAPI app: the documented API and the endpoints off the hot path ---------------------

PREDICTION_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the request's id (X-Request-ID)"},
        "ids": {"type": "array", "items": {"type": "string"},
                "description": "each row's prediction id, for /feedback (one row: the request's id)"},
        "predictions": {"type": "array"},
        "probabilities": {"type": "array"},
        "model_version": {"type": ["string", "null"]},
    },
    "required": ["id", "ids", "predictions"],
}
DETAIL_SCHEMA = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
STATUS_SCHEMA = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}


def _documented(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _json(status: int, content: Any) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def _predict_body(row_schema: dict[str, Any], max_rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The /predict request body's OpenAPI description, and the schemas it refers to."""
    defs = row_schema.pop("$defs", {})
    row_ref = {"$ref": "#/components/schemas/Row"}
    batch = {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": row_ref, "minItems": 1, "maxItems": max_rows}},
        "required": ["rows"],
        "additionalProperties": False,
    }
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"anyOf": [row_ref, batch]}}}}}
    return body, {"Row": row_schema, **defs}


def add_probes(api: FastAPI, serving: Serving) -> None:
    """/health (answered by ServingApp; declared here for the docs), /ready, /metadata, /metrics."""

    @api.get("/health", responses={200: _documented("the process is up", STATUS_SCHEMA)})
    async def health() -> Response:
        return _json(200, {"status": "ok"})

    @api.get("/ready", responses={200: _documented("the model is loaded and warmed up", STATUS_SCHEMA),
                                  503: _documented("model not loaded yet", DETAIL_SCHEMA)})
    async def ready() -> Response:
        if serving.batcher is None:
            return _json(503, {"detail": "model is loading"})
        return _json(200, {"status": "ready"})

    @api.get("/metadata")
    async def metadata() -> Response:
        loaded = serving.loaded
        return _json(200, {**loaded.info, "image_digest": serving.image_digest, "features": loaded.features,
                           "classes": loaded.classes, "max_rows": serving.max_rows,
                           "prediction_log": str(serving.log.directory) if serving.log else None})

    @api.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}})
    async def metrics() -> Response:
        return PlainTextResponse(serving.metrics.render(serving.log),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")


def add_predict(api: FastAPI, serving: Serving) -> None:
    """/predict (answered by ServingApp; declared here so the docs describe it with the Row schema)."""
    body, components = _predict_body(serving.predictor.Row.model_json_schema(
        ref_template="#/components/schemas/{model}"), serving.max_rows)
    limit = serving.limit

    @api.post("/predict", openapi_extra=body, responses={
        200: _documented("predictions, in the order of the rows", PREDICTION_SCHEMA),
        413: _documented(f"body over {limit} bytes", DETAIL_SCHEMA),
        422: _documented(f"invalid body (the detail names each bad field) or more than {serving.max_rows} rows",
                         DETAIL_SCHEMA),
        503: _documented("model not loaded yet", DETAIL_SCHEMA),
    })
    async def predict(request: Request) -> Response:
        request_id, declared = request_headers(request.scope)
        try:
            return _json(200, orjson.loads(await serving.predict(request.receive, request_id, declared,
                                                                 time.perf_counter())))
        except RequestError as error:
            return _json(error.status, {"detail": error.detail})

    def openapi() -> dict[str, Any]:  # publish the generated Row schema in the OpenAPI document
        if api.openapi_schema is None:
            schema = FastAPI.openapi(api)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def add_feedback(api: FastAPI, serving: Serving) -> None:
    """/feedback: the true label of an earlier prediction, joined to it by id in the prediction log."""
    Feedback = serving.feedback_model()
    schema = Feedback.model_json_schema()
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

    @api.post("/feedback", status_code=202, openapi_extra=body, responses={
        202: _documented("recorded", STATUS_SCHEMA),
        422: _documented("invalid body (the detail names each bad field)", DETAIL_SCHEMA),
        503: _documented("the prediction log is off, or its queue is full (retry later)", DETAIL_SCHEMA)})
    async def feedback(request: Request) -> Response:
        try:
            record = Feedback.model_validate(orjson.loads(await request.body()))
        except orjson.JSONDecodeError as error:
            return _json(422, {"detail": [{"loc": ["body"], "msg": f"invalid JSON: {error}", "type": "json_invalid"}]})
        except ValidationError as error:
            return _json(422, {"detail": _validation_detail(error, batch=False, prefix=["body"])})
        if serving.log is None:
            return _json(503, {"detail": "the prediction log is off (PREDICTION_LOG_DIR=off): feedback is not kept"})
        if not serving.log.record_feedback(record.id, record.label):
            return _json(503, {"detail": "the feedback queue is full; retry later"})
        return _json(202, {"status": "recorded", "id": record.id})


def create_app(source: str, max_rows: int | None = None) -> ServingApp:
    """The app for one model source. The model is loaded first (its feature schema is the request
    schema); /ready and /predict answer 503 until a warm-up prediction has run."""
    max_rows = max_rows or int(os.environ.get("SERVE_MAX_ROWS", DEFAULT_MAX_ROWS))
    loaded = load(source)
    prediction_log = PredictionLog.from_env(str(loaded.info.get("name") or "{{ cookiecutter.project }}"),
                                            loaded.info.get("version"), [f["name"] for f in loaded.features])
    serving = Serving(loaded, max_rows, prediction_log)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        if prediction_log is not None:  # write out what is still queued
            prediction_log.close()

    api = FastAPI(
        title={{ (cookiecutter.display_name + " model") | tojson }},
        description={{ cookiecutter.description | tojson }},
        version=str(loaded.info.get("version") or "unregistered"),
        lifespan=lifespan,
    )
    add_predict(api, serving)
    add_feedback(api, serving)
    add_probes(api, serving)
    api.state.serving = serving
    threading.Thread(target=serving.warm_up, daemon=True).start()
    return ServingApp(serving, api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package }}.serve")
    parser.add_argument("--model", default=os.environ.get("MODEL_URI", "models/model"),
                        help="MLflow model directory or models:/NAME@ALIAS (env MODEL_URI)")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    args = parser.parse_args(argv)
    import uvicorn

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(args.model)
    except (ModelLoadError, OSError) as error:
        print(f"error: cannot load the model: {error}", file=sys.stderr)
        return 2
    if args.workers > 1:
        os.environ["MODEL_URI"] = args.model
        uvicorn.run("{{ cookiecutter.package }}.serve:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level="warning", access_log=False)
    else:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def app_from_env() -> ServingApp:
    """App factory for multi-worker uvicorn: each worker loads the model named by MODEL_URI."""
    return create_app(os.environ["MODEL_URI"])


if __name__ == "__main__":
    sys.exit(main())
