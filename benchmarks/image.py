"""Image benchmark: how big the serving image is above its base image, and how fast it gets ready.

    make bench-image      (or: .venv/bin/python benchmarks/image.py [--estimator NAME ...] [--starts 5])

All real and all on this machine:
1. generates a model repository and fits the template's pipeline for each `--estimator` on its
   sample data exactly as the `train` stage does, saved as the MLflow model folder `build/model`
   (with registry.json), plus `build/golden.json` from held-out rows as `gitops-ml build-image`
   writes it;
2. builds the generated Dockerfile on the base-image stand-in (scripts/build-base-image.sh): the
   model is compiled to numpy and verified in the build stage;
3. prints, per estimator: MB of layers above the base image (the image's size minus the base's),
   whether scikit-learn is in the image, and time to ready over `--starts` cold starts: from the
   `docker start` call until `GET /ready` answers 200 (polled every 10 ms), median and max;
4. checks `/predict` on the golden rows returns the pipeline's offline predictions.

`--sklearn` also builds the same model without the compiled model (what the image was before, and
what a pipeline compiled.py does not cover gets), for comparison. Needs a Docker engine.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BASE_IMAGE = "gitops-ml/python-base:bookworm"
PROJECT = "bench-image"
PACKAGE = PROJECT.replace("-", "_")


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def project(workdir: Path) -> Path:
    from tests.conftest import bake

    return bake(workdir, project=PROJECT, task="classification")


def fit(root: Path, estimator: str, compiled: bool) -> None:
    """build/model and build/golden.json for `estimator`, as build-image leaves them."""
    import importlib
    import shutil

    import numpy as np
    import yaml
    from gitops_ml.core.contract import load_contract
    from gitops_ml.core.dataset import read_typed, target_array, to_matrix
    from gitops_ml.core.smoke import json_rows, pick_rows
    from gitops_ml.io.model_dir import save_model_dir
    from sklearn.model_selection import train_test_split

    if str(root / "src") not in sys.path:
        sys.path.insert(0, str(root / "src"))
    features = importlib.import_module(f"{PACKAGE}.features")
    contract = load_contract(root / "gitops-ml.yaml")
    frame = read_typed(root / contract.data.train, contract)
    train, test = train_test_split(frame, test_size=contract.data.test_size, random_state=contract.data.split_seed)
    params = yaml.safe_load((root / "params.yaml").read_text())["train"]
    pipeline = features.build_pipeline(contract, {**params, "estimator": estimator})
    pipeline.fit(to_matrix(train, contract.data.features), target_array(train, contract))
    build = root / "build"
    shutil.rmtree(build, ignore_errors=True)
    save_model_dir(pipeline, build / "model", contract)
    (build / "model" / "registry.json").write_text(json.dumps({"name": PROJECT, "version": "1"}))
    chosen = test.iloc[pick_rows(test[contract.data.features], 50)]
    proba = pipeline.predict_proba(to_matrix(chosen, contract.data.features))[:, 1]
    golden = {"rows": json_rows(chosen, contract.data.features),
              "predictions": pipeline.predict(to_matrix(chosen, contract.data.features)).tolist(),
              "probabilities": proba.tolist()}
    if compiled:
        (build / "golden.json").write_text(json.dumps(golden))
    else:  # no compiled model: make the build stage's compile step find an estimator it does not cover
        (build / "golden-offline.json").write_text(json.dumps(golden))
    assert np.isfinite(proba).all()


def size(client, tag: str) -> int:
    return client.images.get(tag).attrs["Size"]


def build(client, root: Path, tag: str, compiled: bool) -> float:
    started = time.perf_counter()
    dockerfile = None
    if not compiled:  # the same Dockerfile with the compile step skipped: scikit-learn serves the pipeline
        text = (root / "Dockerfile").read_text()
        text = text.replace(f"/opt/tools/bin/python -m {PACKAGE}.compiled", "true")
        (root / "Dockerfile.sklearn").write_text(text)
        dockerfile = "Dockerfile.sklearn"  # the Docker SDK always sends the Dockerfile named, .dockerignore or not
    client.images.build(path=str(root), tag=tag, dockerfile=dockerfile, buildargs={"BASE_IMAGE": BASE_IMAGE},
                        rm=True, forcerm=True)
    return time.perf_counter() - started


def time_to_ready(client, tag: str, port: int) -> float:
    container = client.containers.create(tag, ports={"8000/tcp": ("127.0.0.1", port)}, read_only=True,
                                         tmpfs={"/tmp": ""})
    try:
        started = time.perf_counter()
        container.start()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            if time.perf_counter() - started > 60:
                container.reload()
                raise RuntimeError(f"{tag} not ready within 60 s ({container.status}): "
                                   f"{container.logs(tail=20).decode(errors='replace')}")
            time.sleep(0.01)
    finally:
        container.remove(force=True)


def check_predictions(client, tag: str, port: int, root: Path) -> str:
    golden_file = root / "build" / ("golden.json" if (root / "build/golden.json").is_file() else "golden-offline.json")
    golden = json.loads(golden_file.read_text())
    container = client.containers.run(tag, detach=True, ports={"8000/tcp": ("127.0.0.1", port)}, read_only=True,
                                      tmpfs={"/tmp": ""})
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=json.dumps(
            {"rows": golden["rows"]}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            served = json.loads(response.read())
        labels = served["predictions"] == golden["predictions"]
        worst = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(served["probabilities"], golden["probabilities"],
                                                                        strict=True))
        has_sklearn = container.exec_run(["python3", "-c", "import sklearn"]).exit_code == 0
        return (f"labels {'equal' if labels else 'DIFFER'}, worst relative probability difference {worst:.1e}, "
                f"scikit-learn {'in' if has_sklearn else 'not in'} the image")
    finally:
        container.remove(force=True)


def main(argv: list[str] | None = None) -> int:
    import docker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimator", action="append", default=None,
                        help="logistic_regression | random_forest | hist_gradient_boosting (repeatable)")
    parser.add_argument("--starts", type=int, default=5, help="cold starts per image")
    parser.add_argument("--sklearn", action="store_true", help="also build the image without the compiled model")
    args = parser.parse_args(argv)
    estimators = args.estimator or ["logistic_regression", "random_forest", "hist_gradient_boosting"]

    client = docker.from_env()
    subprocess.run([str(ROOT / "scripts" / "build-base-image.sh"), BASE_IMAGE], check=True,
                   stdout=subprocess.DEVNULL)
    base = size(client, BASE_IMAGE)
    from tests.conftest import free_port

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        root = project(Path(workdir))
        variants = [(e, True) for e in estimators] + ([(estimators[0], False)] if args.sklearn else [])
        for estimator, compiled in variants:
            kind = "compiled" if compiled else "scikit-learn"
            tag = f"{PROJECT}:{estimator}-{kind}"
            log(f"{estimator} ({kind}): fit, build")
            fit(root, estimator, compiled)
            built_s = build(client, root, tag, compiled)
            above = (size(client, tag) - base) / 1e6
            starts = [time_to_ready(client, tag, free_port()) for _ in range(args.starts)]
            check = check_predictions(client, tag, free_port(), root)
            rows.append((estimator, kind, above, statistics.median(starts), max(starts), built_s, check))
            client.images.remove(tag, force=True)

    print(f"\nbase image {BASE_IMAGE}: {base / 1e6:.0f} MB; {args.starts} cold starts per image "
          "(docker start -> GET /ready 200)\n")
    print("| estimator | model served by | MB above base | ready, median s | ready, max s | build s | predictions |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for estimator, kind, above, median, worst, built_s, check in rows:
        print(f"| {estimator} | {kind} | {above:.0f} | {median:.2f} | {worst:.2f} | {built_s:.0f} | {check} |")
    failed = [r for r in rows if r[1] == "compiled" and (r[2] > 120 or r[3] > 1.0 or "DIFFER" in r[6]
                                                         or "not in" not in r[6])]
    if failed:
        print(f"\nTARGETS MISSED (<= 120 MB above base, ready <= 1.0 s, equal predictions, no scikit-learn): "
              f"{[r[0] for r in failed]}")
    return 1 if failed else 0 if all(math.isfinite(r[3]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
