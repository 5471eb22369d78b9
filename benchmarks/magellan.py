"""Accuracy and speed on the ER-Magellan benchmarks: an ablation of the network.

For each data set folder and seed, fit every configuration of `CONFIGURATIONS`
on ``train`` (the ``valid`` split for early stopping and the decision threshold,
where the configuration uses it), in the same run and on the same seeds:

``similarity model alone``
    ``SimilarityFeatures`` + ``HistGradientBoostingClassifier``, the classic
    matcher that is also the network's prior; threshold chosen on ``valid``
    with :func:`skrecordpair.best_f1_threshold`.
``network alone``
    ``RecordPairClassifier(similarity_features=False, similarity_prior=False)``
    fitted as ``default``.
``default``
    ``RecordPairClassifier()`` with ``validation_data=valid`` and
    ``decision_threshold="auto"``; ``explain`` is timed on this one. Like
    every ``RecordPairClassifier`` row but the next, it adds the blocker's near
    misses among the records of ``train`` (``candidate_nonmatches="auto"``).
``default without near misses``
    The same with ``candidate_nonmatches=False``: trained on exactly ``train``.
``pretrained``
    ``RecordPairClassifier(text_encoder=...)`` fitted as ``default``, with the
    encoder of `--text-encoder` (a hub name or a local directory; only run
    when given), its encoding included in the fit and scoring times.
``defaults only``
    ``RecordPairClassifier()`` fitted with ``fit(X_left, X_right, y)`` alone:
    what a user gets (a held-out 10 % of ``train`` for early stopping and
    the threshold, ``decision_threshold="auto"`` being the default).

Each configuration's test precision, recall and F1 (per seed, and mean ± sd),
F1 on ``valid``, fit seconds, and pairs/s of ``predict_proba`` on the test
split and on `--candidates` pairs of a tableA and a tableB record drawn at
random (the scoring after blocking), each call timed `--repeats` times. Nothing
is chosen on the test split. Every ``RecordPairClassifier`` gets
``random_state=seed``; `--preset` and `--set` change the hyperparameters of
``network alone`` and ``default`` (``defaults only`` stays the defaults).

The figures go to a JSON file (``benchmarks/results/`` unless `--out`);
``benchmarks/report.py`` renders it. To add a configuration, add an entry to
`CONFIGURATIONS`; `--configs` selects some.

Usage::

    python benchmarks/magellan.py --data /work/shared/data/magellan
    python benchmarks/magellan.py --data /work/shared/data/magellan \\
        --datasets beer --seeds 0 --out /tmp/results
"""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from _bench import (
    MAGELLAN_DATASETS,
    Run,
    add_arguments,
    magellan_candidates,
    magellan_folder,
    mean_sd,
    timed_calls,
)
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_recall_fscore_support
from sklearn.pipeline import make_pipeline

from skrecordpair import RecordPairClassifier, SimilarityFeatures, best_f1_threshold
from skrecordpair.datasets import load_magellan
from skrecordpair.presets import BIOME_TEXT

# Published test F1: DeepMatcher Hybrid, Ditto.
PUBLISHED = {
    "amazon_google": (69.3, 75.6),
    "dblp_acm": (98.4, 99.0),
    "walmart_amazon": (66.9, 86.8),
    "abt_buy": (62.8, 89.3),
    "beer": (72.7, 94.4),
    "fodors_zagats": (100.0, 100.0),
}


@dataclass(frozen=True)
class Configuration:
    """One configuration of the ablation.

    Attributes
    ----------
    make : callable
        ``make(seed, params, args)`` returns the unfitted estimator; `params`
        are the hyperparameters of ``--preset`` and ``--set``, which a
        configuration may ignore, `args` the command line's arguments.
    fit_args : callable
        ``fit_args(data)`` returns ``(args, kwargs)`` for ``estimator.fit``;
        ``data.frames`` holds the splits as ``(X, y)``, ``data.sides`` as
        ``(X_left, X_right, y)``.
    description : str
        One line for the report.
    threshold_on_valid : bool, default=False
        Choose the threshold of ``predict_proba(X)[:, 1]`` that maximises F1
        on ``valid`` after fitting (for estimators that have none of their
        own); it counts in the fit time.
    explain : bool, default=False
        Also time ``explain`` on the first `--explain-pairs` test pairs.
    needs_text_encoder : bool, default=False
        Runs only with ``--text-encoder``.
    """

    make: Callable
    fit_args: Callable
    description: str
    threshold_on_valid: bool = False
    explain: bool = False
    needs_text_encoder: bool = False


