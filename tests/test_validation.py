"""One validation mechanism: constraint declarations, @checked, require_columns.

A bad parameter of each public function and class names itself, what it must
be and what it got: "<name> must be <what>; got <value>.".
"""

import inspect
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from skrecordpair import (
    ActiveLearner,
    FrozenTextEncoder,
    NearestNeighborBlocker,
    add_candidate_nonmatches,
    deduplicate,
    link,
    pair_completeness,
    pair_frame,
    reduction_ratio,
    uncertain_pairs,
)
from skrecordpair._matcher.featurizer import (
    TEXT_ENCODER_OPTIONS,
    TEXT_ENCODER_OPTIONS_NOT_OFFERED,
)
from skrecordpair._pairs import require_columns
from skrecordpair._validation import POSITIVE, InvalidParameterError, checked

TABLE = pd.DataFrame(
    {"name": ["anna smith", "john doe", "jim beam"]}, index=["a", "b", "c"]
)
LABELS = pd.DataFrame({"left_id": ["a"], "right_id": ["a"], "label": [1]})
PAIRS = pd.DataFrame({"left_id": [1], "right_id": [2], "probability": [0.5]})


def _unified(name, got):
    return rf"^{name} must be .+; got {re.escape(repr(got))}\.$"


@pytest.fixture(scope="module")
def classifier():
    X = pair_frame(TABLE.iloc[[0, 1]], TABLE.iloc[[0, 2]])
    return DummyClassifier(strategy="prior").fit(X, [1, 0])


# ------------------------------------------------------------- functions
@pytest.mark.parametrize(
    "name, value, call",
    [
        (
            "threshold",
            2,
            lambda clf, v: link(
                TABLE, TABLE, NearestNeighborBlocker(), clf, threshold=v
            ),
        ),
        (
            "batch_size",
            0,
            lambda clf, v: link(
                TABLE, TABLE, NearestNeighborBlocker(), clf, batch_size=v
            ),
        ),
        (
            "one_to_one",
            "yes",
            lambda clf, v: link(
                TABLE, TABLE, NearestNeighborBlocker(), clf, one_to_one=v
            ),
        ),
        (
            "verbose",
            -1,
            lambda clf, v: link(TABLE, TABLE, NearestNeighborBlocker(), clf, verbose=v),
        ),
        (
            "threshold",
            -0.1,
            lambda clf, v: deduplicate(
                TABLE, NearestNeighborBlocker(), clf, threshold=v
            ),
        ),
        (
            "batch_size",
            1.5,
            lambda clf, v: deduplicate(
                TABLE, NearestNeighborBlocker(), clf, batch_size=v
            ),
        ),
        (
            "return_pairs",
            "some",
            lambda clf, v: deduplicate(
                TABLE, NearestNeighborBlocker(), clf, return_pairs=v
            ),
        ),
        (
            "deduplicate",
            "yes",
            lambda clf, v: pair_completeness([(1, 2)], [(1, 2)], deduplicate=v),
        ),
        ("n_left", 0, lambda clf, v: reduction_ratio([], v, 3)),
        ("n_left", 1, lambda clf, v: reduction_ratio([], v)),
        ("n_right", 2.0, lambda clf, v: reduction_ratio([], 3, v)),
        ("band", (0.9, 0.1), lambda clf, v: uncertain_pairs(PAIRS, v)),
        ("band", "low", lambda clf, v: uncertain_pairs(PAIRS, v)),
        (
            "one_to_one",
            1,
            lambda clf, v: add_candidate_nonmatches(
                TABLE, TABLE, LABELS, NearestNeighborBlocker(), one_to_one=v
            ),
        ),
    ],
)
def test_a_bad_argument_of_a_public_function_gives_the_unified_message(
    classifier, name, value, call
):
    with pytest.raises(InvalidParameterError, match=_unified(name, value)):
        call(classifier, value)


def test_checked_validates_defaults_and_keywords_and_keeps_the_signature():
    @checked({"n": [POSITIVE]})
    def f(x, n=1):
        """Doc."""
        return x * n

    assert f(2, n=3) == 6 and f(2) == 2
    assert inspect.signature(f) == inspect.signature(f.__wrapped__)
    assert f.__doc__ == "Doc."
    with pytest.raises(
        InvalidParameterError, match="^n must be a positive integer; got 0.$"
    ):
        f(2, 0)
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['m'\]"):
        checked({"m": [POSITIVE]})(f.__wrapped__)


# --------------------------------------------------------------- classes
@pytest.mark.parametrize(
    "params",
    [
        {"k": 0},
        {"k": True},
        {"analyzer": "chars"},
        {"ngram_range": (3, 2)},
        {"sublinear_tf": "yes"},
        {"max_df": 1.5},
        {"max_df": 0},
        {"chunk_size": 0},
        {"blocking_keys": 3},
        {"fields": "name"},
        {"fields": [[]]},
        {"verbose": -1},
    ],
)
def test_a_bad_parameter_of_the_blocker_gives_the_unified_message(params):
    ((name, value),) = params.items()
    with pytest.raises(InvalidParameterError, match=_unified(name, value)):
        NearestNeighborBlocker(**params).fit(TABLE)


