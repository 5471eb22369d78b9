"""The network with skorch: its hyperparameters, training and prediction.

``RecordPairClassifier.fit`` builds the skorch net with :func:`build_net` from
explicit values (the network's hyperparameters, the sizes the fitted
featurizer sets, the training settings) and hands it the featurizer's encoded
pairs through :func:`train`, which trains it or continues training it; the
:class:`ThresholdOnValid` callback chooses the decision threshold on the
validation pairs that skorch holds. :func:`predict_encoded` scores encoded
pairs. The net's saved state is ``net_state``'s.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, fields

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import (
    check_consistent_length,
    column_or_1d,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split

from .._threads import N_JOBS_CONSTRAINT, batch_threads, torch_threads
from .._validation import POSITIVE, Interval, SequenceOf, StrOptions, TorchDevice
from .batches import PairDataset, collate_pairs
from .network import MATCHING_STRATEGIES, RecordPairNetwork

# The network's arguments that the training data determine; the network's other
# keyword-only arguments are hyperparameters of the estimator, of the same name
# and default (tested), forwarded to RecordPairNetwork as module__<name>.
NETWORK_DATA_SIZES = (
    "n_words",
    "n_chars",
    "n_classes",
    "n_similarity_features",
    "pretrained_dim",
)
# Kept at the network's default in every network the estimator builds.
NETWORK_OPTIONS_NOT_OFFERED = ("pretrained_hidden_size",)
NETWORK_PARAMS = tuple(
    name
    for name, parameter in inspect.signature(RecordPairNetwork).parameters.items()
    if parameter.kind is parameter.KEYWORD_ONLY
    and name not in NETWORK_DATA_SIZES + NETWORK_OPTIONS_NOT_OFFERED
)
OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}

_ENCODERS = StrOptions({"cnn", "gru", "lstm"})
_STRATEGIES = SequenceOf(
    [StrOptions(set(MATCHING_STRATEGIES))],
    f"the strategies {list(MATCHING_STRATEGIES)}",
)
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

# The allowed values of the training settings.
# Far above any batch that fits in memory, and below sys.maxsize on every
# platform: beyond it the data loader's islice() fails with an unrelated error.
MAX_BATCH_SIZE = 2**31 - 1

TRAINING_CONSTRAINTS = {
    "max_epochs": [POSITIVE],
    "batch_size": [Interval(numbers.Integral, 1, MAX_BATCH_SIZE, closed="both")],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "optimizer": [StrOptions(set(OPTIMIZERS)), callable],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_iter_no_change": [POSITIVE],
    "decision_threshold": [
        Interval(numbers.Real, 0, 1, closed="neither"),
        StrOptions({"auto"}),
    ],
    "pos_label": "no_validation",  # checked against the classes in fit
    "class_weight": [StrOptions({"balanced"}), dict, None],
    "random_state": ["random_state"],
    "device": [TorchDevice()],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "callbacks": [list, tuple, None],
    "n_jobs": N_JOBS_CONSTRAINT,
}


@dataclass(frozen=True)
class TrainingSettings:
    """The estimator's settings of the skorch net and of its training loop
    (its parameters of the same names)."""

    max_epochs: int
    batch_size: int
    lr: float
    optimizer: object
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    device: object
    verbose: int
    callbacks: object

    @classmethod
    def from_params(cls, params):
        """The settings among the estimator's parameters `params` (a dict)."""
        return cls(**{field.name: params[field.name] for field in fields(cls)})


