"""The serving app's prediction log, read as a table for the drift engine: a window of predictions, labels joined.

The log is a folder (`PREDICTION_LOG_DIR`, default `logs/predictions`) of JSON-lines files written
whole and renamed into place by the serving app:

    predictions-<UTC %Y%m%dT%H%M%S>-<pid>-<seq>.jsonl
        {"id", "ts", "model", "model_version", "inputs": {...}, "prediction",
         "probabilities" (binary: float, multiclass: list, regression: absent), "latency_ms"}
    feedback-<UTC %Y%m%dT%H%M%S>-<pid>-<seq>.jsonl
        {"id", "ts", "label"}

`ts` is ISO 8601 in UTC. A file's name carries the time it was written, after every record in it,
so files named before the window starts are not read at all. The table has the contract's feature
columns (as text, like a CSV), the target column from the latest label sent for each prediction id
(labels may arrive after the window), and `PREDICTION` / `SCORE` (the positive class' probability,
for binary classification) as served.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.io.drift_engine import Table, quote_ident, quote_text

PREDICTION, SCORE = "__prediction", "__score"
NAME = re.compile(r"^(predictions|feedback)-(\d{8}T\d{6})-\d+-\d+\.jsonl$")


def log_dir(contract: Contract, root: Path) -> Path:
    """PREDICTION_LOG_DIR when set, else drift.predictions from the contract (relative to the repository)."""
    folder = Path(os.environ.get("PREDICTION_LOG_DIR") or contract.drift.predictions)
    return folder if folder.is_absolute() else root / folder


def _files(folder: Path, kind: str, since: datetime) -> list[Path]:
    found = []
    floor = since.strftime("%Y%m%dT%H%M%S")
    for path in sorted(folder.glob(f"{kind}-*.jsonl")) if folder.is_dir() else []:
        match = NAME.match(path.name)
        if match and match.group(2) >= floor:
            found.append(path)
    return found


@dataclass(frozen=True)
class Window:
    table: Table | None  # None: no prediction in the window
    since: datetime
    until: datetime
    files: int
    feedback_files: int

    @property
    def shown(self) -> str:
        return f"predictions logged {self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC"


def window(folder: Path, contract: Contract, hours: float, until: datetime | None = None) -> Window:
    """The predictions logged in the `hours` before `until` (default now), with their labels."""
    until = until or datetime.now(UTC)
    since = until - timedelta(hours=hours)
    predictions = _files(folder, "predictions", since)
    feedback = _files(folder, "feedback", since)
    shown = Window(None, since, until, len(predictions), len(feedback)).shown
    if not predictions:
        return Window(None, since, until, 0, len(feedback))

    def listed(paths: list[Path]) -> str:
        return "[" + ", ".join(quote_text(str(p)) for p in paths) + "]"

    features = contract.data.features
    target = contract.data.target
    columns = [f"p.inputs ->> {quote_text(name)} AS {quote_ident(name)}" for name in features]
    columns += [f"p.prediction ->> '$' AS {quote_ident(PREDICTION)}",
                f"TRY_CAST(p.probabilities ->> '$' AS DOUBLE) AS {quote_ident(SCORE)}"]
    start, end = since.strftime("%Y-%m-%d %H:%M:%S.%f+00"), until.strftime("%Y-%m-%d %H:%M:%S.%f+00")
    read_predictions = (f"read_json({listed(predictions)}, format = 'newline_delimited', columns = "
                        "{'id': 'VARCHAR', 'ts': 'VARCHAR', 'inputs': 'JSON', 'prediction': 'JSON', "
                        "'probabilities': 'JSON'})")
    if feedback:
        read_feedback = (f"read_json({listed(feedback)}, format = 'newline_delimited', columns = "
                         "{'id': 'VARCHAR', 'ts': 'VARCHAR', 'label': 'JSON'})")
        labels = f"(SELECT id, arg_max(label ->> '$', ts) AS label FROM {read_feedback} GROUP BY id)"
        columns.append(f"f.label AS {quote_ident(target)}")
        joined = f"{read_predictions} AS p LEFT JOIN {labels} AS f ON p.id = f.id"
    else:
        columns.append(f"CAST(NULL AS VARCHAR) AS {quote_ident(target)}")
        joined = f"{read_predictions} AS p"
    sql = (f"(SELECT {', '.join(columns)} FROM {joined} WHERE TRY_CAST(p.ts AS TIMESTAMPTZ) "
           f"BETWEEN TIMESTAMPTZ {quote_text(start)} AND TIMESTAMPTZ {quote_text(end)})")
    return Window(Table(sql, shown), since, until, len(predictions), len(feedback))
