"""Throughput and peak memory of ``RecordPairClassifier.predict_proba`` at scale.

Trains the *default* model briefly on a three-field schema (the ER-Magellan
``amazon_google`` benchmark: title, manufacturer, price), writes it with
:meth:`~skrecordpair.RecordPairClassifier.save`, then scores 10k, 100k and 1M
pairs, each size in a fresh subprocess so that the peaks do not mix. Each
subprocess

1. loads the model and records its resident memory (RSS): the *model
   footprint*, which includes the Python interpreter, torch and pandas;
2. builds the pair frame of ``n`` candidate pairs, each a left and a right
   record of the benchmark drawn independently (the frame holds references to
   the same few thousand Python strings, not ``n`` new ones; it is part of the
   input and is counted);
3. resets the kernel's high-water mark (``/proc/self/clear_refs``) and calls
   ``predict_proba`` once on the whole frame, timing it;
4. reports the peak RSS of the scoring call (``VmHWM``) and that peak minus
   the model footprint ("peak above model"), bounded by `--budget-mb`
   (2 GB for a million pairs).

With ``--synthetic`` instead of ``--data``, synthetic product records with the
same three fields stand in for the benchmark. The figures go to a JSON file
(``benchmarks/results/`` unless `--out`).

Usage::

    python benchmarks/scoring_memory.py --data /work/shared/data/magellan --threads 1
    python benchmarks/scoring_memory.py --data /work/shared/data/magellan \\
        --sizes 2000 --train-pairs 300 --out /tmp/results      # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _bench import (
    RESULTS,
    Run,
    magellan_folder,
    peak_mb,
    resampled_pair_frame,
    reset_peak,
    rss_mb,
)

FIELDS = ("title", "manufacturer", "price")


def load_pairs(data, dataset):
    """Left and right frames (the three fields) and labels."""
    if data is None:
        return (*_synthetic_products(6000), "synthetic")
    from skrecordpair.datasets import load_magellan

    folder = magellan_folder(data, dataset)
    bunch = load_magellan(folder)
    parts = [bunch.train, bunch.valid, bunch.test]
    left = pd.concat([p[0] for p in parts], ignore_index=True)
    right = pd.concat([p[1] for p in parts], ignore_index=True)
    y = np.concatenate([p[2] for p in parts])
    return left[list(FIELDS)], right[list(FIELDS)], y, str(folder)


def _synthetic_products(n, seed=0):
    rng = np.random.default_rng(seed)
    brands = [
        "sony",
        "adobe",
        "microsoft",
        "apple",
        "canon",
        "nikon",
        "hp",
        "intuit",
        "symantec",
        "logitech",
        "corel",
        "autodesk",
    ]
    words = [
        "photo",
        "studio",
        "pro",
        "home",
        "office",
        "suite",
        "premium",
        "deluxe",
        "camera",
        "lens",
        "digital",
        "upgrade",
        "license",
        "edition",
        "v2",
        "mac",
        "win",
        "dvd",
        "box",
        "small",
        "business",
        "server",
    ]

    def title():
        k = rng.integers(3, 9)
        return (
            " ".join(rng.choice(words, k))
            + f" {rng.integers(1, 20)}.{rng.integers(0, 9)}"
        )

    items = pd.DataFrame(
        {
            "title": [title() for _ in range(n)],
            "manufacturer": rng.choice(brands, n),
            "price": [f"{p:.2f}" for p in rng.gamma(2.0, 60.0, n)],
        }
    )
    items.loc[rng.random(n) < 0.3, "manufacturer"] = None
    y = (rng.random(n) < 0.2).astype(int)
    other = rng.permutation(n)
    right = items.iloc[np.where(y == 1, np.arange(n), other)].reset_index(drop=True)
    right["title"] = [
        t.replace(" ", "  ", 1) if rng.random() < 0.5 else t.upper()
        for t in right["title"]
    ]
    return items, right, y


# ---------------------------------------------------------------------- phases


def train(args, model_dir):
    from skrecordpair import RecordPairClassifier

    left, right, y, source = load_pairs(args.data, args.dataset)
    n = min(args.train_pairs, len(y))
    index = np.random.default_rng(0).permutation(len(y))[:n]
    clf = RecordPairClassifier(max_epochs=args.epochs, random_state=0)
    start = time.perf_counter()
    clf.fit(left.iloc[index], right.iloc[index], y[index])
    seconds = time.perf_counter() - start
    clf.save(model_dir)
    n_params = sum(p.numel() for p in clf.net_.module_.parameters())
    return {
        "source": source,
        "train_pairs": n,
        "epochs": args.epochs,
        "train_seconds": seconds,
        "parameters": n_params,
        "words": len(clf.vocabulary_.words),
    }


def score(args):
    """One measurement, run in a fresh interpreter (``_score`` sub-command)."""
    import torch

    from skrecordpair import RecordPairClassifier

    if args.threads:
        torch.set_num_threads(args.threads)
    rss_start = rss_mb()
    clf = RecordPairClassifier.load(args.model)
    # The model's threads are its n_jobs (0: all cores, as torch's default was).
    clf.set_params(n_jobs=args.threads or -1)
    left, right, _, _ = load_pairs(args.data, args.dataset)
    rss_model = rss_mb()
    X = resampled_pair_frame(left, right, args.n, seed=args.n)
    del left, right
    rss_input = rss_mb()
    exact = reset_peak()
    start = time.perf_counter()
    proba = clf.predict_proba(X)
    seconds = time.perf_counter() - start
    peak = peak_mb()
    assert proba.shape == (args.n, len(clf.classes_))
    assert np.isfinite(proba).all()
    print(
        json.dumps(
            {
                "pairs": args.n,
                "seconds": seconds,
                "pairs_per_second": args.n / seconds,
                "rss_start_mb": rss_start,
                "rss_model_mb": rss_model,
                "rss_input_mb": rss_input,
                "peak_mb": peak,
                "peak_above_model_mb": peak - rss_model,
                "input_frame_mb": rss_input - rss_model,
                "scoring_overhead_mb": peak - rss_input,
                "exact_peak": exact,
                "threads": torch.get_num_threads(),
                "mean_match_probability": float(proba[:, -1].mean()),
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", type=Path, help="the folder holding the ER-Magellan data set folders"
    )
    source.add_argument(
        "--synthetic",
        action="store_true",
        help="synthetic product records instead of --data",
    )
    parser.add_argument(
        "--dataset",
        default="amazon_google",
        help="a data set with title, manufacturer and price fields",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="a .json file, or a folder (default: benchmarks/results)",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--train-pairs", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads (the model's n_jobs; 0: all cores)",
    )
    parser.add_argument(
        "--budget-mb",
        type=float,
        default=2000.0,
        help="fail if the peak above the model exceeds this",
    )
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_score", help=argparse.SUPPRESS)
    child.add_argument("--model", required=True)
    child.add_argument("--n", type=int, required=True)
    args = parser.parse_args(argv)

    if args.command == "_score":
        score(args)
        return 0

    run = Run("scoring_memory", args, argv)
    data_args = ["--synthetic"] if args.synthetic else ["--data", str(args.data)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        info = train(args, model_dir)
        run.results["model"] = info
        print(
            f"trained the default RecordPairClassifier for {args.epochs} epoch(s) on "
            f"{info['train_pairs']} pairs of {info['source']} in "
            f"{info['train_seconds']:.0f} s: {info['parameters']:,} parameters, "
            f"{info['words']:,} words",
            flush=True,
        )
        rows = run.results["sizes"] = []
        for n in args.sizes:
            cmd = [
                sys.executable,
                __file__,
                *data_args,
                "--dataset",
                args.dataset,
                "--threads",
                str(args.threads),
                "_score",
                "--model",
                str(model_dir),
                "--n",
                str(n),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                sys.stderr.write(out.stderr)
                raise SystemExit(f"scoring {n:,} pairs failed (exit {out.returncode})")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{n:,} pairs: {row['seconds']:.1f} s, {row['pairs_per_second']:,.0f} "
                f"pairs/s, peak {row['peak_mb']:,.0f} MB, "
                f"{row['peak_above_model_mb']:,.0f} MB above the model",
                flush=True,
            )
    over = [r["pairs"] for r in rows if r["peak_above_model_mb"] > args.budget_mb]
    run.results["over_budget"] = over
    run.write()
    if over:
        print(f"\nOVER BUDGET ({args.budget_mb:.0f} MB): {over}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
