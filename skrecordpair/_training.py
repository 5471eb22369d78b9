"""Training the network with skorch: the net, its continuation, the threshold.

``RecordPairClassifier.fit`` hands the featurizer's encoded pairs to the net
built here; the estimator's hyperparameters are read from it by name.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split

from ._bimpm import MATCHING_STRATEGIES, RecordPairNetwork
from ._data import collate_pairs
from ._validation import POSITIVE, Interval, SequenceOf, StrOptions

# The network's arguments that the training data determine; the network's other
# keyword-only arguments are hyperparameters of the estimator, of the same name
# and default (tested), forwarded to RecordPairNetwork as module__<name>.
NETWORK_DATA_SIZES = ("n_words", "n_chars", "n_classes", "n_similarity_features")
NETWORK_PARAMS = tuple(
    name for name, parameter in inspect.signature(RecordPairNetwork).parameters.items()
    if parameter.kind is parameter.KEYWORD_ONLY and name not in NETWORK_DATA_SIZES
)
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

_ENCODERS = StrOptions({"cnn", "gru", "lstm"})
_STRATEGIES = SequenceOf([StrOptions(set(MATCHING_STRATEGIES))],
                         f"the strategies {list(MATCHING_STRATEGIES)}")
# The allowed values of the network's hyperparameters (see NETWORK_PARAMS).
NETWORK_CONSTRAINTS = {
    "word_dim": [Interval(numbers.Integral, 0, None, closed="left")],
    "char_dim": [POSITIVE],
    "char_encoder": [_ENCODERS, None],
    "char_hidden_size": [POSITIVE],
    "token_match_features": ["boolean"],
    "field_encoder": [_ENCODERS],
    "field_hidden_size": [POSITIVE],
    "field_bidirectional": ["boolean"],
    "record_encoder": [StrOptions({"gru", "lstm"})],
    "record_hidden_size": [POSITIVE],
    "num_perspectives": [POSITIVE],
    "forward_matching": [_STRATEGIES],
    "backward_matching": [_STRATEGIES],
    "matching_variant": [StrOptions({"paper", "allennlp"})],
    "share_matching_weights": ["boolean"],
    "aggregator": [_ENCODERS],
    "aggregator_hidden_size": [POSITIVE],
    "aggregator_bidirectional": ["boolean"],
    "hidden_layer_sizes": [SequenceOf([POSITIVE], "positive integers")],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
}


def build_net(clf, y_encoded, seed, valid=None):
    """The skorch net of the classifier `clf`, whose featurizer is fitted.

    Parameters
    ----------
    clf : RecordPairClassifier
        Its hyperparameters, ``classes_`` and ``featurizer_`` are read.
    y_encoded : ndarray of shape (n_pairs,)
        The training pairs' class indices, for ``class_weight="balanced"``.
    seed : int
        Seeds the validation split and the shuffling of the batches.
    valid : PairDataset, default=None
        Validation pairs replacing the internal split.
    """
    n_classes = len(clf.classes_)
    callbacks = list(clf.callbacks or [])
    train_split = False
    if clf.early_stopping:
        train_split = (ValidSplit(clf.validation_fraction, stratified=True,
                                  random_state=seed)
                       if valid is None else predefined_split(valid))
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=clf.n_iter_no_change, load_best=True)))
    if clf.verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    vocabulary = clf.featurizer_.vocabulary_
    return NeuralNetClassifier(
        RecordPairNetwork,
        module__n_words=len(vocabulary.words),
        module__n_chars=len(vocabulary.chars),
        module__n_classes=n_classes,
        module__n_similarity_features=clf.featurizer_.n_network_features,
        **{f"module__{name}": getattr(clf, name) for name in NETWORK_PARAMS},
        criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=_class_weights(clf.class_weight, clf.classes_, y_encoded),
        optimizer=OPTIMIZERS.get(clf.optimizer, clf.optimizer),
        lr=clf.lr,
        max_epochs=clf.max_epochs,
        batch_size=clf.batch_size,
        train_split=train_split,
        callbacks=callbacks or None,
        iterator_train__collate_fn=collate_pairs,
        iterator_valid__collate_fn=collate_pairs,
        iterator_valid__batch_size=prediction_batch_size(clf.batch_size),
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(seed),
        classes=list(range(n_classes)),
        device=clf.device,
        verbose=int(clf.verbose),
    )


def _class_weights(class_weight, classes, y_encoded):
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(
                f"class_weight names labels {sorted(unknown, key=str)} that are "
                f"not in y; the classes are {list(classes)}."
            )
        class_weight = {i: class_weight.get(label, 1.0)
                        for i, label in enumerate(classes.tolist())}
    return torch.as_tensor(
        compute_class_weight(class_weight, classes=np.arange(len(classes)), y=y_encoded),
        dtype=torch.float32,
    )


def encode_labels(y, classes=None):
    """The classes and each label's class index: the classes of `y`, or with
    `classes` (continued training) those, which must hold every label."""
    if classes is not None:
        unseen = np.setdiff1d(y, classes)
        if unseen.size:
            raise ValueError(
                f"warm_start continues training on the classes {classes.tolist()}; "
                f"y holds new labels {unseen.tolist()}. Fit a new model instead."
            )
        return classes, np.searchsorted(classes, y)
    classes, y_encoded = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "RecordPairClassifier needs at least two classes in y; got only "
            f"1 class: {classes.tolist()}."
        )
    return classes, y_encoded


def encode_validation_labels(y, classes):
    """The class index of each label of the validation pairs."""
    index = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[index] != y
    if unknown.any():
        raise ValueError(
            f"validation_data holds labels {np.unique(y[unknown]).tolist()[:5]} that "
            f"are not in y; the classes are {classes.tolist()}."
        )
    return index


def continue_training(net, clf, dataset, y_encoded, valid=None):
    """Train the fitted `net` further (``warm_start``), with `clf`'s settings.

    Training settings changed with ``set_params`` since the last fit apply to
    the continued training; the optimizer keeps its state. (Attributes, not
    ``set_params``, which would re-initialise the net.)
    """
    net.max_epochs = clf.max_epochs
    net.batch_size = clf.batch_size
    net.iterator_valid__batch_size = prediction_batch_size(clf.batch_size)
    for group in net.optimizer_.param_groups:
        group["lr"] = clf.lr
    if valid is not None:
        net.train_split = predefined_split(valid)
    return net.partial_fit(dataset, y_encoded)


def check_validation_split(validation_fraction, n_pairs, n_classes):
    """Raise if the internal validation split leaves a class out of either part."""
    n_valid = int(np.ceil(validation_fraction * n_pairs))
    if n_valid < n_classes or n_pairs - n_valid < n_classes:
        raise ValueError(
            f"early_stopping holds out validation_fraction={validation_fraction} "
            f"of the {n_pairs} training pairs ({n_valid} pairs), fewer than one per "
            f"class ({n_classes} classes). Pass more pairs, a larger "
            "validation_fraction, validation_data, or early_stopping=False."
        )


def choose_threshold(net, decision_threshold, dataset, y_encoded):
    """The decision threshold: `decision_threshold`, or for ``"auto"`` the one
    that maximises F1 on the net's validation pairs."""
    if decision_threshold != "auto":
        return float(decision_threshold)
    _, valid = net.train_split(dataset, y_encoded)
    y_valid = valid.dataset.y[valid.indices] if hasattr(valid, "indices") else valid.y
    scores = net.predict_proba(valid)[:, 1]
    return best_f1_threshold(y_valid, scores)


def best_f1_threshold(y_true, scores):
    """The threshold on `scores` that maximises F1 of the positive class (1).

    Pairs scoring strictly above the returned threshold are positive; it lies
    halfway between the last included and the first excluded score.
    """
    order = np.argsort(-scores, kind="stable")
    scores, y_true = scores[order], np.asarray(y_true)[order]
    if y_true.sum() == 0:
        return 0.5
    true_positives = np.cumsum(y_true)
    f1 = 2 * true_positives / (np.arange(1, len(scores) + 1) + y_true.sum())
    # Only cut between different scores: equal scores get the same prediction.
    f1[:-1][scores[:-1] == scores[1:]] = -1
    k = int(np.argmax(f1))
    below = scores[k + 1] if k + 1 < len(scores) else 0.0
    return float((scores[k] + below) / 2)


def prediction_batch_size(batch_size):
    """Pairs per batch at prediction (and in ``explain``).

    Prediction needs no gradients, so large batches are cheap, and each GRU
    step then advances more sequences at once (the sizes measured are in
    benchmarks/RESULTS.md, "Faster prediction on large calls"); masking makes
    the results independent of the batch size.
    """
    return max(batch_size, 1024)
