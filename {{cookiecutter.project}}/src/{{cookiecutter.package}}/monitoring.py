"""Monitoring for the serving app: the prediction log and the Prometheus metrics.

The prediction log records every prediction (and every ground-truth label sent to /feedback) as
JSON lines in a folder, `PREDICTION_LOG_DIR` (default `logs/predictions`; `off` disables it):

    predictions-<UTC %Y%m%dT%H%M%S>-<pid>-<seq>.jsonl
        {"id", "ts", "model", "model_version", "inputs": {...}, "prediction",
         "probabilities" (binary: float, multiclass: list, regression: absent), "latency_ms"}
    feedback-<UTC %Y%m%dT%H%M%S>-<pid>-<seq>.jsonl
        {"id", "ts", "label"}

`ts` is ISO 8601 in UTC (`2026-12-02T15:04:05.123Z`). Each file is written whole to a `.tmp` file
and then renamed, so a reader (`gitops-ml drift`) never sees half a file. Writing happens off the
request path: a request only appends to a bounded in-memory queue (no lock, no I/O); a thread
renders the records as they come and writes a file every `PREDICTION_LOG_FLUSH_SECONDS` (default
5) or every file's worth of records (`PREDICTION_LOG_FILE_RECORDS`, default 10,000). When the queue is full
(`PREDICTION_LOG_QUEUE`, default 100,000 records; a slow sink) a record is dropped; when a file
cannot be written (an unwritable sink) its records are dropped: both are counted and exposed in
/metrics, and neither ever fails or delays a prediction.

The metrics follow the conventions of inference servers: `<namespace>_<name>_<unit>`, `_total`
counters, `_seconds` histograms, `model` and `version` labels on every series.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

NAMESPACE = "gitops_ml"
JSONL = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY  # all keys are text: OPT_NON_STR_KEYS costs 30%
DEFAULT_LOG_DIR = "logs/predictions"
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Regression predictions: 0 and the 1-2.5-5 series up to a million (PREDICTION_BUCKETS overrides).
VALUE_BUCKETS = (0.0, *(m * 10.0**e for e in range(7) for m in (1, 2.5, 5)))
WAKE_RECORDS = 64  # queued records that wake the log writer


# The last second and millisecond formatted (records come in time order, many per millisecond).
_SECOND: list[Any] = [None, ""]
_MILLISECOND: list[Any] = [None, ""]


def utc_iso(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-12-02T15:04:05.123Z."""
    millisecond = int(timestamp * 1000)
    if _MILLISECOND[0] == millisecond:
        return _MILLISECOND[1]
    second = millisecond // 1000
    if _SECOND[0] != second:
        _SECOND[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    _MILLISECOND[:] = [millisecond, f"{_SECOND[1]}.{millisecond % 1000:03d}Z"]
    return _MILLISECOND[1]


class RecordQueue:
    """A bounded queue of records and the thread that writes them to JSONL files.

    `put` (`put_many` for a batch) is all the request path does: a length check and one append or
    extend (atomic on a deque).
    The writer thread is woken every `WAKE_RECORDS` queued records and turns them into JSON lines
    as they arrive; it writes a file every `file_records` records or `flush_seconds`. Rendering as
    records come spreads its CPU evenly over the requests: rendering a whole file's worth in one
    burst stalled every request in flight during the burst (p99 up ~3x). It never gives the GIL up
    on purpose between records: under a saturated event loop it would then get it back too rarely to
    keep up, and a full queue drops records (measured: 100-row batches at 64 connections).
    """

    def __init__(self, directory: Path, kind: str, render: Callable[[tuple], dict[str, Any]], capacity: int,
                 flush_seconds: float, file_records: int):
        self.directory, self.kind, self.render = directory, kind, render
        self.capacity, self.flush_seconds, self.file_records = capacity, flush_seconds, file_records
        self.pending: deque[tuple] = deque()
        self.written = 0
        self.dropped_full = 0  # incremented by the request path only
        self.dropped_failed = 0  # incremented by the writer only
        self.files = 0
        # Rendered lines not yet in a file. One buffer, not a list of little bytes objects: thousands
        # of those alive at once cost more in memory churn than the rendering (5.8 vs 2.3 us a record).
        self._lines = bytearray()
        self._buffered = 0
        self._since = time.monotonic()  # the last file written, or the last time there was nothing to write
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"{kind}-log-writer", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_failed

    def put(self, record: tuple) -> bool:
        """Queue one record; False (and counted as dropped) when the queue is full."""
        pending = self.pending
        if len(pending) >= self.capacity:
            self.dropped_full += 1
            return False
        pending.append(record)
        if len(pending) == WAKE_RECORDS:
            self._wake.set()
        return True

    def put_many(self, records: list[tuple]) -> int:
        """Queue the records there is room for, dropping (and counting) the rest; returns how many were
        queued. One extend for a whole request: a 100-row batch is one call, not 100."""
        pending = self.pending
        queued = len(pending)
        room = self.capacity - queued  # never negative: nothing queues past the capacity
        if room < len(records):
            self.dropped_full += len(records) - room
            records = records[:room]
        pending.extend(records)
        if queued < WAKE_RECORDS <= queued + len(records):
            self._wake.set()
        return len(records)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(max(0.0, self._since + self.flush_seconds - time.monotonic()))
            self._wake.clear()
            self._drain(due=time.monotonic() - self._since >= self.flush_seconds)

    def flush(self) -> None:
        """Write everything queued so far (one file per `file_records` records)."""
        self._drain(due=True)

    def _drain(self, due: bool) -> None:
        """Render what is queued, writing a file whenever `file_records` lines are buffered; when
        `due`, also write what is buffered (else it waits for more)."""
        dumps, render, pending = orjson.dumps, self.render, self.pending
        with self._write_lock:
            while pending:  # up to the end of the file being filled, then that file
                for _ in range(min(len(pending), self.file_records - self._buffered)):
                    self._lines += dumps(render(pending.popleft()), option=JSONL)
                    self._buffered += 1
                if self._buffered >= self.file_records:
                    self._write_buffered()
            if due:
                if self._buffered:
                    self._write_buffered()
                self._since = time.monotonic()

    def _write_buffered(self) -> None:
        lines, count = self._lines, self._buffered
        self._lines, self._buffered = bytearray(), 0
        self._write(lines, count)
        self._since = time.monotonic()

    def _write(self, lines: bytearray, count: int) -> None:
        """One file of `count` records; on failure they are dropped and counted."""
        try:
            self.files += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            final = self.directory / f"{self.kind}-{stamp}-{os.getpid()}-{self.files}.jsonl"
            temporary = final.with_name(final.name + ".tmp")
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(lines)
            os.replace(temporary, final)
        except Exception as error:  # noqa: BLE001 - an unwritable sink loses records, never a prediction
            self.dropped_failed += count
            if not self._failing:
                log.warning("%s log: cannot write to %s (%s); dropping records until it works again",
                            self.kind, self.directory, error)
            self._failing = True
            return
        if self._failing:
            log.warning("%s log: writing to %s works again", self.kind, self.directory)
        self._failing = False
        self.written += count

    def close(self) -> None:
        """Stop the writer and write what is still queued."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


class PredictionLog:
    """The predictions and the feedback of one model version, each in its own queue of files."""

    def __init__(self, directory: Path, model: str, version: str | None, names: list[str], capacity: int = 100_000,
                 flush_seconds: float = 5.0, file_records: int = 10_000):
        self.directory = directory

        def prediction(record: tuple) -> dict[str, Any]:
            request_id, ts, inputs, value, probabilities, latency_ms = record
            # Validated rows have one value per name: zip's strict check would cost a third of this dict.
            inputs = dict(zip(names, inputs))  # noqa: B905
            out = {"id": request_id, "ts": utc_iso(ts), "model": model, "model_version": version,
                   "inputs": inputs, "prediction": value}
            if probabilities is not None:
                out["probabilities"] = probabilities
            out["latency_ms"] = latency_ms  # rounded once per request
            return out

        def feedback(record: tuple) -> dict[str, Any]:
            request_id, ts, label = record
            return {"id": request_id, "ts": utc_iso(ts), "label": label}

        self.predictions = RecordQueue(directory, "predictions", prediction, capacity, flush_seconds, file_records)
        self.feedback = RecordQueue(directory, "feedback", feedback, capacity, flush_seconds, file_records)

    @classmethod
    def from_env(cls, model: str, version: str | None, names: list[str]) -> PredictionLog | None:
        directory = os.environ.get("PREDICTION_LOG_DIR", DEFAULT_LOG_DIR)
        if directory.strip().lower() in ("off", ""):
            return None
        return cls(Path(directory), model, version, names,
                   capacity=int(os.environ.get("PREDICTION_LOG_QUEUE", "100000")),
                   flush_seconds=float(os.environ.get("PREDICTION_LOG_FLUSH_SECONDS", "5")),
                   file_records=int(os.environ.get("PREDICTION_LOG_FILE_RECORDS", "10000")))

    def record(self, ids: list[str], ts: float, inputs: list[list[Any]], result: dict[str, Any],
               latency_ms: float) -> None:
        """Queue one record per row of a prediction (the request path: one append, or one extend for a
        batch). `inputs` are the validated rows in feature order (missing values as NaN, written as null)."""
        probabilities, latency_ms = result.get("probabilities"), round(latency_ms, 3)
        if len(ids) == 1:  # most requests: one tuple, without the list and zip a batch needs (half the cost)
            self.predictions.put((ids[0], ts, inputs[0], result["predictions"][0],
                                  None if probabilities is None else probabilities[0], latency_ms))
            return
        self.predictions.put_many(list(zip(ids, repeat(ts), inputs, result["predictions"],
                                           repeat(None) if probabilities is None else probabilities,
                                           repeat(latency_ms))))

    def record_feedback(self, request_id: str, label: Any) -> bool:
        return self.feedback.put((request_id, time.time(), label))

    def flush(self) -> None:
        self.predictions.flush()
        self.feedback.flush()

    def close(self) -> None:
        self.predictions.close()
        self.feedback.close()


class Histogram:
    def __init__(self, bounds: Iterable[float]):
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            out.append(series(f"{name}_bucket", f'{labels},le="{le}"', total))
        out += [series(f"{name}_sum", labels, repr(self.sum)), series(f"{name}_count", labels, total)]
        return out


def series(name: str, labels: str, value: Any) -> str:
    """One sample line: name{labels} value (written without f-string braces: this file is a template)."""
    return name + "{" + labels + "} " + str(value)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and histograms kept in plain Python objects, rendered in Prometheus' text format."""

    ENDPOINTS = frozenset({"/predict", "/feedback", "/health", "/ready", "/metadata", "/metrics", "/docs",
                           "/openapi.json"})

    def __init__(self, model: str, version: str | None, task: str, info: dict[str, Any],
                 value_buckets: Iterable[float] = VALUE_BUCKETS):
        self.base = f'model="{_label(model)}",version="{_label(version or "unregistered")}"'
        self.task = task
        self.info = info
        self.durations: dict[str, Histogram] = {}
        self.requests: dict[tuple[str, int], int] = {}
        self.classes: dict[Any, int] = {}
        self.values = Histogram(value_buckets)

    def request(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in self.ENDPOINTS else "other"
        histogram = self.durations.get(endpoint)
        if histogram is None:
            histogram = self.durations[endpoint] = Histogram(DURATION_BUCKETS)
        histogram.observe(seconds)
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def predictions(self, values: list[Any]) -> None:
        if self.task == "regression":
            for value in values:
                self.values.observe(value)
        else:
            classes = self.classes
            for value in values:
                classes[value] = classes.get(value, 0) + 1

    def render(self, prediction_log: PredictionLog | None) -> str:
        n, base = NAMESPACE, self.base
        lines = [f"# HELP {n}_model_info The model version this process serves.", f"# TYPE {n}_model_info gauge",
                 series(f"{n}_model_info", ",".join([base, *(f"{k}={_q(v)}" for k, v in self.info.items())]), 1),
                 f"# HELP {n}_request_duration_seconds Time from the request's arrival at the app to its response.",
                 f"# TYPE {n}_request_duration_seconds histogram"]
        for endpoint, histogram in sorted(self.durations.items()):
            lines += histogram.lines(f"{n}_request_duration_seconds", f'{base},endpoint="{endpoint}"')
        lines += [f"# HELP {n}_requests_total Requests answered, by endpoint and status code.",
                  f"# TYPE {n}_requests_total counter"]
        lines += [series(f"{n}_requests_total", f'{base},endpoint="{e}",status="{s}"', c)
                  for (e, s), c in sorted(self.requests.items())]
        if self.task == "regression":
            lines += [f"# HELP {n}_prediction_value Predicted values.", f"# TYPE {n}_prediction_value histogram"]
            lines += self.values.lines(f"{n}_prediction_value", base)
        else:
            lines += [f"# HELP {n}_predictions_total Predictions, by predicted class.",
                      f"# TYPE {n}_predictions_total counter"]
            lines += [series(f"{n}_predictions_total", f'{base},class="{_label(k)}"', c)
                      for k, c in sorted(self.classes.items(), key=lambda kv: str(kv[0]))]
        for kind, help_text in (("written", "written to the prediction log"),
                                ("dropped", "dropped (queue full or sink unwritable), never failing a request")):
            lines += [f"# HELP {n}_log_records_{kind}_total Records {help_text}.",
                      f"# TYPE {n}_log_records_{kind}_total counter"]
            for stream in ("predictions", "feedback"):
                queue = getattr(prediction_log, stream) if prediction_log else None
                count = (queue.written if kind == "written" else queue.dropped) if queue else 0
                lines.append(series(f"{n}_log_records_{kind}_total", f'{base},stream="{stream}"', count))
        return "\n".join(lines) + "\n"


def _q(value: Any) -> str:
    return f'"{_label("" if value is None else value)}"'