def _with_validation(data):
    return data.frames.train, {"validation_data": data.frames.valid}


CONFIGURATIONS = {
    "similarity model alone": Configuration(
        make=lambda seed, params, args: make_pipeline(
            SimilarityFeatures(), HistGradientBoostingClassifier(random_state=seed)
        ),
        fit_args=lambda data: (data.frames.train, {}),
        description="SimilarityFeatures + HistGradientBoostingClassifier (the "
        "network's prior), threshold chosen on valid",
        threshold_on_valid=True,
    ),
    "network alone": Configuration(
        make=lambda seed, params, args: RecordPairClassifier(
            **{
                **params,
                "similarity_features": False,
                "similarity_prior": False,
                "decision_threshold": "auto",
                "random_state": seed,
            }
        ),
        fit_args=_with_validation,
        description="RecordPairClassifier(similarity_features=False, "
        "similarity_prior=False, decision_threshold='auto'), "
        "validation_data=valid",
    ),
    "default": Configuration(
        make=lambda seed, params, args: RecordPairClassifier(
            **{**params, "decision_threshold": "auto", "random_state": seed}
        ),
        fit_args=_with_validation,
        description="RecordPairClassifier(decision_threshold='auto'), "
        "validation_data=valid",
        explain=True,
    ),
    "default without near misses": Configuration(
        make=lambda seed, params, args: RecordPairClassifier(
            **{
                **params,
                "candidate_nonmatches": False,
                "decision_threshold": "auto",
                "random_state": seed,
            }
        ),
        fit_args=_with_validation,
        description="RecordPairClassifier(candidate_nonmatches=False, "
        "decision_threshold='auto'), validation_data=valid: trained on exactly "
        "the train pairs",
    ),
    "pretrained": Configuration(
        make=lambda seed, params, args: RecordPairClassifier(
            **{
                **params,
                "text_encoder": args.text_encoder,
                "text_encoder_options": args.text_encoder_options,
                "decision_threshold": "auto",
                "random_state": seed,
            }
        ),
        fit_args=_with_validation,
        description="RecordPairClassifier(text_encoder=--text-encoder, "
        "decision_threshold='auto'), validation_data=valid",
        explain=True,
        needs_text_encoder=True,
    ),
    "defaults only": Configuration(
        make=lambda seed, params, args: RecordPairClassifier(random_state=seed),
        fit_args=lambda data: (data.sides.train, {}),
        description="RecordPairClassifier() fitted with fit(X_left, X_right, y) "
        "alone: no validation data; early stopping and threshold on "
        "a held-out 10 % of train",
    ),
}


def prf(y_true, y_pred):
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", zero_division=0
    )
    return 100 * p, 100 * r, 100 * f


def run_one(config, data, seed, params, candidates, args):
    """Fit `config` with `seed`; its scores and timings."""
    model = config.make(seed, params, args)
    fit_args, fit_kwargs = config.fit_args(data)
    X_valid, y_valid = data.frames.valid
    start = time.perf_counter()
    model.fit(*fit_args, **fit_kwargs)
    if config.threshold_on_valid:
        threshold = best_f1_threshold(y_valid, model.predict_proba(X_valid)[:, 1])

        def predict(X):
            return (model.predict_proba(X)[:, 1] > threshold).astype(int)
    else:
        threshold = getattr(model, "threshold_", None)
        predict = model.predict
    fit_seconds = time.perf_counter() - start
    X_test, y_test = data.frames.test
    precision, recall, f1 = prf(y_test, predict(X_test))
    record = {
        "seed": seed,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "valid_f1": prf(y_valid, predict(X_valid))[2],
        "threshold": threshold,
        "fit_seconds": fit_seconds,
        "epochs": len(model.net_.history_) if hasattr(model, "net_") else None,
        "predict_test": timed_calls(model.predict_proba, X_test, args.repeats),
        "predict_candidates": timed_calls(
            model.predict_proba, candidates, args.repeats
        ),
    }
    if config.explain:
        record["explain"] = timed_calls(
            model.explain, X_test.iloc[: args.explain_pairs], args.repeats
        )
    return record


