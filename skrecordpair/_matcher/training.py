"""The network with skorch: its hyperparameters, training and saved state.

``RecordPairClassifier.fit`` hands the featurizer's encoded pairs to
:func:`train`, which builds the skorch net (the estimator's hyperparameters
are read from it by name), trains it or continues training it, and chooses the
decision threshold. :func:`net_state` and :func:`load_net` are the net's own
saved state: its constructor arguments, weights and optimizer state, each
tensor checked against the network before it is built.
"""

from __future__ import annotations

import inspect
import json
import numbers
import warnings

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import (
    check_consistent_length,
    column_or_1d,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split

from .._pairs import resolve_pair_args
from .._persistence import (
    MODEL,
    SAFETENSORS_DTYPES,
    WEIGHTS,
    Unsupported,
    check_finite,
    check_tensor,
    decode_value,
    encode_value,
    expect_keys,
    invalid,
    parse_weights,
    safetensors_header,
    short,
    weights_limit,
)
from .._threads import N_JOBS_CONSTRAINT, batch_threads, torch_threads
from .._validation import POSITIVE, Interval, SequenceOf, StrOptions, TorchDevice
from .batches import PairDataset, collate_pairs
from .classes import encode_validation_labels, match_index
from .network import MATCHING_STRATEGIES, RecordPairNetwork

# The network's arguments that the training data determine; the network's other
# keyword-only arguments are hyperparameters of the estimator, of the same name
# and default (tested), forwarded to RecordPairNetwork as module__<name>.
NETWORK_DATA_SIZES = ("n_words", "n_chars", "n_classes", "n_similarity_features",
                      "pretrained_dim")
# Kept at the network's default in every network the estimator builds.
NETWORK_OPTIONS_NOT_OFFERED = ("pretrained_hidden_size",)
NETWORK_PARAMS = tuple(
    name for name, parameter in inspect.signature(RecordPairNetwork).parameters.items()
    if parameter.kind is parameter.KEYWORD_ONLY
    and name not in NETWORK_DATA_SIZES + NETWORK_OPTIONS_NOT_OFFERED
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
    "decision_threshold": [Interval(numbers.Real, 0, 1, closed="neither"),
                           StrOptions({"auto"})],
    "pos_label": "no_validation",  # checked against the classes in fit
    "class_weight": [StrOptions({"balanced"}), dict, None],
    "random_state": ["random_state"],
    "device": [TorchDevice()],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "callbacks": [list, tuple, None],
    "n_jobs": N_JOBS_CONSTRAINT,
}


def check_training_params(clf):
    """Check the training settings that depend on each other (none at present:
    ``decision_threshold="auto"`` without validation pairs is 0.5)."""


def train(clf, dataset, y_encoded, seed, validation_data=None, *, continuing=False):
    """Train the net of the classifier `clf` on the encoded pairs `dataset` (or
    continue training it), then set its decision threshold.

    The network runs on torch's threads, as many as batches of ``batch_size``
    pairs can use (``batch_threads``).

    ``clf.classes_`` and ``clf.featurizer_`` are fitted; ``clf.net_`` and
    ``clf.threshold_`` are set.
    """
    valid = None if validation_data is None else validation_dataset(clf, validation_data)
    if clf.early_stopping and valid is None:
        check_validation_split(clf.validation_fraction, len(y_encoded),
                               len(clf.classes_))
    # Seed a private RNG stream so that fitting never disturbs the caller's
    # (scoring the validation pairs for the threshold draws from it too: each
    # DataLoader iteration takes a seed).
    with torch.random.fork_rng(devices=[]), torch_threads(batch_threads(clf.batch_size)):
        torch.manual_seed(seed)
        if continuing:
            continue_training(clf.net_, clf, dataset, y_encoded, valid)
        else:
            clf.net_ = build_net(clf, y_encoded, seed, valid)
            clf.net_.fit(dataset, y_encoded)
        positive = match_index(clf) if len(clf.classes_) == 2 else None
        if positive is None:
            # Without a known match class there is no threshold; a refit must
            # not keep one from an earlier fit.
            vars(clf).pop("threshold_", None)
        else:
            clf.threshold_ = choose_threshold(clf.net_, clf.decision_threshold,
                                              dataset, y_encoded, positive, valid)


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
        module__pretrained_dim=clf.featurizer_.pretrained_dim,
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


def validation_dataset(clf, validation_data):
    """The `validation_data` of ``clf.fit`` as a dataset of encoded pairs."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError(
            "validation_data must be a tuple (X_valid, y_valid) or (X_valid_left, "
            f"X_valid_right, y_valid); got {type(validation_data).__name__}."
        )
    X, y = resolve_pair_args("fit", tuple(validation_data), clf.left_prefix,
                             clf.right_prefix, with_y=True)
    X = clf._validate_pairs(X, reset=False)
    return PairDataset(clf.featurizer_.transform(X),
                       encode_validation_labels(X, y, clf.classes_))


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


def choose_threshold(net, decision_threshold, dataset, y_encoded, positive, valid=None):
    """The decision threshold on the probability of the class `positive`:
    `decision_threshold`, or for ``"auto"`` the one that maximises F1 of that
    class on the validation pairs: `valid` (``validation_data``), else the
    net's internal split; 0.5 when there are none (no early stopping)."""
    if decision_threshold != "auto":
        return float(decision_threshold)
    if valid is None:
        if not net.train_split:
            return 0.5
        _, valid = net.train_split(dataset, y_encoded)
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
        proba = np.asarray(net.predict_proba(PairDataset(encoded.take(rows))),
                           dtype=np.float64)
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


# ---------------------------------------------------------------- saved state


def net_state(net):
    """The trained skorch `net` as plain data, tensors and history.

    Returns
    -------
    state : dict
        ``network`` (the module's constructor arguments), ``shared_weights``
        (weights saved once under another name) and ``optimizer`` (the
        non-tensor part of the optimizer state, or None).
    tensors : dict of str to torch.Tensor
        The module's weights (``module.*``), the loss's class weights, the
        optimizer's tensors and the training shuffler's state.
    history : list
        skorch's training history, as JSON data.
    """
    tensors = {}
    module_state, shared = _dedup_shared(net.module_.state_dict())
    tensors.update({f"module.{k}": v for k, v in module_state.items()})
    weight = getattr(net.criterion_, "weight", None)
    if weight is not None:
        tensors["criterion.weight"] = weight.detach()
    generator = net.get_params().get("iterator_train__generator")
    if isinstance(generator, torch.Generator):
        tensors["generator.state"] = generator.get_state()
    optimizer = _optimizer_state(net, tensors)
    network = {k[len("module__"):]: v for k, v in net.get_params().items()
               if k.startswith("module__")}
    state = {"network": {k: encode_value(v, f"module__{k}") for k, v in network.items()},
             "shared_weights": shared, "optimizer": optimizer}
    return state, tensors, _history(net)


def network_arguments(saved):
    """The network's constructor arguments saved by :func:`net_state`."""
    if not isinstance(saved, dict):
        raise invalid(f"{MODEL} 'network' must be a JSON object")
    allowed = set(inspect.signature(RecordPairNetwork).parameters)
    unknown = sorted(set(saved) - allowed)
    if unknown:
        raise invalid(f"the network has unknown argument(s) {unknown}")
    return {k: decode_value(v, f"network argument {k!r}") for k, v in saved.items()}


def load_net(clf, state, read_weights, history, seed):
    """The net of the classifier `clf` saved by :func:`net_state`.

    `clf` holds its hyperparameters, ``classes_`` and ``featurizer_``;
    `state` is :func:`net_state`'s with the decoded :func:`network_arguments`;
    ``read_weights(limit)`` returns the weights file's bytes. Every tensor's
    shape is checked against the network, built on the meta device, before
    any tensor is loaded or any module is built.
    """
    n_classes = len(clf.classes_)
    blueprint = _blueprint(state["network"])
    tensors = _read_tensors(read_weights, blueprint, state["shared_weights"])
    module_state = _module_state(tensors, state["shared_weights"])
    class_weight = _class_weight(tensors.pop("criterion.weight", None), n_classes)
    optimizer_state = _saved_optimizer_state(state["optimizer"], tensors,
                                             list(blueprint.parameters()))
    generator_state = tensors.pop("generator.state", None)
    if tensors:
        raise invalid(f"{WEIGHTS} holds unknown tensors {sorted(tensors)[:5]}")
    # Dummy labels: the class weights of the loss are restored from the file.
    net = build_net(clf, np.arange(n_classes), seed=seed)
    net.set_params(**{f"module__{k}": v for k, v in state["network"].items()},
                   criterion__weight=class_weight)
    _restore_generator(net, generator_state)
    try:
        net.initialize()
    except Exception as exc:  # whatever the constructor raises on bad arguments
        raise invalid(f"cannot build the network from the saved arguments: {exc}") from None
    net.module_.load_state_dict(module_state)
    _load_optimizer(net, optimizer_state)
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        raise invalid("history.json must be a list of epochs")
    from skorch.history import History

    net.history_ = History(history)
    return net


def _dedup_shared(state):
    """Drop the keys that alias an earlier tensor (safetensors refuses them).

    ``BiMpmMatching`` with shared weights registers one Parameter under two
    names; the alias is restored from its canonical name on load (and the
    rebuilt network shares the Parameter again by construction).
    """
    seen, out, shared = {}, {}, {}
    for key, tensor in state.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(),
                 tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if tensor.numel() and ident in seen:
            shared[key] = seen[ident]
            continue
        seen.setdefault(ident, key)
        out[key] = tensor
    # Any remaining partial overlap gets its own copy.
    return {k: v.clone() for k, v in out.items()}, shared


def _optimizer_state(net, tensors):
    optimizer = getattr(net, "optimizer_", None)
    if optimizer is None:
        return None
    state = optimizer.state_dict()
    try:
        groups = encode_value(state["param_groups"], "optimizer param_groups")
        scalars = {}
        for index, entry in state["state"].items():
            scalars[str(index)] = {}
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{index}.{key}"] = value.detach()
                    scalars[str(index)][key] = {"__tensor__": f"optimizer.{index}.{key}"}
                else:
                    scalars[str(index)][key] = encode_value(value, f"optimizer state {key}")
    except Unsupported as exc:
        warnings.warn(
            f"The optimizer state is not saved ({exc}); training with warm_start "
            "after loading restarts the optimizer's running averages.",
            UserWarning, stacklevel=5)
        for key in [k for k in tensors if k.startswith("optimizer.")]:
            del tensors[key]
        return None
    return {"param_groups": groups, "state": scalars}


def _history(net):
    history = list(getattr(net, "history_", None) or [])

    def scalar(value):
        if isinstance(value, np.generic) or (isinstance(value, torch.Tensor)
                                             and value.numel() == 1):
            return value.item()
        raise TypeError(type(value).__name__)

    try:
        return json.loads(json.dumps(history, default=scalar))
    except (TypeError, ValueError):
        warnings.warn("The training history holds values that are not plain data "
                      "(written by a callback?); it is not saved.", UserWarning,
                      stacklevel=5)
        return []


# Optimizer state that is one number per parameter (Adam's step count, ASGD's
# eta and mu, NAdam's mu_product); any other optimizer tensor is per element.
_SCALAR_OPTIMIZER_STATE = frozenset({"step", "mu_product", "eta", "mu"})


def _blueprint(network):
    """The network that the saved arguments describe, on the meta device.

    A meta module has the shapes and dtypes of its tensors but no storage, so
    arguments that describe a huge network cost nothing before the weights are
    checked against it.
    """
    try:
        with torch.device("meta"):
            return RecordPairNetwork(**network)
    except Exception as exc:  # whatever the constructor raises on bad arguments
        raise invalid(f"cannot build the network from the saved arguments: {exc}") from None


def _read_tensors(read_weights, blueprint, shared):
    """The saved tensors, read once their header fits the network."""
    data = read_weights(weights_limit([*blueprint.parameters(), *blueprint.buffers()]))
    _check_module_header(safetensors_header(data), blueprint, shared)
    return parse_weights(data)


def _check_shared(shared):
    if not (isinstance(shared, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in shared.items())):
        raise invalid("shared_weights must map names to names")


def _check_module_header(header, blueprint, shared):
    """The module's tensors in the header have exactly the network's names and shapes."""
    _check_shared(shared)
    saved = {k[len("module."):]: v for k, v in header.items() if k.startswith("module.")}
    for alias, canonical in shared.items():
        if alias in saved or canonical not in saved:
            raise invalid(f"the shared weight {alias!r} -> {canonical!r} is inconsistent")
        saved[alias] = saved[canonical]
    expected = blueprint.state_dict()
    missing = sorted(set(expected) - set(saved))
    unknown = sorted(set(saved) - set(expected))
    if missing or unknown:
        raise invalid(f"the weights do not fit the network: missing {missing[:5]}, "
                       f"unexpected {unknown[:5]}")
    for key, target in expected.items():  # in the network's order: inputs first
        entry = saved[key]
        shape = tuple(entry["shape"])
        dtype = SAFETENSORS_DTYPES.get(entry["dtype"], entry["dtype"])
        if shape != tuple(target.shape) or dtype != target.dtype:
            raise invalid(
                f"the weight {key!r} has shape {shape} and dtype {dtype}; the network "
                f"expects {tuple(target.shape)} and {target.dtype}"
            )


def _module_state(tensors, shared):
    """The network's state dict (shared weights restored), taken out of `tensors`."""
    state = {k[len("module."):]: tensors.pop(k) for k in list(tensors)
             if k.startswith("module.")}
    for key, tensor in state.items():
        check_finite(f"module.{key}", tensor)
    for alias, canonical in shared.items():
        state[alias] = state[canonical]
    return state


def _class_weight(weight, n_classes):
    """The loss's class weights: one finite, non-negative float per class."""
    if weight is None:
        return None
    check_tensor("criterion.weight", weight, (n_classes,), torch.float32)
    if bool((weight < 0).any()):
        raise invalid("criterion.weight holds negative class weights")
    return weight


def _restore_generator(net, state):
    generator = net.get_params().get("iterator_train__generator")
    if state is None or not isinstance(generator, torch.Generator):
        return
    expected = generator.get_state()
    check_tensor("generator.state", state, expected.shape, expected.dtype)
    try:
        generator.set_state(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise invalid(f"generator.state is not a generator state: {exc}") from None


def _saved_optimizer_state(saved, tensors, params):
    """The optimizer's state dict, each tensor checked against its parameter."""
    optimizer_tensors = {k: tensors.pop(k) for k in list(tensors)
                         if k.startswith("optimizer.")}
    if saved is None:
        if optimizer_tensors:
            raise invalid("optimizer tensors without an optimizer state")
        return None
    expect_keys(saved, ("param_groups", "state"), f"{MODEL} 'optimizer'")
    groups = decode_value(saved["param_groups"], "optimizer param_groups")
    if not (isinstance(groups, list) and all(isinstance(g, dict) for g in groups)):
        raise invalid("optimizer param_groups must be a list of objects")
    if not isinstance(saved["state"], dict):
        raise invalid("optimizer state must be a JSON object")
    state = {}
    for index, entry in saved["state"].items():
        if not (index.isdigit() and isinstance(entry, dict)):
            raise invalid("invalid optimizer state")
        if int(index) >= len(params):
            raise invalid("the optimizer state names a parameter the network lacks")
        param = params[int(index)]
        state[int(index)] = {}
        for key, value in entry.items():
            if isinstance(value, dict) and set(value) == {"__tensor__"}:
                name = value["__tensor__"]
                if not isinstance(name, str) or name not in optimizer_tensors:
                    raise invalid(f"the optimizer tensor {short(name)} is missing")
                tensor = optimizer_tensors.pop(name)
                if key in _SCALAR_OPTIMIZER_STATE:
                    check_tensor(name, tensor, (), None)
                else:
                    check_tensor(name, tensor, param.shape, param.dtype)
                state[int(index)][key] = tensor
            else:
                state[int(index)][key] = decode_value(value, f"optimizer state {key!r}")
    if optimizer_tensors:
        raise invalid(f"unknown optimizer tensors {sorted(optimizer_tensors)[:5]}")
    return {"state": state, "param_groups": groups}


def _load_optimizer(net, state):
    if state is None:
        return
    try:
        net.optimizer_.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise invalid(f"the optimizer state does not fit the optimizer: {exc}") from None
