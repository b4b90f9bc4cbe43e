"""The contract between a model repository and the gitops-ml actions: `gitops-ml.yaml`.

One file declares the dataset schema, the task, the metrics, the promotion policy, the drift
thresholds, where data lives, the registry and the deploy target. Every model here is strict,
frozen and forbids unknown keys, so a typo fails early with the key path named.

Strict means no silent conversion: `"100"` is not a number and `"yes"` is not a boolean. The file
is validated as the JSON document YAML loads it to, so exactly these conversions happen, each one
lossless: a whole number is accepted where a number is expected (`min: 0`), a list where a list
of values is expected, a column name written as a number is its text (`2024:`), and a category
written as a whole number is its text (`categories: [0, 1]`, as the CSV cell reads).
`schema/gitops-ml.schema.json` is `json_schema()` of this module (a test keeps it in sync).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from gitops_ml.errors import GitopsMLError

CONTRACT_FILE = "gitops-ml.yaml"

Task = Literal["classification", "regression"]
ColumnType = Literal["int", "float", "category", "bool"]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
# Metrics where a smaller value is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape"})


class ContractError(GitopsMLError, ValueError):
    """The contract file is missing, unreadable or invalid; the message names the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Share = Annotated[float, Field(ge=0.0, le=1.0)]


def _category_text(value: object) -> object:
    """A category as the CSV cell reads: a whole number is its text; a YAML boolean or float is refused."""
    if isinstance(value, bool):
        raise ValueError(f"YAML reads the unquoted category {value!r} as a boolean (yes/no/true/false/on/off); "
                         f"quote it as the data writes it, e.g. \"yes\"")
    if isinstance(value, float):
        raise ValueError(f"the category {value!r} is a number with a fraction; quote it exactly as the data writes it")
    return str(value) if isinstance(value, int) else value


Category = Annotated[str, BeforeValidator(_category_text),
                     WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})]


class Column(_Strict):
    type: ColumnType
    nullable: bool = False
    max_missing_share: Share | None = None  # when nullable; defaults to data.max_missing_share
    min: float | None = None
    max: float | None = None
    categories: tuple[Category, ...] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if self.type == "category" and not self.categories:
            raise ValueError("a 'category' column needs a non-empty 'categories' list")
        if self.type != "category" and self.categories:
            raise ValueError(f"'categories' is only allowed on 'category' columns, not on '{self.type}'")
        if self.type in ("category", "bool") and (self.min is not None or self.max is not None):
            raise ValueError(f"'min'/'max' are only allowed on numeric columns, not on '{self.type}'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is greater than 'max' ({self.max})")
        return self

    @property
    def is_numeric(self) -> bool:
        return self.type in ("int", "float")


class Data(_Strict):
    train: str = Field(description="CSV the model is trained on (tracked by DVC)")
    current: str = Field(
        default="data/production/current.csv", description="recent production data, for drift checks"
    )
    target: str
    sensitive_attribute: str | None = Field(default=None, description="column whose groups fairness compares")
    id_columns: tuple[str, ...] = ()
    columns: dict[str, Column]
    min_rows: Annotated[int, Field(ge=1)] = 100
    max_missing_share: Share = 0.05
    max_duplicate_share: Share = 0.01
    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    split_seed: int = 42
    holdout: str | None = Field(
        default=None, description="protected holdout CSV (DVC-tracked, under CODEOWNERS) every comparison uses")
    holdout_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="the holdout's pinned content hash")

    @model_validator(mode="after")
    def _columns_known(self) -> Data:
        if self.target not in self.columns:
            raise ValueError(f"target '{self.target}' is not one of the declared columns {sorted(self.columns)}")
        for name in (self.sensitive_attribute, *self.id_columns):
            if name is not None and name not in self.columns:
                raise ValueError(f"'{name}' is not one of the declared columns {sorted(self.columns)}")
        if self.sensitive_attribute and self.columns[self.sensitive_attribute].type != "category":
            raise ValueError(f"sensitive_attribute '{self.sensitive_attribute}' must be a 'category' column")
        if not self.features:
            raise ValueError("no feature columns: declare at least one column besides the target")
        return self

    @model_validator(mode="after")
    def _holdout_pinned(self) -> Data:
        if self.holdout and not self.holdout_sha256:
            raise ValueError(f"holdout '{self.holdout}' needs holdout_sha256 (sha256sum of the file) to pin it")
        if self.holdout_sha256 and not self.holdout:
            raise ValueError("holdout_sha256 is set but holdout (the file it pins) is not")
        return self

    @property
    def features(self) -> list[str]:
        """Model inputs in contract order (the order serving and training both use)."""
        skip = {self.target, *self.id_columns}
        return [name for name in self.columns if name not in skip]