def build_net(network_params, sizes, settings, class_weights, seed, valid=None):
    """A skorch net of the record-pair network, not yet trained.

    Parameters
    ----------
    network_params : dict
        The network's hyperparameters (``NETWORK_PARAMS``).
    sizes : dict
        The network's sizes that the data set (``NETWORK_DATA_SIZES``): the
        featurizer's ``network_sizes()`` and ``n_classes``.
    settings : TrainingSettings
        The net's and the training loop's settings.
    class_weights : torch.Tensor or None
        The weight of each class in the loss (:func:`class_weights`).
    seed : int
        Seeds the validation split and the shuffling of the batches.
    valid : PairDataset, default=None
        Validation pairs replacing the internal split.

    Returns
    -------
    skorch.NeuralNetClassifier
        Its last callback, ``"threshold"``, chooses the decision threshold at
        the end of each training (:class:`ThresholdOnValid`).
    """
    callbacks = list(settings.callbacks or [])
    train_split = False
    if settings.early_stopping:
        train_split = (
            ValidSplit(settings.validation_fraction, stratified=True, random_state=seed)
            if valid is None
            else predefined_split(valid)
        )
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=settings.n_iter_no_change,
                    load_best=True,
                ),
            )
        )
    if settings.verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    # Last, so that it scores with the weights EarlyStopping restored.
    callbacks.append(("threshold", ThresholdOnValid()))
    return NeuralNetClassifier(
        RecordPairNetwork,
        **{f"module__{name}": size for name, size in sizes.items()},
        **{f"module__{name}": value for name, value in network_params.items()},
        criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=class_weights,
        optimizer=OPTIMIZERS.get(settings.optimizer, settings.optimizer),
        lr=settings.lr,
        max_epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        train_split=train_split,
        callbacks=callbacks,
        iterator_train__collate_fn=collate_pairs,
        iterator_valid__collate_fn=collate_pairs,
        iterator_valid__batch_size=prediction_batch_size(settings.batch_size),
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(seed),
        classes=list(range(sizes["n_classes"])),
        device=settings.device,
        verbose=int(settings.verbose),
    )


def train(
    net,
    dataset,
    y_encoded,
    seed,
    settings,
    *,
    valid=None,
    continuing=False,
    decision_threshold="auto",
    positive=None,
):
    """Train the skorch `net` on the encoded pairs `dataset`, or continue
    training it (``warm_start``), and choose its decision threshold.

    The network runs on torch's threads, as many as batches of ``batch_size``
    pairs can use (``batch_threads``).

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        A net of :func:`build_net`, trained before when `continuing`.
    dataset : PairDataset
        The training pairs.
    y_encoded : ndarray of shape (n_pairs,)
        Their class indices.
    seed : int
        Seeds torch's random numbers during training.
    settings : TrainingSettings
        The training settings; when `continuing`, they replace those the net
        was trained with.
    valid : PairDataset, default=None
        The validation pairs (``validation_data``), if any.
    continuing : bool, default=False
        Continue training the trained `net`.
    decision_threshold : float or "auto", default="auto"
        The estimator's parameter.
    positive : int or None, default=None
        The index of the match class; None (no known match class) chooses
        no threshold.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        The trained `net`.
    threshold : float or None
        The decision threshold on the probability of the class `positive`
        (None when `positive` is None).
    """
    chooser = _threshold_callback(net)
    chooser.decision_threshold = decision_threshold
    chooser.positive = positive
    chooser.valid = valid
    # Seed a private RNG stream so that fitting never disturbs the caller's
    # (scoring the validation pairs for the threshold draws from it too: each
    # DataLoader iteration takes a seed).
    with (
        torch.random.fork_rng(devices=[]),
        torch_threads(batch_threads(settings.batch_size)),
    ):
        torch.manual_seed(seed)
        if continuing:
            continue_training(net, settings, dataset, y_encoded, valid)
        else:
            net.fit(dataset, y_encoded)
    return net, chooser.threshold_


def _threshold_callback(net):
    """The net's ``ThresholdOnValid`` (the callbacks given by the user may be
    bare instances; build_net names its own)."""
    callbacks = net.callbacks_ if net.initialized_ else net.callbacks
    return dict(c for c in callbacks if isinstance(c, tuple))["threshold"]


class ThresholdOnValid(Callback):
    """Chooses the decision threshold at the end of training, on the
    validation pairs that skorch holds (``dataset_valid``).

    It runs after ``EarlyStopping`` (the last callback of :func:`build_net`),
    so the threshold is chosen with the best epoch's weights. :func:`train`
    sets its attributes before each training.

    Parameters
    ----------
    decision_threshold : float or "auto", default="auto"
        A number is the threshold; ``"auto"`` chooses the one that maximises
        F1 of the class `positive` on the validation pairs, or 0.5 without any.
    positive : int or None, default=None
        The match class's index; None chooses no threshold.
    valid : PairDataset, default=None
        The validation pairs when skorch holds none: ``validation_data``
        without early stopping, where they only serve the threshold.

    Attributes
    ----------
    threshold_ : float or None
        The threshold of the last training.
    """

    def __init__(self, decision_threshold="auto", positive=None, valid=None):
        self.decision_threshold = decision_threshold
        self.positive = positive
        self.valid = valid

    def on_train_begin(self, net, **kwargs):
        self.threshold_ = None
        self.dataset_valid_ = None

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        self.dataset_valid_ = dataset_valid

    def on_train_end(self, net, **kwargs):
        valid = self.valid if self.dataset_valid_ is None else self.dataset_valid_
        # The pairs are not kept with the trained net.
        self.valid = self.dataset_valid_ = None
        if self.positive is not None:
            self.threshold_ = choose_threshold(
                net, self.decision_threshold, self.positive, valid
            )