def summary(runs):
    """Mean ± sd over seeds of the scores; medians over seeds of the timings."""
    out = {
        key: mean_sd([r[key] for r in runs])
        for key in ("precision", "recall", "f1", "valid_f1")
    }
    out["fit_seconds_median"] = float(np.median([r["fit_seconds"] for r in runs]))
    for key in ("predict_test", "predict_candidates", "explain"):
        if key in runs[0]:
            out[f"{key}_pairs_per_second_median"] = float(
                np.median([r[key]["median_pairs_per_second"] for r in runs])
            )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument(
        "--datasets", nargs="+", default=MAGELLAN_DATASETS, choices=MAGELLAN_DATASETS
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(CONFIGURATIONS),
        choices=list(CONFIGURATIONS),
        metavar="NAME",
        help=f"configurations to run, of: {', '.join(CONFIGURATIONS)}",
    )
    parser.add_argument(
        "--preset",
        choices=["default", "biome"],
        default="default",
        help="'biome' is the faithful biome.text configuration",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="override hyperparameters (Python literals), to compare",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=20_000,
        help="candidate pairs scored for the throughput figure (on "
        "the small test splits one call is mostly fixed cost)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed calls per figure, of which the median counts",
    )
    parser.add_argument("--explain-pairs", type=int, default=200)
    parser.add_argument(
        "--text-encoder",
        default=None,
        metavar="MODEL",
        help="a hub name or local directory of a Hugging Face encoder: "
        "runs the 'pretrained' configuration",
    )
    parser.add_argument(
        "--text-encoder-options",
        type=ast.literal_eval,
        default=None,
        metavar="DICT",
        help="text_encoder_options, a Python dict",
    )
    args = parser.parse_args(argv)
    args.configs = [
        c
        for c in args.configs
        if args.text_encoder or not CONFIGURATIONS[c].needs_text_encoder
    ]
    params = {} if args.preset == "default" else dict(BIOME_TEXT)
    params.update(
        (k, ast.literal_eval(v)) for k, v in (kv.split("=", 1) for kv in args.set)
    )
    run = Run("magellan", args, argv)
    run.record["settings"]["params"] = params
    run.record["configurations"] = {
        name: CONFIGURATIONS[name].description for name in args.configs
    }
    for name in args.datasets:
        folder = magellan_folder(args.data, name)
        data = SimpleNamespace(
            frames=load_magellan(folder, as_frame=True), sides=load_magellan(folder)
        )
        candidates = magellan_candidates(data.frames, args.candidates)
        runs = {config: [] for config in args.configs}
        for seed in args.seeds:
            for config in args.configs:
                r = run_one(
                    CONFIGURATIONS[config], data, seed, params, candidates, args
                )
                runs[config].append(r)
                print(
                    f"{name} seed {seed} {config}: P/R/F1 {r['precision']:.1f}/"
                    f"{r['recall']:.1f}/{r['f1']:.1f} (valid F1 {r['valid_f1']:.1f}), "
                    f"fit {r['fit_seconds']:.1f} s, predict "
                    f"{r['predict_test']['median_pairs_per_second']:,.0f}/s, "
                    f"candidates {r['predict_candidates']['median_pairs_per_second']:,.0f}/s"
                    + (
                        f", explain {r['explain']['median_pairs_per_second']:,.0f}/s"
                        if "explain" in r
                        else ""
                    ),
                    flush=True,
                )
        result = {
            "test_pairs": len(data.frames.test[1]),
            "test_matches": int(np.sum(data.frames.test[1])),
            "candidate_pairs": len(candidates),
            "published_f1": dict(zip(("DeepMatcher Hybrid", "Ditto"), PUBLISHED[name])),
            "configurations": {
                config: {"runs": r, "summary": summary(r)} for config, r in runs.items()
            },
        }
        # Each network's gain over the similarity model, seed by seed.
        for config, key in (
            ("default", "network_gain_f1"),
            ("pretrained", "pretrained_gain_f1"),
        ):
            if config in runs and "similarity model alone" in runs:
                result[key] = mean_sd(
                    [
                        a["f1"] - b["f1"]
                        for a, b in zip(runs[config], runs["similarity model alone"])
                    ]
                )
        run.results[name] = result
        # After each dataset, so that a long run stopped part-way keeps its figures.
        run.write()


if __name__ == "__main__":
    main()