class Metrics(_Strict):
    primary: str
    report: tuple[str, ...] = ()


class GuardRule(_Strict):
    max_drop: Annotated[float, Field(ge=0.0)] = Field(description="largest allowed worsening vs the champion")


class FairnessRule(_Strict):
    metric: str
    max_gap: Annotated[float, Field(ge=0.0)] = Field(description="largest allowed max-min gap across groups")
    min_group_size: Annotated[int, Field(ge=1)] = 30


class BootstrapRule(_Strict):
    samples: Annotated[int, Field(ge=100, le=100_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    require: Literal["significance", "non_inferiority"] = "non_inferiority"
    margin: Annotated[float, Field(ge=0.0)] = 0.01
    seed: int = 0


class Promotion(_Strict):
    min_improvement: float = 0.0
    guards: dict[str, GuardRule] = {}
    floors: dict[str, float] = {}
    latency_p95_ms: Annotated[float, Field(gt=0.0)] | None = 50.0
    fairness: FairnessRule | None = None
    bootstrap: BootstrapRule = BootstrapRule()


class Drift(_Strict):
    column_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.05,
        description="per-column p-value (KS for numbers, chi-square for categories) under which a column drifted",
    )
    max_drifted_share: Share = Field(
        default=0.3, description="share of drifted columns at which the dataset counts as drifted"
    )
    check_on_data_check: bool = True
    current: Literal["file", "dvc", "predictions"] = Field(
        default="file",
        description="what `gitops-ml drift` compares: data.current as a file or folder (CSV/Parquet), data.current "
                    "tracked by DVC (pulled first), or a window of the serving app's prediction log",
    )
    predictions: str = Field(default="logs/predictions",
                             description="the prediction log folder (PREDICTION_LOG_DIR overrides it)")
    window_hours: Annotated[float, Field(gt=0)] = Field(
        default=168.0, description="predictions: how far back the current window reaches")
    min_current_rows: Annotated[int, Field(ge=1)] = Field(
        default=200, description="fewer current rows than this is 'insufficient data', never 'no drift'")
    min_labels: Annotated[int, Field(ge=1)] = Field(
        default=100, description="labelled rows needed before live performance is judged")
    max_live_drop: Annotated[float, Field(ge=0)] = Field(
        default=0.05, description="live primary metric may be this much worse than the champion's offline one")
    trend_runs: Annotated[int, Field(ge=2, le=1000)] = Field(default=30, description="runs in the drift trend plot")


class Registry(_Strict):
    model_name: str
    tracking_uri: str = Field(
        default="sqlite:///mlflow.db", description="used when MLFLOW_TRACKING_URI is not set"
    )
    image: str = Field(description="image repository the serving image is pushed to")
    candidates_model: str | None = Field(
        default=None, description="registered model pull requests register into [default: <model_name>-candidates]")

    @model_validator(mode="after")
    def _two_models(self) -> Registry:
        if self.candidates_model == self.model_name:
            raise ValueError(f"candidates_model must differ from model_name ('{self.model_name}'): pull requests "
                             "register into their own model so their identity can never touch production's")
        return self

    @property
    def candidates_name(self) -> str:
        return self.candidates_model or f"{self.model_name}-candidates"


SlotName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")]


class Proxy(_Strict):
    """The reverse proxy in front of a `docker` environment, driven through its runtime API."""

    admin: str = Field(
        pattern=r"^(tcp://[^/\s]+:[0-9]+|unix:///\S+)$",
        description="the runtime API: tcp://HOST:PORT or unix:///PATH (it has no authentication: keep it local)",
    )
    backend: str = Field(default="model", pattern=r"^[A-Za-z0-9_.:-]+$")
    slots: tuple[SlotName, SlotName] = ("blue", "green")

    @model_validator(mode="after")
    def _two_slots(self) -> Proxy:
        if self.slots[0] == self.slots[1]:
            raise ValueError(f"the two slots must differ, got {list(self.slots)}")
        return self


class Environment(_Strict):
    url: str = Field(pattern=r"^https?://\S+$", description="the stable entry point clients use")
    proxy: Proxy | None = Field(default=None, description="required by the docker target")
    network: str | None = Field(
        default=None, description="a user-defined Docker network the container joins; the proxy reaches it there"
    )
    publish_host: str = Field(
        default="127.0.0.1", description="without a network: the host address the container's port is published on"
    )


class Deploy(_Strict):
    target: Literal["docker", "kubernetes"] = "docker"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    health_path: str = "/health"
    ready_path: str = "/ready"
    smoke_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="how long a new container may take to become ready"
    )
    drain_timeout_s: Annotated[float, Field(ge=0)] = 30.0
    stop_timeout_s: Annotated[float, Field(ge=0)] = 30.0
    smoke_rows: Annotated[int, Field(ge=1, le=1000)] = 50
    environments: dict[str, Environment] = {}

    @model_validator(mode="after")
    def _docker_needs_a_proxy(self) -> Deploy:
        for name, environment in self.environments.items():
            if self.target == "docker" and environment.proxy is None:
                raise ValueError(f"environments.{name}.proxy is required by the docker target (its admin address)")
        return self