def class_weights(class_weight, classes, y_encoded):
    """The loss's weight of each class, as a tensor (None for equal weights),
    from the estimator's `class_weight`, its `classes` and the training
    pairs' class indices `y_encoded`."""
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(
                f"class_weight names labels {sorted(unknown, key=str)} that are "
                f"not in y; the classes are {list(classes)}."
            )
        class_weight = {
            i: class_weight.get(label, 1.0) for i, label in enumerate(classes.tolist())
        }
    return torch.as_tensor(
        compute_class_weight(
            class_weight, classes=np.arange(len(classes)), y=y_encoded
        ),
        dtype=torch.float32,
    )


def continue_training(net, settings, dataset, y_encoded, valid=None):
    """Train the fitted `net` further (``warm_start``), with the `settings`.

    Training settings changed with ``set_params`` since the last fit apply to
    the continued training; the optimizer keeps its state. (Attributes, not
    ``set_params``, which would re-initialise the net.)
    """
    net.max_epochs = settings.max_epochs
    net.batch_size = settings.batch_size
    net.iterator_valid__batch_size = prediction_batch_size(settings.batch_size)
    for group in net.optimizer_.param_groups:
        group["lr"] = settings.lr
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


def choose_threshold(net, decision_threshold, positive, valid=None):
    """The decision threshold on the probability of the class `positive`:
    `decision_threshold`, or for ``"auto"`` the one that maximises F1 of that
    class on the validation pairs `valid` (a dataset or a subset of one);
    0.5 when there are none."""
    if decision_threshold != "auto":
        return float(decision_threshold)
    if valid is None:
        return 0.5
    y_valid = valid.dataset.y[valid.indices] if hasattr(valid, "indices") else valid.y
    scores = net.predict_proba(valid)[:, positive]
    return best_f1_threshold((np.asarray(y_valid) == positive).astype(int), scores)


def predict_encoded(net, encoded):
    """The class probabilities of the encoded pairs (an ``EncodedPairs``), on
    as many of torch's threads as the batches can use."""
    # Pairs of similar length share batches (less padding); masking makes each
    # probability independent of its batch, up to rounding. Each distinct
    # input is scored once, so that shuffled rows and copies of a pair get
    # the same probabilities, bit for bit.
    rows, where = encoded.distinct_by_length()
    # Older pickled nets may predate the prediction batch size.
    batch = min(len(rows), getattr(net, "iterator_valid__batch_size", net.batch_size))
    with torch_threads(batch_threads(batch)):
        proba = np.asarray(
            net.predict_proba(PairDataset(encoded.take(rows))), dtype=np.float64
        )
    return proba[where]


def best_f1_threshold(y_true, scores):
    """The threshold on `scores` that maximises F1 of the positive class (1).

    This is how ``decision_threshold="auto"`` chooses
    :attr:`RecordPairClassifier.threshold_` on the validation pairs; use it to
    give any other scorer (a scikit-learn pipeline's ``predict_proba``) a
    threshold chosen the same way.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,)
        True labels, 1 for a match and 0 otherwise.
    scores : array-like of shape (n_pairs,)
        Match scores, higher for more likely matches, such as the
        ``predict_proba(X)[:, 1]`` of a classifier.

    Returns
    -------
    threshold : float
        Pairs scoring strictly above it are matches. It lies halfway between
        the lowest score kept and the highest score left out, and is 0.5 when
        `y_true` holds no match.

    Examples
    --------
    >>> from skrecordpair import best_f1_threshold
    >>> best_f1_threshold([1, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.1])
    0.35
    """
    y_true = column_or_1d(y_true)
    scores = column_or_1d(scores).astype(float, copy=False)
    check_consistent_length(y_true, scores)
    order = np.argsort(-scores, kind="stable")
    scores, y_true = scores[order], y_true[order]
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
