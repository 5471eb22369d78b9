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
    word_dim=8,
    char_dim=8,
    char_hidden_size=8,
    field_hidden_size=8,
    record_hidden_size=4,
    num_perspectives=2,
    aggregator_hidden_size=4,
    hidden_layer_sizes=(8,),
    batch_size=16,
    # Tests of the network train on exactly their pairs (and stay small); the
    # near misses are tested in tests/test_candidate_nonmatches.py.
    candidate_nonmatches=False,
)

FIRST = [
    "anna",
    "björn",
    "chloé",
    "david",
    "eva",
    "françois",
    "greta",
    "hans",
    "ingrid",
    "jürgen",
    "karl",
    "lena",
    "marta",
    "nils",
    "olga",
    "pedro",
]
LAST = [
    "smith",
    "müller",
    "o'brien",
    "nguyen",
    "garcía",
    "kowalski",
    "tanaka",
    "rossi",
    "dubois",
    "schmidt",
    "larsen",
    "novak",
]
CITY = ["berlin", "paris", "são paulo", "zürich", "kraków", "new york", "東京"]


def _typo(word, rng):
    if len(word) < 3:
        return word
    i = rng.integers(1, len(word) - 1)
    return word[:i] + word[i + 1 :]


def make_people_pairs(n_pairs=120, seed=0):
    """Left/right person records; matches are corrupted copies (label 1).

    Non-matches pair two different people. Values include unicode, numbers
    (year of birth, as int) and missing cities.
    """
    rng = np.random.default_rng(seed)
    n_people = n_pairs
    people = pd.DataFrame(
        {
            "name": [
                f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n_people)
            ],
            "city": rng.choice(CITY, n_people),
            "year": rng.integers(1940, 2005, n_people),
        }
    )
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


# Tables for blocking and linking: left people, right corrupted copies plus strangers.
_ASCII_FIRST = [
    "anna",
    "bernd",
    "chloe",
    "david",
    "emma",
    "felix",
    "greta",
    "hans",
    "ida",
    "jonas",
    "karla",
    "lukas",
    "mia",
    "noah",
    "olga",
    "paul",
]
_ASCII_LAST = [
    "schmidt",
    "mueller",
    "nguyen",
    "garcia",
    "kowalski",
    "tanaka",
    "rossi",
    "dubois",
    "larsen",
    "novak",
    "okafor",
    "weber",
]
_ASCII_CITY = ["berlin", "paris", "lisbon", "zurich", "krakow", "oslo", "vienna"]


def _drop_letter(word, rng):
    i = int(rng.integers(1, len(word) - 1))
    return word[:i] + word[i + 1 :]


def make_learner(tables, *, k, labels=None, **params):
    """An ``ActiveLearner`` fitted on the left and right tables of
    :func:`make_tables`, seeded, blocking with ``NearestNeighborBlocker(k)``."""
    from skrecordpair import ActiveLearner, NearestNeighborBlocker

    return ActiveLearner(
        NearestNeighborBlocker(k=k), labels=labels, random_state=0, **params
    ).fit(tables[0], tables[1])


def make_tables(n=60, n_extra=20, seed=0):
    """Left people and right corrupted copies of them (shuffled) plus strangers.

    Returns ``left, right, true_pairs`` with string ids.
    """
    rng = np.random.default_rng(seed)

    def people(m):
        return pd.DataFrame(
            {
                "first": rng.choice(_ASCII_FIRST, m),
                "last": rng.choice(_ASCII_LAST, m),
                "city": rng.choice(_ASCII_CITY, m),
                "born": rng.integers(1940, 2005, m).astype(str),
            }
        )

    left = people(n)
    left.index = [f"l{i}" for i in range(n)]
    copies = left.copy()
    copies["last"] = [
        _drop_letter(v, rng) if rng.random() < 0.5 else v for v in copies["last"]
    ]
    copies.loc[rng.random(n) < 0.2, "city"] = None
    right = pd.concat([copies, people(n_extra)], ignore_index=True)
    order = rng.permutation(len(right))
    right = right.iloc[order].reset_index(drop=True)
    right.index = [f"r{i}" for i in range(len(right))]
    position = np.empty(len(order), dtype=int)
    position[order] = np.arange(len(order))
    true = [(f"l{i}", f"r{position[i]}") for i in range(n)]
    return left, right, true


# Data-making scripts beside the reference files are not tests.
collect_ignore_glob = ["data/*.py"]


def save_tiny_bert(path, words, *, layers, seed=0):
    """A randomly initialised BERT (16 dimensions, `layers` layers) and a
    WordPiece vocabulary of `words`, saved in the directory `path`: a
    pre-trained text encoder for the tests, without any download."""
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # Positional: transformers 4 names it vocab_file, 5 vocab.
    transformers.BertTokenizer(str(path / "vocab.txt")).save_pretrained(path)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(path)
    return str(path)
