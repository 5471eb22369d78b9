"""Shared fixtures: small synthetic record pairs and a tiny, fast network."""

import numpy as np
import pandas as pd
import pytest
import torch

# Tiny models gain nothing from intra-op threads, and spinning OpenMP threads slow
# everything down badly when the (2-core) test machine has other work to do.
torch.set_num_threads(1)

# A network small enough to train in a second or two on 2 CPU cores.
TINY = dict(
    word_dim=8, char_dim=8, char_hidden_size=8, field_hidden_size=8,
    record_hidden_size=4, num_perspectives=2, aggregator_hidden_size=4,
    hidden_layer_sizes=(8,), batch_size=16,
)

FIRST = ["anna", "björn", "chloé", "david", "eva", "françois", "greta", "hans",
         "ingrid", "jürgen", "karl", "lena", "marta", "nils", "olga", "pedro"]
LAST = ["smith", "müller", "o'brien", "nguyen", "garcía", "kowalski", "tanaka",
        "rossi", "dubois", "schmidt", "larsen", "novak"]
CITY = ["berlin", "paris", "são paulo", "zürich", "kraków", "new york", "東京"]


def _typo(word, rng):
    if len(word) < 3:
        return word
    i = rng.integers(1, len(word) - 1)
    return word[:i] + word[i + 1:]


def make_people_pairs(n_pairs=120, seed=0):
    """Left/right person records; matches are corrupted copies (label 1).

    Non-matches pair two different people. Values include unicode, numbers
    (year of birth, as int) and missing cities.
    """
    rng = np.random.default_rng(seed)
    n_people = n_pairs
    people = pd.DataFrame({
        "name": [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n_people)],
        "city": rng.choice(CITY, n_people),
        "year": rng.integers(1940, 2005, n_people),
    })
    people.loc[rng.random(n_people) < 0.1, "city"] = None
    y = (np.arange(n_pairs) % 2 == 0).astype(int)
    left = people.iloc[np.arange(n_pairs) % n_people].reset_index(drop=True)
    other = (np.arange(n_pairs) + 1 + rng.integers(0, n_people - 1, n_pairs)) % n_people
    right = people.iloc[np.where(y == 1, np.arange(n_pairs) % n_people, other)]
    right = right.reset_index(drop=True).copy()
    right["name"] = [_typo(v, rng) if rng.random() < 0.5 else v for v in right["name"]]
    return left, right, y


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def people():
    return make_people_pairs(120, seed=0)


@pytest.fixture(scope="session")
def fitted(people):
    """A tiny classifier fitted on the people pairs (read-only in tests)."""
    from skrecordpair import RecordPairClassifier

    left, right, y = people
    clf = RecordPairClassifier(**TINY, max_epochs=4, random_state=0)
    return clf.fit(left, right, y)
