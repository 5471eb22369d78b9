"""Do a frozen pre-trained text encoder's vectors help, on the ``valid`` splits?

Results
-------
all-MiniLM-L6-v2 (6 layers, 384 dimensions), seed 0, ``max_length=64``, on a
2-core machine shared with other jobs (load average up to 11: the seconds and
pairs/s below vary tenfold with the load and compare nothing; the
encode seconds were taken at the lower loads). AP = average precision on
``valid``; F1 on ``valid`` at the threshold chosen on the held-out 10 % of
``train``.

=============  ==========================  ====  ====  ========  ===========
dataset        model                        AP    F1    encode s  values
=============  ==========================  ====  ====  ========  ===========
amazon_google  sim                         70.1  69.2
amazon_google  net                         72.4  67.4
amazon_google  net+pre[value,last,mean]    70.5  70.0  45        6,191
amazon_google  sim+cos[value,last,mean]    69.4  69.5  45        6,191
amazon_google  sim+cos[ditto,last,mean]    70.3  70.7  21        6,191
amazon_google  sim+cos[value,layer3,mean]  72.3  69.2  16        6,191
abt_buy        sim                         89.3  80.1
abt_buy        net                         89.4  79.7
abt_buy        net+pre[value,last,mean]    89.6  80.1  24        4,417
abt_buy        sim+cos[value,last,mean]    89.9  80.2  24        4,417
abt_buy        sim+cos[ditto,last,mean]    89.5  80.1  24        4,417
abt_buy        sim+cos[value,layer3,mean]  89.8  81.5  24        4,417
=============  ==========================  ====  ====  ========  ===========

One seed, and one ``valid`` split of 2,293 / 1,916 pairs: differences of a
point are within the noise of a single run. The frozen pooled vectors do not
help measurably: as cosine features they move AP by -0.7 to +2.2 and F1 by
0 to +1.5; fed to the network they leave it at the similarity model's level
(amazon_google AP 70.5 against 72.4 without them). None comes near the
targets (amazon_google 75.6, abt_buy 85).

Method
------
Per dataset, ``train`` is split once (stratified, by the seed) into 90 % to fit
on and a held-out 10 % (*hold*) on which every model's decision threshold is
chosen (best F1) and the networks stop early; every figure is on the ``valid``
split: the threshold-free average precision (PR-AUC) and F1 at the hold
threshold. Nothing is read from ``test``.

Models:

- ``sim``: the similarity model alone (``SimilarityFeatures`` +
  ``HistGradientBoostingClassifier``).
- ``sim+cos[...]``: the same, plus, per field, the cosine of the two values'
  pooled vectors from the frozen encoder (one configuration per row: text
  template, hidden layer, pooling): the cheap variant, no network change.
- ``net``: the default ``RecordPairClassifier``.
- ``net+pre[...]`` (the rows above, measured with an earlier version): the
  same network, each field encoding joined by the field value's projected
  pooled vector. The network now reads subword vectors instead, through
  ``RecordPairClassifier(text_encoder=...)``, which ``benchmarks/magellan.py``
  measures (its ``pretrained`` configuration); this script keeps the cosine
  probe.

Encoding seconds are for all distinct values of both tables of a dataset, per
configuration. The ``pairs/s`` column times ``predict_proba`` on the ``valid``
pairs with every value's vectors already cached (so without encoding; the
encoding rate is values/s in the encode column).

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/pretrained_probe.py \\
        --data /work/shared/data/magellan --model path/to/all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, f1_score
from sklearn.model_selection import train_test_split

from skrecordpair import (
    FrozenTextEncoder,
    RecordPairClassifier,
    SimilarityFeatures,
    best_f1_threshold,
)

# The probe compares the encoder's raw vectors, below the public API.
from skrecordpair._matcher.text_encoder import cosine_similarities
from skrecordpair._pairs import as_text
from skrecordpair.datasets import load_magellan

# (label, template, layer, pooling). The first is the one the network variant
# uses, fixed in advance: the encoder's own (sentence-transformers) pooling.
CONFIGS = [
    ("value,last,mean", "{value}", -1, "mean"),
    ("ditto,last,mean", "COL {field} VAL {value}", -1, "mean"),
    ("value,layer3,mean", "{value}", 3, "mean"),
]


class PooledLookup:
    """Pooled vector of each (field, value), from one encoder and its cache."""

    def __init__(self, encoder, fields):
        self.encoder = encoder
        self.fields = fields

    def encode_tables(self, left_table, right_table):
        """Encode every distinct value of both tables; return the seconds."""
        start = time.perf_counter()
        for field in self.fields:
            values = np.concatenate(
                [as_text(left_table[field]), as_text(right_table[field])]
            )
            self.encoder.encode(values, field=field)
        return time.perf_counter() - start

    def side(self, X, prefix):
        """(n_pairs, n_fields, dim) float32 pooled vectors of one side's fields."""
        return torch.stack(
            [
                self.encoder.encode(as_text(X[prefix + f]), field=f).pooled_per_value()
                for f in self.fields
            ],
            dim=1,
        )

    def cosines(self, X):
        """(n_pairs, n_fields) cosine of the two values of each field (NaN if missing)."""
        left, right = self.side(X, "left_"), self.side(X, "right_")
        return torch.stack(
            [
                cosine_similarities(left[:, i], right[:, i])
                for i in range(len(self.fields))
            ],
            dim=1,
        ).numpy()


