"""The drift engine: Evidently's per-column KS and chi-square tests, computed by DuckDB over files.

Evidently holds both datasets in pandas and sorts each column in numpy: on 1M rows x 30 columns that
is minutes and gigabytes. The tests only need aggregates, so DuckDB computes them where the data lies
(CSV, Parquet or the prediction log's JSONL), spilling to disk past `memory_limit`:

- KS: the counts of each distinct value in both samples, cumulated in value order (a sort-merge of
  the two samples), give ECDF(reference) - ECDF(current) at every point scipy evaluates; its extremes
  and the two sizes give scipy's statistic and p-value (`core.drift.ks_asymptotic`). Samples small
  enough for scipy's exact method are fetched and handed to scipy itself.
- chi-square: the category counts of both samples (`core.drift.chisquare_counts`).

Values are read the way data-check reads a CSV (every value text, pandas' missing-value markers
missing), numbers parsed from that text; missing and infinite values are left out, as Evidently does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.core.drift import (
    CHISQUARE,
    KS,
    KS_EXACT_MAX_N,
    ColumnTest,
    DriftResult,
    chisquare_counts,
    decide_tests,
    ks_asymptotic,
    ks_small,
)
from gitops_ml.errors import GitopsMLError

MEMORY_LIMIT = "1GB"
# pandas.read_csv's default missing-value markers (pandas._libs.parsers.STR_NA_VALUES), so a CSV means
# here what it means to data-check and to Evidently.
NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
             "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


class DriftDataError(GitopsMLError):
    """A dataset the drift engine was given cannot be read as a table with the contract's columns."""


def quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def number_sql(column: str) -> str:
    """A column's values as DOUBLE the way pandas.to_numeric reads the text: unparseable or infinite is missing
    (DuckDB alone would also accept digit separators such as 1_000, which pandas does not)."""
    text = f"TRIM(CAST({column} AS VARCHAR))"
    return (f"CASE WHEN NOT contains({text}, '_') AND isfinite(TRY_CAST({text} AS DOUBLE)) "
            f"THEN TRY_CAST({text} AS DOUBLE) END")


def _read_csv(files: Sequence[str], types: dict[str, str] | None) -> str:
    """read_csv as pandas reads a CSV for data-check: text, with pandas' missing-value markers."""
    listed = "[" + ", ".join(quote_text(f) for f in files) + "]"
    nulls = "[" + ", ".join(quote_text(v) for v in NA_VALUES) + "]"
    kinds = ("all_varchar = true" if types is None else
             "all_varchar = true, types = {" + ", ".join(f"{quote_text(k)}: {quote_text(v)}" for k, v in types.items())
             + "}")
    return (f"read_csv({listed}, header = true, {kinds}, delim = ',', quote = '\"', escape = '\"', "
            f"nullstr = {nulls}, union_by_name = true)")


@dataclass(frozen=True)
class Table:
    """A dataset as a DuckDB relation (`sql` is a FROM-clause expression); a CSV's columns are all text."""

    sql: str
    shown: str  # how reports name it
    csv_files: tuple[str, ...] = ()  # set for CSV input, so `typed` can read it again with column types

    @staticmethod
    def csv(paths: Path | Sequence[Path], shown: str | None = None) -> Table:
        files = tuple(str(p) for p in ([paths] if isinstance(paths, Path) else paths))
        return Table(_read_csv(files, None), shown or ", ".join(files), files)

    def typed(self, types: dict[str, str]) -> Table | None:
        """The same CSV with these columns parsed by the reader (None for other inputs)."""
        return Table(_read_csv(self.csv_files, types), self.shown, self.csv_files) if self.csv_files else None

    @staticmethod
    def parquet(paths: Path | Sequence[Path], shown: str | None = None) -> Table:
        files = [paths] if isinstance(paths, Path) else list(paths)
        listed = "[" + ", ".join(quote_text(str(p)) for p in files) + "]"
        return Table(f"read_parquet({listed}, union_by_name = true)", shown or ", ".join(map(str, files)))

    @staticmethod
    def file(path: Path, shown: str | None = None) -> Table:
        """A CSV or Parquet file, or a folder of them (by extension; CSV when both)."""
        if path.is_dir():
            csvs, parquets = sorted(path.rglob("*.csv")), sorted(path.rglob("*.parquet"))
            if not csvs and not parquets:
                raise DriftDataError(f"{path}: the folder holds no .csv or .parquet files")
            return Table.csv(csvs, shown or str(path)) if csvs else Table.parquet(parquets, shown or str(path))
        if not path.is_file():
            raise DriftDataError(f"{path}: no such file or folder; check the path (and run `dvc pull` if DVC "
                                 "tracks it)")
        if path.suffix.lower() == ".parquet":
            return Table.parquet(path, shown)
        return Table.csv(path, shown)


