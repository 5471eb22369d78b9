"""Class labels: ``y`` encoded as class indices, and the match class.

The match (positive) class, ``pos_label``, is what ``decision_threshold`` and
``threshold_`` apply to, and what ``link`` and ``deduplicate`` call a match;
it is given, or inferred as scikit-learn's metrics infer it.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_pos_label_consistency,
    check_consistent_length,
    column_or_1d,
)


def encode_labels(X, y, classes=None, pos_label=None, decision_threshold="auto"):
    """The classes and each label's class index of the labels `y` of the pairs
    `X`: the classes of `y`, or with `classes` (continued training) those,
    which must hold every label. `pos_label` is checked against them."""
    if y is None:
        raise ValueError(
            "RecordPairClassifier requires y to be passed, but the target y is "
            "None; pass the labels of the pairs."
        )
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    if len(y) == 0:
        raise ValueError(
            "RecordPairClassifier got 0 pairs; fit needs pairs of at least two "
            "classes in y."
        )
    check_classification_targets(y)
    if classes is not None:
        unseen = np.setdiff1d(y, classes)
        if unseen.size:
            raise ValueError(
                f"warm_start continues training on the classes {classes.tolist()}; "
                f"y holds new labels {unseen.tolist()}. Fit a new model instead."
            )
        check_pos_label(classes, pos_label, decision_threshold)
        return classes, np.searchsorted(classes, y)
    classes, y_encoded = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "RecordPairClassifier needs at least two classes in y; got only "
            f"1 class: {classes.tolist()}."
        )
    check_pos_label(classes, pos_label, decision_threshold)
    return classes, y_encoded


def encode_validation_labels(X, y, classes):
    """The class index of each label `y` of the validation pairs `X`."""
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    index = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[index] != y
    if unknown.any():
        raise ValueError(
            f"validation_data holds labels {np.unique(y[unknown]).tolist()[:5]} that "
            f"are not in y; the classes are {classes.tolist()}."
        )
    return index


def check_pos_label(classes, pos_label, decision_threshold):
    """Check `pos_label` against the classes of `y`, before any training."""
    if pos_label is not None and len(classes) != 2:
        raise ValueError(
            f"pos_label applies to binary tasks; y has {len(classes)} classes "
            f"{classes.tolist()}. Leave pos_label=None."
        )
    if len(classes) != 2:
        return
    # "auto" (the default) and 0.5 need no match class: without one, predict
    # is the most probable class. Any other threshold is on the match's
    # probability, so it must be known.
    if pos_label is not None or not (
        isinstance(decision_threshold, str) or decision_threshold == 0.5
    ):
        positive_index(classes, pos_label, f"decision_threshold={decision_threshold!r}")


def match_index(classes, pos_label, needed_for=None):
    """Position of the match class among the two `classes` (binary tasks).

    None if it is unknown and `needed_for` is None; otherwise an unknown
    match class raises a ValueError saying that `needed_for` needs it.
    """
    try:
        return positive_index(classes, pos_label, needed_for or "threshold_")
    except ValueError:
        if needed_for is None and pos_label is None:
            return None
        raise


def check_threshold_known(classes, pos_label):
    """For ``threshold_`` found missing on a model fitted on `classes` (None
    if unfitted): raise why, for a binary model whose match class is unknown
    (an ``UnknownPositiveClass``)."""
    if classes is not None and len(classes) == 2:
        try:
            match_index(classes, pos_label, "threshold_")
        except ValueError as exc:
            raise UnknownPositiveClass(str(exc)) from None


def loaded_pos_label(classes, pos_label, decision_threshold, threshold):
    """The `pos_label` and ``threshold_`` (None for none) of a loaded model,
    checked against its classes.

    Versions before `pos_label` applied ``threshold_`` to ``classes_[1]``
    whatever the labels. A model they saved with labels from which no
    match class can be inferred predicts as before: the most probable
    class if its threshold was 0.5, else with ``pos_label=classes_[1]``.
    """
    if len(classes) != 2:
        check_pos_label(classes, pos_label, decision_threshold)
        return pos_label, threshold
    if match_index(classes, pos_label) is not None or threshold is None:
        return pos_label, threshold
    if threshold == 0.5:
        return pos_label, None
    pos_label = classes.tolist()[1]
    warnings.warn(
        f"The model was saved without pos_label and its threshold_={threshold} "
        f"applies to the probability of classes_[1]; it is loaded with "
        f"pos_label={pos_label!r}, which link() and deduplicate() take as "
        "the match. Set pos_label=... and refit if that is not the match.",
        UserWarning,
        stacklevel=5,
    )
    return pos_label, threshold


def positive_index(classes, pos_label, needed_for):
    """Position of the match (positive) class among the two `classes`.

    `pos_label` None is inferred as scikit-learn does, only for the classes
    {0, 1} and {-1, 1} (1) and {False, True} (True). Otherwise, or when
    `pos_label` is not a class, a ValueError names `needed_for` (what needs
    the match class), `pos_label` and the classes.
    """
    classes = np.asarray(classes)
    labels = classes.tolist()
    label = pos_label
    if label is None:
        try:
            label = _check_pos_label_consistency(None, classes)
        except ValueError:
            raise ValueError(
                f"{needed_for} needs to know which class is the match; the classes are "
                f"{labels}. Pass pos_label=<the match label> to RecordPairClassifier, "
                "or use the labels 0/1, -1/1 or False/True, from which it is inferred."
            ) from None
    found = [i for i, c in enumerate(labels) if _same_label(c, label)]
    if not found:
        raise ValueError(f"pos_label={pos_label!r} is not one of the classes {labels}.")
    return found[0]


def _same_label(a, b):
    # 1 == 1.0 == True as labels (as in numpy), but never "1" == 1.
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


class UnknownPositiveClass(ValueError, AttributeError):
    """``threshold_`` of a binary model whose match class is unknown: a
    ValueError that says why, and an AttributeError so that ``hasattr`` and
    ``getattr(..., default)`` treat it as absent."""


def predicted_labels(classes, proba, threshold=None, pos_label=None):
    """The labels predicted from the probabilities `proba` of the `classes`:
    for two classes and a `threshold`, the match class (`pos_label`, or
    inferred) where its probability exceeds it; else the most probable."""
    if len(classes) == 2 and threshold is not None:
        positive = match_index(classes, pos_label, "predict() with threshold_")
        match = proba[:, positive] > threshold
        return classes[np.where(match, positive, 1 - positive)]
    return classes[proba.argmax(axis=1)]
