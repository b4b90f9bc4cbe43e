"""The generated compiled.py: every estimator of params.yaml compiled to numpy, equal to its pipeline.

A generated repo (classification and regression) fits each estimator the template offers on its
sample data exactly as `train.py` does, saves it as the MLflow model folder `gitops-ml train`
registers, then compiles it. The compiled model must give the pipeline's labels and scores (within
1e-9) on the held-out rows, must load and predict in a process where scikit-learn and scipy cannot
be imported, and a compiled model that disagrees with its pipeline must never be written.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import read_typed, target_array, to_matrix
from gitops_ml.io.model_dir import save_model_dir
from sklearn.model_selection import train_test_split

from tests.conftest import bake

pytestmark = pytest.mark.slow

ESTIMATORS = {"classification": ["logistic_regression", "random_forest", "hist_gradient_boosting"],
              "regression": ["ridge", "random_forest", "hist_gradient_boosting"]}
NO_SKLEARN = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sklearn", "scipy", "skops", "joblib"):
            raise ImportError(f"{name} is not in the serving image")
sys.meta_path.insert(0, Refuse())
sys.path.insert(0, sys.argv[1])
import json, numpy as np
from {package}.serve import load, Predictor
loaded = load(sys.argv[2])
rows = json.load(open(sys.argv[3]))
predictor = Predictor(loaded)
print(json.dumps(predictor.predict_values(rows)))
"""


@pytest.fixture(scope="module", params=["classification", "regression"])
def project(request, tmp_path_factory):
    task = request.param
    root = bake(tmp_path_factory.mktemp(task), project=f"compiled-{task[:3]}", task=task)
    package = f"compiled_{task[:3]}"
    sys.path.insert(0, str(root / "src"))
    contract = load_contract(root / "gitops-ml.yaml")
    frame = read_typed(root / contract.data.train, contract)
    train, test = train_test_split(frame, test_size=contract.data.test_size, random_state=contract.data.split_seed)
    yield {"root": root, "task": task, "package": package, "contract": contract, "train": train, "test": test}
    sys.path.remove(str(root / "src"))


def fit(project, estimator, out):
    import importlib

    features = importlib.import_module(f"{project['package']}.features")
    params = yaml.safe_load((project["root"] / "params.yaml").read_text())["train"]
    contract = project["contract"]
    pipeline = features.build_pipeline(contract, {**params, "estimator": estimator})
    pipeline.fit(to_matrix(project["train"], contract.data.features), target_array(project["train"], contract))
    save_model_dir(pipeline, out, contract)
    return pipeline


def golden(project, pipeline, path):
    """Held-out rows (as JSON objects, missing as null) and the pipeline's offline answers."""
    features = project["contract"].data.features
    test = project["test"]
    rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in test[features].astype(object).to_dict("records")]
    path.write_text(json.dumps({"rows": rows}, default=lambda v: v.item()))
    return to_matrix(test, features)


@pytest.mark.parametrize("index", range(3))
def test_each_estimator_compiles_equal_to_its_pipeline_and_serves_without_scikit_learn(project, index, tmp_path):
    import importlib

    compiled = importlib.import_module(f"{project['package']}.compiled")
    serve = importlib.import_module(f"{project['package']}.serve")
    estimator = ESTIMATORS[project["task"]][index]
    folder = tmp_path / "model"
    pipeline = fit(project, estimator, folder)
    held_out = golden(project, pipeline, tmp_path / "golden.json")

    assert compiled.main([str(folder), "--golden", str(tmp_path / "golden.json")]) == 0
    assert (folder / compiled.META).is_file() and (folder / compiled.ARRAYS).is_file()

    model = serve.load(str(folder)).model
    assert getattr(model, "compiled", False)  # serving picks the compiled model when it is there
    if project["task"] == "classification":
        expected = pipeline.predict_proba(held_out)
        np.testing.assert_allclose(model.predict_proba(held_out), expected, rtol=1e-9, atol=1e-12)
        assert (model.predict(held_out) == pipeline.predict(held_out)).all()
    else:
        np.testing.assert_allclose(model.predict(held_out), pipeline.predict(held_out), rtol=1e-9, atol=1e-12)

    # In a process that cannot import scikit-learn or scipy, the compiled model serves the same answers.
    rows = held_out[:40].tolist()
    rows = [[None if isinstance(v, float) and np.isnan(v) else v for v in row] for row in rows]
    (tmp_path / "rows.json").write_text(json.dumps([[np.nan if v is None else v for v in r] for r in rows]))
    out = subprocess.run([sys.executable, "-c", NO_SKLEARN.replace("{package}", project["package"]),
                          str(project["root"] / "src"), str(folder), str(tmp_path / "rows.json")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    served = json.loads(out.stdout)
    in_process = serve.Predictor(serve.load(str(folder))).predict_values(held_out[:40].tolist())
    assert served["predictions"] == in_process["predictions"]
    if project["task"] == "classification":
        np.testing.assert_allclose(served["probabilities"], pipeline.predict_proba(held_out[:40])[:, 1], rtol=1e-9)
    else:
        np.testing.assert_allclose(served["predictions"], pipeline.predict(held_out[:40]), rtol=1e-9)


def test_a_compiled_model_that_differs_is_refused_and_nothing_is_written(project, tmp_path, capsys, monkeypatch):
    import importlib

    compiled = importlib.import_module(f"{project['package']}.compiled")
    folder = tmp_path / "model"
    fit(project, ESTIMATORS[project["task"]][0], folder)
    real = compiled.compile_pipeline

    def off_by_a_little(*args):
        meta, arrays = real(*args)
        return meta, {**arrays, "intercept": arrays["intercept"] + 1e-6}

    monkeypatch.setattr(compiled, "compile_pipeline", off_by_a_little)
    assert compiled.main([str(folder)]) == 1
    assert "differs from the pipeline on probe rows" in capsys.readouterr().err
    assert not (folder / compiled.META).exists() and not (folder / compiled.ARRAYS).exists()


def test_a_pipeline_it_cannot_compile_is_left_to_scikit_learn(project, tmp_path, capsys):
    import importlib

    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVR

    compiled = importlib.import_module(f"{project['package']}.compiled")
    pipeline = fit(project, ESTIMATORS[project["task"]][0], tmp_path / "fitted")
    other = Pipeline([("preprocess", pipeline[0]), ("model", SVR())])
    contract = project["contract"]
    other.fit(to_matrix(project["train"], contract.data.features),
              target_array(project["train"], contract).astype(float))
    save_model_dir(other, tmp_path / "model", contract)

    assert compiled.main([str(tmp_path / "model")]) == 0
    assert "not compiled (estimator SVR is not one the compiled format covers)" in capsys.readouterr().out
    assert not (tmp_path / "model" / compiled.META).exists()