def scores(y_hold, hold_proba, y_valid, valid_proba):
    threshold = best_f1_threshold(y_hold, hold_proba)
    return (
        100 * average_precision_score(y_valid, valid_proba),
        100 * f1_score(y_valid, (valid_proba > threshold).astype(int)),
    )


def pairs_per_second(func, X, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func(X)
        times.append(time.perf_counter() - start)
    return len(X) / np.median(times)


def run_similarity(name, fit, hold, valid, seed, extra=None):
    """The similarity model; `extra` maps a pair frame to more feature columns."""
    features = SimilarityFeatures().fit(fit[0])

    def transform(X):
        out = features.transform(X)
        return out if extra is None else np.hstack([out, extra(X)])

    model = HistGradientBoostingClassifier(random_state=seed)
    start = time.perf_counter()
    model.fit(transform(fit[0]), fit[1])
    seconds = time.perf_counter() - start

    def proba(X):
        return model.predict_proba(transform(X))[:, 1]

    ap, f1 = scores(hold[1], proba(hold[0]), valid[1], proba(valid[0]))
    return {
        "model": name,
        "valid_ap": ap,
        "valid_f1": f1,
        "fit_s": seconds,
        "pairs_s": pairs_per_second(proba, valid[0]),
    }


def run_network(name, fit, hold, valid, seed):
    clf = RecordPairClassifier(random_state=seed, decision_threshold="auto")
    start = time.perf_counter()
    clf.fit(*fit, validation_data=hold)
    seconds = time.perf_counter() - start
    valid_proba = clf.predict_proba(valid[0])[:, 1]
    ap = 100 * average_precision_score(valid[1], valid_proba)
    f1 = 100 * f1_score(valid[1], (valid_proba > clf.threshold_).astype(int))
    return {
        "model": name,
        "valid_ap": ap,
        "valid_f1": f1,
        "fit_s": seconds,
        "pairs_s": pairs_per_second(lambda X: clf.predict_proba(X), valid[0]),
        "epochs": len(clf.net_.history_),
    }


def probe(name, args):
    data = load_magellan(args.data / name, as_frame=True)
    X, y = data.train
    X_fit, X_hold, y_fit, y_hold = train_test_split(
        X, y, test_size=0.1, stratify=y, random_state=args.seed
    )
    fit, hold, valid = (X_fit, y_fit), (X_hold, y_hold), data.valid
    rows = [run_similarity("sim", fit, hold, valid, args.seed)]
    print(name, rows[-1], flush=True)
    if not args.skip_network:
        rows.append(run_network("net", fit, hold, valid, args.seed))
        print(name, rows[-1], flush=True)
    for label, template, layer, pooling in CONFIGS[: args.configs]:
        encoder = FrozenTextEncoder(
            str(args.model),
            template=template,
            layer=layer,
            pooling=pooling,
            max_length=args.max_length,
        )
        lookup = PooledLookup(encoder, data.fields)
        seconds = lookup.encode_tables(data.left_table, data.right_table)
        encode = {"encode_s": seconds, "values": encoder.n_encoded_}
        rows.append(
            run_similarity(
                f"sim+cos[{label}]", fit, hold, valid, args.seed, extra=lookup.cosines
            )
            | encode
        )
        print(name, rows[-1], flush=True)
    return [dict(dataset=name, **row) for row in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="local directory of a Hugging Face encoder",
    )
    parser.add_argument("--datasets", nargs="+", default=["amazon_google", "abt_buy"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--configs",
        type=int,
        default=len(CONFIGS),
        help="how many of the encoder configurations to run",
    )
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--skip-network", action="store_true")
    args = parser.parse_args(argv)
    rows = [row for name in args.datasets for row in probe(name, args)]
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()