class Model(_Strict):
    task: Task
    intended_use: str = ""
    limitations: str = ""


class Contract(_Strict):
    model: Model
    data: Data
    metrics: Metrics
    promotion: Promotion = Promotion()
    drift: Drift = Drift()
    registry: Registry
    deploy: Deploy = Deploy()

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Contract:
        known = CLASSIFICATION_METRICS if self.model.task == "classification" else REGRESSION_METRICS
        named = {
            "metrics.primary": [self.metrics.primary],
            "metrics.report": list(self.metrics.report),
            "promotion.guards": list(self.promotion.guards),
            "promotion.floors": list(self.promotion.floors),
            "promotion.fairness.metric": [self.promotion.fairness.metric] if self.promotion.fairness else [],
        }
        for where, names in named.items():
            for name in names:
                if name not in known:
                    raise ValueError(
                        f"{where}: unknown metric '{name}' for task '{self.model.task}'; use one of {list(known)}"
                    )
        if self.promotion.fairness and not self.data.sensitive_attribute:
            raise ValueError("promotion.fairness needs data.sensitive_attribute to name the groups' column")
        target = self.data.columns[self.data.target]
        if self.model.task == "classification" and target.type not in ("int", "bool", "category"):
            raise ValueError(f"data.columns.{self.data.target}: a classification target must be int, bool or category")
        if self.model.task == "regression" and not target.is_numeric:
            raise ValueError(f"data.columns.{self.data.target}: a regression target must be int or float")
        return self

    @property
    def metric_names(self) -> list[str]:
        names = [self.metrics.primary, *self.metrics.report, *self.promotion.guards, *self.promotion.floors]
        if self.promotion.fairness:
            names.append(self.promotion.fairness.metric)
        return list(dict.fromkeys(names))


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"{source} is invalid ({error.error_count()} problem(s)):"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        seen = item.get("input")
        hint = "" if isinstance(seen, dict | list) or seen is None else f" (got {seen!r})"
        lines.append(f"  - {path}: {message}{hint}")
    lines.append(f"Fix these keys in {Path(source).name}; every key is described in docs/contract.md of the gitops-ml "
                 "repository, and `gitops-ml contract schema` prints its JSON Schema for your editor.")
    return "\n".join(lines)


def _not_json(value: object) -> Any:
    raise TypeError(f"{value!r} ({type(value).__name__})")


def parse_contract(raw: object, source: str = CONTRACT_FILE) -> Contract:
    """Validate a loaded contract document strictly, as JSON (see the module docstring for what converts)."""
    if not isinstance(raw, dict):
        raise ContractError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        document = json.dumps(raw, default=_not_json, allow_nan=False)
    except TypeError as error:
        raise ContractError(f"{source}: the value {error} is not text, a number, a boolean, a list or a mapping "
                            f"(YAML reads unquoted dates and times as such); quote it") from None
    except ValueError:
        raise ContractError(f"{source}: .nan and .inf are not allowed as values") from None
    try:
        return Contract.model_validate_json(document)
    except ValidationError as error:
        raise ContractError(_format_errors(source, error)) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of gitops-ml.yaml, for editors (yaml-language-server) and other tools."""
    schema = Contract.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "gitops-ml.yaml",
            "description": "The contract between a model repository and the gitops-ml actions; every key is "
                           "described in docs/contract.md.", **{k: v for k, v in schema.items() if k != "title"}}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def load_contract(path: str | Path = CONTRACT_FILE) -> Contract:
    path = Path(path)
    if path.is_dir():
        path = path / CONTRACT_FILE
    if not path.is_file():
        raise ContractError(f"{path}: contract file not found; run from the model repository root or pass --contract")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: not valid YAML: {error}") from None
    return parse_contract(raw, str(path))


def improvement(metric: str, new: float, old: float) -> float:
    """Signed improvement of `new` over `old`: positive is better whatever the metric's direction."""
    if math.isnan(new) or math.isnan(old):
        return math.nan
    return old - new if metric in LOWER_IS_BETTER else new - old
