"""Deduplicating large synthetic people tables: skrecordpair beside Splink.

For each size of `--sizes`, a table of synthetic people with known truth
(``make_synthetic_people.make_people_table``: FEBRL-like fields, typos and
missing values, 30 % of the people with 1 to 3 corrupted copies) is
deduplicated, in the same run, by

``skrecordpair``
    ``deduplicate(table, NearestNeighborBlocker(), model)`` with the
    similarity model (``SimilarityFeatures()`` + ``HistGradientBoosting
    Classifier()``), trained beforehand on the blocker's candidates of another
    table of 10,000 records (another seed) labelled from its truth; its
    training time is reported apart.
``splink``
    Splink on DuckDB, with the settings of its FEBRL-style examples (name,
    date of birth, address and id comparisons; five blocking rules), its
    model estimated without labels (u by random sampling, m by expectation
    maximisation), pairs predicted and clustered at match probability 0.9.
``skrecordpair, dask (W workers)``
    With `--dask-workers`: ``skrecordpair.dask.deduplicate`` of the same
    table on a ``distributed.LocalCluster`` of W single-threaded worker
    processes (at `--dask-size` records only).

Each engine runs in a fresh process (so the peak memory, VmHWM, is its own;
for dask, that of the client process only, not of its workers),
timed from the table in memory to the clusters in memory. Accuracy is
pairwise: the pairs of records put in one cluster against the pairs of
records of one person (precision, recall, F1); pair completeness is the
share of the true pairs among the pairs the engine scored (skrecordpair's
blocker candidates; Splink's comparisons are counted, not kept).

Splink is a benchmark dependency only: ``pip install splink``.

Usage::

    python benchmarks/scale.py --sizes 10000 100000
    python benchmarks/scale.py --sizes 1000000 --dask-workers 1 2 --dask-size 1000000
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import tempfile
import time
from pathlib import Path
from queue import Empty

import pandas as pd
from _bench import Run, add_arguments, peak_mb
from make_synthetic_people import make_people_table
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline

from skrecordpair import NearestNeighborBlocker, SimilarityFeatures, pair_frame

TRAINING_RECORDS = 10_000
SPLINK_THRESHOLD = 0.9


# ------------------------------------------------------------------ accuracy
def _pairs(n):
    return n * (n - 1) // 2


def pairwise(clusters, entity):
    """Pairwise precision, recall and F1 of `clusters` against `entity`."""
    both = pd.DataFrame({"c": clusters.reindex(entity.index), "e": entity})
    if both["c"].isna().any():
        missing = int(both["c"].isna().sum())
        raise ValueError(f"{missing} records have no cluster")
    tp = _pairs(both.groupby(["c", "e"]).size().to_numpy()).sum()
    predicted = _pairs(both.groupby("c").size().to_numpy()).sum()
    true = _pairs(both.groupby("e").size().to_numpy()).sum()
    p = tp / predicted if predicted else 0.0
    r = tp / true if true else 0.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "true_pairs": int(true),
    }


def completeness(scored, entity):
    """Share of the true pairs among the scored pairs (left_id, right_id)."""
    same = (
        entity.loc[scored["left_id"]].to_numpy()
        == entity.loc[scored["right_id"]].to_numpy()
    )
    found = pd.DataFrame(
        {
            "a": scored["left_id"].to_numpy()[same],
            "b": scored["right_id"].to_numpy()[same],
        }
    )
    found = found.assign(lo=found.min(axis=1), hi=found.max(axis=1))
    true = _pairs(entity.value_counts().to_numpy()).sum()
    return len(found.drop_duplicates(["lo", "hi"])) / true if true else 1.0


# ------------------------------------------------------------------- engines
def train_model(seed):
    """The similarity model, fitted on the blocker's candidates of another
    synthetic table labelled from its truth."""
    table, entity = make_people_table(TRAINING_RECORDS, seed=seed)
    c = NearestNeighborBlocker().fit(table).candidates()
    y = entity.loc[c.left_id].to_numpy() == entity.loc[c.right_id].to_numpy()
    model = make_pipeline(
        SimilarityFeatures(), HistGradientBoostingClassifier(random_state=0)
    )
    return model.fit(pair_frame(table.loc[c.left_id], table.loc[c.right_id]), y)


def run_skrecordpair(table, model_path):
    from skrecordpair import deduplicate

    model = pickle.loads(Path(model_path).read_bytes())
    start = time.perf_counter()
    clusters, scored = deduplicate(
        table, NearestNeighborBlocker(), model, return_pairs="all"
    )
    seconds = time.perf_counter() - start
    return clusters, {"seconds": seconds, "pairs_scored": len(scored)}, scored


def run_dask(table, model_path, workers):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import skrecordpair.dask

    model = pickle.loads(Path(model_path).read_bytes())
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        ddf = dd.from_pandas(table, npartitions=8 * workers, sort=True)
        clusters = skrecordpair.dask.deduplicate(
            ddf, NearestNeighborBlocker(), model, client=client
        ).compute()
        seconds = time.perf_counter() - start
    return clusters, {"seconds": seconds}, None


def run_splink(table):
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    df = table.reset_index()
    start = time.perf_counter()
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="id",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.LevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.ExactMatch("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("postcode", "street_number"),
            block_on("soc_sec_id"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(DuckDBAPI().register(df), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("surname")
    )
    predictions = linker.inference.predict(threshold_match_probability=SPLINK_THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, SPLINK_THRESHOLD
    ).as_pandas_dataframe()
    seconds = time.perf_counter() - start
    clusters = clusters.set_index("id")["cluster_id"]
    return clusters, {"seconds": seconds}, None


def _child(engine, table_path, model_path, workers, queue):
    table = pd.read_parquet(table_path)
    if engine == "skrecordpair":
        clusters, figures, scored = run_skrecordpair(table, model_path)
    elif engine == "splink":
        clusters, figures, scored = run_splink(table)
    else:
        clusters, figures, scored = run_dask(table, model_path, workers)
    figures["peak_mb"] = peak_mb()
    queue.put((clusters, figures, scored))


def in_fresh_process(engine, table_path, model_path, workers=None):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_child, args=(engine, table_path, model_path, workers, queue)
    )
    process.start()
    while True:  # a child that dies puts nothing: do not wait for it forever
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"{engine} failed (exit code {process.exitcode}); see above"
                ) from None
    process.join()
    return result


# ---------------------------------------------------------------------- main
def main(argv=None):
    parser = add_arguments(
        argparse.ArgumentParser(description=__doc__.split("\n")[0]), data=False
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["skrecordpair", "splink"],
        choices=["skrecordpair", "splink"],
    )
    parser.add_argument("--dask-workers", nargs="*", type=int, default=[])
    parser.add_argument("--dask-size", type=int, default=None)
    args = parser.parse_args(argv)
    run = Run("scale", args, argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model = train_model(seed=1)
        run.results["training_seconds"] = time.perf_counter() - start
        model_path = Path(tmp) / "model.pkl"
        model_path.write_bytes(pickle.dumps(model))
        print(f"model trained in {run.results['training_seconds']:.1f} s", flush=True)
        jobs = [(n, engine, None) for n in args.sizes for engine in args.engines]
        jobs += [(args.dask_size, "dask", w) for w in args.dask_workers]
        tables = {}
        for n, engine, workers in jobs:
            if n not in tables:
                table, entity = make_people_table(n, seed=0)
                path = Path(tmp) / f"people-{n}.parquet"
                table.to_parquet(path)
                tables[n] = (path, entity)
            path, entity = tables[n]
            clusters, figures, scored = in_fresh_process(
                engine, path, model_path, workers
            )
            figures.update(pairwise(clusters, entity))
            if scored is not None:
                figures["pair_completeness"] = completeness(scored, entity)
            figures["records"] = len(entity)
            name = (
                engine if workers is None else f"skrecordpair, dask ({workers} workers)"
            )
            run.results.setdefault(str(n), {})[name] = figures
            print(
                f"{len(entity):>9,} records | {name}: {figures['seconds']:.1f} s, "
                f"peak {figures['peak_mb'] / 1024:.2f} GiB, F1 {figures['f1']:.4f} "
                f"(P {figures['precision']:.4f}, R {figures['recall']:.4f})"
                + (
                    f", {figures['pairs_scored']:,} pairs scored, pair completeness "
                    f"{figures['pair_completeness']:.4f}"
                    if "pairs_scored" in figures
                    else ""
                ),
                flush=True,
            )
            run.write()


if __name__ == "__main__":
    main()
