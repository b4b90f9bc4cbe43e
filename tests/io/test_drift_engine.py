"""The DuckDB drift engine against scipy and against Evidently itself, on real files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from gitops_ml.core.drift import CHISQUARE, KS, ks_asymptotic, ks_probe
from gitops_ml.io.csv_input import read_strings
from gitops_ml.io.drift_engine import DriftDataError, Engine, Table, measure, measure_contract
from gitops_ml.io.evidently_drift import measure_drift
from scipy import stats

from tests import template_files


def _two_columns(tmp_path, n_ref: int, n_cur: int, shift: float, seed: int = 0, decimals: int = 2):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"x": rng.normal(0, 1, n_ref).round(decimals),
                        "k": rng.choice(["a", "b", "c"], n_ref, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"x": rng.normal(shift, 1, n_cur).round(decimals),
                        "k": rng.choice(["a", "b", "c", "d"], n_cur, p=[0.45, 0.3, 0.2, 0.05])})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return ref, cur


@pytest.mark.parametrize(("n_ref", "n_cur", "shift"), [(300, 500, 0.0), (2000, 1500, 0.2), (30_000, 12_000, 0.0),
                                                       (20_000, 25_000, 0.03)],
                         ids=["small", "small drifted", "large (asymptotic)", "large drifted"])
def test_ks_is_scipys_ks_2samp_bit_for_bit(tmp_path, n_ref, n_cur, shift):
    """Ties included (values rounded): the same statistic and p-value as scipy, exact method or asymptotic."""
    ref, cur = _two_columns(tmp_path, n_ref, n_cur, shift)
    expected = stats.ks_2samp(ref["x"], cur["x"])
    (test, chi) = measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x"], ["k"]).tests
    assert (test.test, test.n_reference, test.n_current) == (KS, n_ref, n_cur)
    assert test.statistic == float(expected.statistic)
    assert test.p_value == float(expected.pvalue)
    assert test.exact
    assert chi.test == CHISQUARE


def test_chisquare_is_evidentlys_scaled_chisquare_over_the_union_of_categories(tmp_path):
    ref, cur = _two_columns(tmp_path, 4000, 3000, 0.0)
    keys = ["a", "b", "c", "d"]  # "d" only in the current data: an infinite statistic, p = 0
    ref_counts, cur_counts = ref["k"].value_counts(), cur["k"].value_counts()
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = stats.chisquare([cur_counts.get(k, 0) for k in keys],
                                   [ref_counts.get(k, 0) * len(cur) / len(ref) for k in keys])
    chi = measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x"], ["k"]).tests[1]
    assert chi.p_value == float(expected.pvalue) == 0.0
    # without the new category, a finite statistic
    cur[cur["k"] != "d"].to_csv(tmp_path / "cur.csv", index=False)
    kept = cur[cur["k"] != "d"]["k"].value_counts()
    expected = stats.chisquare([kept[k] for k in keys[:3]], [ref_counts[k] * kept.sum() / len(ref) for k in keys[:3]])
    chi = measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x"], ["k"]).tests[1]
    assert chi.statistic == pytest.approx(float(expected.statistic), rel=1e-12)
    assert chi.p_value == pytest.approx(float(expected.pvalue), rel=1e-9)


def test_values_mean_what_they_mean_to_pandas(tmp_path):
    """Missing markers, unparseable and infinite numbers are left out, as data-check + Evidently do."""
    text = "x,k\n1,a\nNA,b\n,NA\nabc,c\ninf,a\n 2 ,a\n1_0,b\n3.5,n/a\n-inf,c\n4,a\n"
    for name in ("ref.csv", "cur.csv"):
        (tmp_path / name).write_text(text)
    frame = read_strings(tmp_path / "ref.csv")
    numbers = pd.to_numeric(frame["x"], errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
    categories = frame["k"].dropna()
    ks, chi = measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x"], ["k"]).tests
    assert ks.n_reference == len(numbers) == 4  # 1, 2, 3.5, 4
    assert chi.n_reference == len(categories) == 8
    assert ks.p_value == 1.0 and chi.p_value == 1.0


def test_parquet_and_folders_read_like_csv(tmp_path):
    ref, cur = _two_columns(tmp_path, 3000, 3000, 0.1)
    folder = tmp_path / "parts"
    folder.mkdir()
    cur.iloc[:1000].astype(str).to_parquet(folder / "a.parquet")
    cur.iloc[1000:].astype(str).to_parquet(folder / "b.parquet")
    from_csv = measure(Table.file(tmp_path / "ref.csv"), Table.file(tmp_path / "cur.csv"), ["x"], ["k"]).tests
    from_folder = measure(Table.file(tmp_path / "ref.csv"), Table.file(folder), ["x"], ["k"]).tests
    assert [(t.statistic, t.p_value) for t in from_csv] == [(t.statistic, t.p_value) for t in from_folder]


def test_bad_inputs_are_named(tmp_path):
    _two_columns(tmp_path, 50, 50, 0.0)
    with pytest.raises(DriftDataError, match="missing"):
        measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x", "y"], ["k"])
    with pytest.raises(DriftDataError, match="no such file"):
        Table.file(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DriftDataError, match="no .csv or .parquet"):
        Table.file(tmp_path / "empty")


def test_an_all_missing_column_is_uncomputable_so_it_counts_as_drift(tmp_path):
    (tmp_path / "ref.csv").write_text("x,k\n1,a\n2,b\n")
    (tmp_path / "cur.csv").write_text("x,k\nNA,\n,\n")
    ks, chi = measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x"], ["k"]).tests
    assert math.isnan(ks.p_value) and math.isnan(chi.p_value)


@pytest.mark.parametrize("en", [5_500.0, 500_000.0, 5_000_000.0])
def test_the_ks_probe_sits_just_past_the_threshold(en):
    """Every D at or past the probe has p <= threshold (kstwo.sf decreases in D); 1% less does not."""
    d = ks_probe(en, 0.05)
    assert stats.distributions.kstwo.sf(d, en) <= 0.05 < stats.distributions.kstwo.sf(d / 1.011, en)


def test_ks_far_past_the_threshold_decides_like_scipy():
    n = 1_000_000
    for d in (0.001, 0.0019, 0.002, 0.0025, 0.004):
        exact_d, exact_p, exact = ks_asymptotic(d, 0.0, n, n)
        fast_d, fast_p, fast_exact = ks_asymptotic(d, 0.0, n, n, threshold=0.05)
        assert exact and exact_d == fast_d == d
        assert (exact_p <= 0.05) == (fast_p <= 0.05)
        if not fast_exact:
            assert fast_p == pytest.approx(exact_p, rel=0.05)


@pytest.mark.parametrize("drift", [0.0, 0.3, 1.0])
def test_the_engine_decides_exactly_as_evidently(tmp_path, drift):
    """The template's simulated production data against its sample: every column's decision and the dataset's."""
    contract = template_files.contract()
    reference = template_files.sample_csv()
    current = tmp_path / "current.csv"
    template_files.simulate(1500, seed=3, drift=drift).to_csv(current, index=False)
    evidently = measure_drift(read_strings(reference), read_strings(current), contract)
    html = tmp_path / "drift.html"
    engine, measured = measure_contract(Table.file(reference), Table.file(current), contract, html)
    assert engine.drifted is evidently.drifted
    assert [(c.column, c.drifted) for c in engine.columns] == [(c.column, c.drifted) for c in evidently.columns]
    for ours, theirs in zip(engine.columns, evidently.columns, strict=True):
        assert ours.score == pytest.approx(theirs.score, rel=1e-9, abs=1e-300)
    assert measured.n_current == 1500
    assert html.stat().st_size > 10_000
    if drift == 1.0:
        assert engine.drifted
    if drift == 0.0:
        assert not engine.drifted


def test_memory_stays_bounded_by_the_limit(tmp_path):
    """The engine runs under a small memory limit (DuckDB spills); the answer does not change."""
    ref, cur = _two_columns(tmp_path, 60_000, 60_000, 0.02, decimals=6)
    expected = stats.ks_2samp(ref["x"], cur["x"])
    with Engine(memory_limit="64MB") as engine:
        test = measure(Table.csv(tmp_path / "ref.csv"), Table.csv(tmp_path / "cur.csv"), ["x"], ["k"],
                       engine=engine).tests[0]
        assert engine.db.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("61")
    assert test.statistic == float(expected.statistic) and test.p_value == float(expected.pvalue)