@dataclass(frozen=True)
class Measured:
    tests: tuple[ColumnTest, ...]
    n_reference: int
    n_current: int


class Engine:
    """One DuckDB connection with bounded memory; the two datasets are loaded once into typed tables."""

    def __init__(self, memory_limit: str = MEMORY_LIMIT, threads: int | None = None, workdir: Path | None = None):
        import duckdb

        self._tmp = tempfile.TemporaryDirectory(prefix="gitops-ml-drift-", dir=workdir)
        self.db = duckdb.connect(":memory:")  # spills to temp_directory beyond memory_limit
        self.db.execute(f"SET memory_limit = {quote_text(memory_limit)}")
        self.db.execute(f"SET temp_directory = {quote_text(str(Path(self._tmp.name) / 'spill'))}")
        self.db.execute("SET preserve_insertion_order = false")
        if threads:
            self.db.execute(f"SET threads = {int(threads)}")

    def close(self) -> None:
        self.db.close()
        self._tmp.cleanup()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def columns_of(self, table: Table) -> list[str]:
        import duckdb

        try:
            return [row[0] for row in self.db.execute(f"DESCRIBE SELECT * FROM {table.sql}").fetchall()]
        except duckdb.Error as error:
            raise DriftDataError(f"{table.shown}: cannot be read as a table: {str(error).splitlines()[0]}") from None

    def load(self, name: str, table: Table, numeric: Iterable[str], categorical: Iterable[str]) -> int:
        """Copy the columns into table `name`: numbers as DOUBLE (unparseable or infinite: missing), categories
        as text. Returns the row count.

        A CSV is first read with the numeric columns parsed by DuckDB's CSV reader (fast); when a value there
        is not a number, it is read again as text and each value parsed on its own, so one bad value makes
        only that value missing, as in pandas.
        """
        import duckdb

        have = set(self.columns_of(table))
        numeric, categorical = list(numeric), list(categorical)
        missing = [c for c in numeric + categorical if c not in have]
        if missing:
            raise DriftDataError(f"{table.shown}: column(s) {missing} missing (it has {sorted(have)})")
        typed = table.typed({c: "DOUBLE" for c in numeric})
        parts = [f"CASE WHEN isfinite({quote_ident(c)}) THEN {quote_ident(c)} END AS {quote_ident(c)}" for c in numeric]
        parts += [f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in categorical]
        create = f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT {', '.join(parts)} FROM "
        try:
            if typed is None:
                raise duckdb.ConversionException("not a CSV")
            self.db.execute(create + typed.sql)
        except duckdb.Error:
            parts = [f"{number_sql(quote_ident(c))} AS {quote_ident(c)}" for c in numeric]
            parts += [f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in categorical]
            try:
                self.db.execute(f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT {', '.join(parts)} "
                                f"FROM {table.sql}")
            except duckdb.Error as error:
                raise DriftDataError(f"{table.shown}: cannot be read: {str(error).splitlines()[0]}") from None
        return int(self.db.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0])

    def sample(self, name: str, rows: int, seed: int = 0):
        """A uniform random sample of at most `rows` rows of a loaded table, as pandas (for the HTML report)."""
        return self.db.execute(f"SELECT * FROM {quote_ident(name)} USING SAMPLE reservoir({int(rows)} ROWS) "
                               f"REPEATABLE ({int(seed)})").df()

    def ks(self, column: str, reference: str = "reference", current: str = "current",
           threshold: float | None = None) -> ColumnTest:
        c = quote_ident(column)
        n1, n2 = (int(self.db.execute(f"SELECT count({c}) FROM {quote_ident(t)}").fetchone()[0])
                  for t in (reference, current))
        if min(n1, n2) == 0:
            return ColumnTest(column, KS, float("nan"), float("nan"), n1, n2)
        if max(n1, n2) <= KS_EXACT_MAX_N:
            ref, cur = (
                [row[0] for row in
                 self.db.execute(f"SELECT {c} FROM {quote_ident(t)} WHERE {c} IS NOT NULL").fetchall()]
                for t in (reference, current))
            d, p = ks_small(ref, cur)
            return ColumnTest(column, KS, d, p, n1, n2)
        # ECDF(reference) - ECDF(current) at every distinct value, as scipy computes it: i/n1 - j/n2 in float64
        d_max, d_min = self.db.execute(f"""
            WITH counts AS (
                SELECT v, sum(r) AS r, sum(k) AS k FROM (
                    SELECT {c} AS v, 1 AS r, 0 AS k FROM {quote_ident(reference)} WHERE {c} IS NOT NULL
                    UNION ALL
                    SELECT {c} AS v, 0 AS r, 1 AS k FROM {quote_ident(current)} WHERE {c} IS NOT NULL)
                GROUP BY v),
            diffs AS (
                SELECT CAST(sum(r) OVER w AS DOUBLE) / {float(n1)!r} - CAST(sum(k) OVER w AS DOUBLE) / {float(n2)!r}
                       AS diff
                FROM counts WINDOW w AS (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
            SELECT max(diff), min(diff) FROM diffs""").fetchone()
        d, p, exact = ks_asymptotic(float(d_max), float(d_min), n1, n2, threshold)
        return ColumnTest(column, KS, d, p, n1, n2, exact)

    def counts(self, column: str, table: str) -> dict[str, int]:
        c = quote_ident(column)
        rows = self.db.execute(f"SELECT {c}, count(*) FROM {quote_ident(table)} WHERE {c} IS NOT NULL GROUP BY {c}")
        return {value: int(n) for value, n in rows.fetchall()}

    def chisquare(self, column: str, reference: str = "reference", current: str = "current") -> ColumnTest:
        ref, cur = self.counts(column, reference), self.counts(column, current)
        n1, n2 = sum(ref.values()), sum(cur.values())
        if min(n1, n2) == 0:
            return ColumnTest(column, CHISQUARE, float("nan"), float("nan"), n1, n2)
        stat, p = chisquare_counts(ref, cur)
        return ColumnTest(column, CHISQUARE, stat, p, n1, n2)