@pytest.mark.parametrize(
    "params",
    [
        {"batch_size": 0},
        {"pool_factor": 2.5},
        {"explore": 1.5},
        {"pseudo_labels": -1},
        {"pseudo_confidence": 0.5},
        {"labels": 3},
        {"random_state": "seed"},
        {"verbose": -1},
    ],
)
def test_a_bad_parameter_of_the_learner_gives_the_unified_message(params):
    ((name, value),) = params.items()
    with pytest.raises(InvalidParameterError, match=_unified(name, value)):
        ActiveLearner(**params).fit(TABLE)


def test_the_learner_is_a_scikit_learn_estimator():
    learner = ActiveLearner(NearestNeighborBlocker(k=2), batch_size=3, random_state=0)
    params = learner.get_params(deep=False)
    assert params["batch_size"] == 3 and params["blocker"] is learner.blocker
    assert learner.get_params()["blocker__k"] == 2
    cloned = clone(learner)
    assert cloned.get_params(deep=False).keys() == params.keys()
    assert cloned.blocker is not learner.blocker and cloned.blocker.k == 2
    assert "batch_size=3" in repr(learner)
    fitted = clone(learner).fit(TABLE, TABLE)
    assert not hasattr(clone(fitted), "candidates_")
    assert sorted(ActiveLearner._parameter_constraints) == sorted(params)


@pytest.mark.parametrize(
    "params",
    [
        {"pooling": "max"},
        {"max_length": 2},
        {"template": "{field}"},
        {"layer": "last"},
        {"cache": "yes"},
        {"max_cache_bytes": -1},
        {"device": "gpu"},
    ],
)
def test_a_bad_parameter_of_the_text_encoder_gives_the_unified_message(params):
    ((name, value),) = params.items()
    with pytest.raises(InvalidParameterError, match=_unified(name, value)):
        FrozenTextEncoder("any-model", **params)


def test_every_constraint_names_a_parameter():
    for cls in (NearestNeighborBlocker, ActiveLearner, FrozenTextEncoder):
        names = [n for n in inspect.signature(cls).parameters]
        assert sorted(cls._parameter_constraints) == sorted(names), cls.__name__


def test_text_encoder_options_are_the_encoders_keyword_parameters():
    keyword = [
        name
        for name, p in inspect.signature(FrozenTextEncoder).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    ]
    assert set(TEXT_ENCODER_OPTIONS) == set(keyword) - set(
        TEXT_ENCODER_OPTIONS_NOT_OFFERED
    )
    assert {"template", "pooling", "device", "max_length"} <= set(TEXT_ENCODER_OPTIONS)


# ---------------------------------------------------------------- columns
def test_require_columns_has_one_wording():
    frame = pd.DataFrame({"a": [1], "b": [2]})
    require_columns(frame, ["b", "a"], "The frame")
    message = (
        "The frame must have the columns ['a', 'c', 'd']; it lacks ['c', 'd'] "
        "(its columns are ['a', 'b'])."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        require_columns(frame, ["a", "c", "d", "c"], "The frame")
    with pytest.raises(ValueError, match=re.escape(message)):
        require_columns(frame.columns, ["a", "c", "d"], "The frame")


@pytest.mark.parametrize(
    "call",
    [
        lambda: NearestNeighborBlocker(fields=["nom"]).fit(TABLE),
        lambda: (
            NearestNeighborBlocker()
            .fit(TABLE)
            .candidates(TABLE.rename(columns={"name": "nom"}))
        ),
        lambda: pair_completeness(pd.DataFrame({"left_id": [1]}), [(1, 2)]),
        lambda: uncertain_pairs(PAIRS.drop(columns="probability")),
        lambda: add_candidate_nonmatches(
            TABLE, TABLE, LABELS.drop(columns="label"), NearestNeighborBlocker()
        ),
    ],
)
def test_a_missing_column_gives_the_unified_message(call):
    with pytest.raises(
        ValueError,
        match=r" must have the columns \[.*\]; it lacks "
        r"\[.*\] \(its columns are \[.*\]\)\.$",
    ):
        call()


def test_numpy_values_satisfy_the_constraints():
    blocker = NearestNeighborBlocker(
        k=np.int64(2), sublinear_tf=np.bool_(True), max_df=np.float64(0.9)
    ).fit(TABLE)
    plain = NearestNeighborBlocker(k=2, max_df=0.9).fit(TABLE)
    pd.testing.assert_frame_equal(blocker.candidates(TABLE), plain.candidates(TABLE))
    assert reduction_ratio([], np.int64(3)) == 1.0