def measure(reference: Table, current: Table, numeric: Sequence[str], categorical: Sequence[str], *,
            threshold: float | None = None, memory_limit: str = MEMORY_LIMIT, engine: Engine | None = None) -> Measured:
    """Every column's test, numeric columns first then categorical, each in the order given. With the drift
    `threshold`, KS p-values far below it come from Kolmogorov's limit (fast; same decisions)."""
    own = engine is None
    engine = engine or Engine(memory_limit)
    try:
        n_reference = engine.load("reference", reference, numeric, categorical)
        n_current = engine.load("current", current, numeric, categorical)
        tests = [engine.ks(c, threshold=threshold) for c in numeric] + [engine.chisquare(c) for c in categorical]
        return Measured(tuple(tests), n_reference, n_current)
    finally:
        if own:
            engine.close()


def feature_split(contract: Contract) -> tuple[list[str], list[str]]:
    """The contract's features in contract order: numeric (KS) and categorical (chi-square)."""
    numeric = [c for c in contract.data.features if contract.data.columns[c].is_numeric]
    return numeric, [c for c in contract.data.features if c not in numeric]


def measure_contract(reference: Table, current: Table, contract: Contract, html_path: Path | None = None, *,
                     memory_limit: str = MEMORY_LIMIT) -> tuple[DriftResult, Measured]:
    """Drift of the contract's features, decided as Evidently decides it; Evidently's HTML report (on a sample
    of `HTML_SAMPLE_ROWS` rows of each) written to `html_path` when given."""
    numeric, categorical = feature_split(contract)
    threshold = contract.drift.column_threshold
    with Engine(memory_limit) as engine:
        measured = measure(reference, current, numeric, categorical, threshold=threshold, engine=engine)
        if html_path is not None:
            from gitops_ml.io.evidently_drift import HTML_SAMPLE_ROWS, save_html

            save_html(engine.sample("reference", HTML_SAMPLE_ROWS), engine.sample("current", HTML_SAMPLE_ROWS),
                      contract, html_path)
    return decide_tests(measured.tests, threshold, contract.drift.max_drifted_share), measured
