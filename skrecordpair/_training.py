"""Training the network with skorch: the net, its continuation, the threshold.

``RecordPairClassifier.fit`` hands the featurizer's encoded pairs to the net
built here; the estimator's hyperparameters are read from it by name.
"""

from __future__ import annotations

import inspect
import json
import numbers
import warnings

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split

from ._bimpm import MATCHING_STRATEGIES, RecordPairNetwork
from ._data import PairDataset, collate_pairs
from ._persistence import (
    MODEL,
    WEIGHTS,
    Unsupported,
    decode_value,
    encode_value,
    expect_keys,
    invalid,
    short,
)
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

# The allowed values of the training settings.
TRAINING_CONSTRAINTS = {
    "max_epochs": [POSITIVE],
    "batch_size": [POSITIVE],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "optimizer": [StrOptions(set(OPTIMIZERS)), callable],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_iter_no_change": [POSITIVE],
    "decision_threshold": [Interval(numbers.Real, 0, 1, closed="neither"),
                           StrOptions({"auto"})],
    "class_weight": [StrOptions({"balanced"}), dict, None],
    "random_state": ["random_state"],
    "device": [str, torch.device],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "callbacks": [list, tuple, None],
}


def check_training_params(clf):
    """Check the training settings that depend on each other."""
    if clf.decision_threshold == "auto" and not clf.early_stopping:
        raise ValueError(
            'decision_threshold="auto" chooses the threshold on the validation '
            "pairs, which need early_stopping=True."
        )


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


def encode_labels(X, y, classes=None):
    """The classes and each label's class index of the labels `y` of the pairs
    `X`: the classes of `y`, or with `classes` (continued training) those,
    which must hold every label."""
    if y is None:
        raise ValueError(
            "RecordPairClassifier requires y to be passed, but the target y is "
            "None; pass the labels of the pairs."
        )
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
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


def predict_encoded(net, encoded):
    """The class probabilities of the encoded pairs (an ``EncodedPairs``)."""
    # Pairs of similar length share batches (less padding); masking makes each
    # probability independent of its batch, so the order can be restored.
    order = encoded.by_length()
    proba = np.empty((len(encoded), len(net.classes)))
    proba[order] = net.predict_proba(PairDataset(encoded.take(order)))
    return proba


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


def load_net(clf, state, tensors, history, seed):
    """The net of the classifier `clf` saved by :func:`net_state`.

    `clf` holds its hyperparameters, ``classes_`` and ``featurizer_``;
    `state` is :func:`net_state`'s with the decoded :func:`network_arguments`;
    the `tensors` used are removed from the dict.
    """
    n_classes = len(clf.classes_)
    # Dummy labels: the class weights of the loss are restored from the file below.
    net = build_net(clf, np.arange(n_classes), seed=seed)
    net.set_params(**{f"module__{k}": v for k, v in state["network"].items()},
                   criterion__weight=tensors.pop("criterion.weight", None))
    try:
        net.initialize()
    except Exception as exc:  # whatever the constructor raises on bad arguments
        raise invalid(f"cannot build the network from the saved arguments: {exc}") from None
    _load_module(net.module_, tensors, state["shared_weights"])
    generator_state = tensors.pop("generator.state", None)
    generator = net.get_params().get("iterator_train__generator")
    if generator_state is not None and isinstance(generator, torch.Generator):
        try:
            generator.set_state(generator_state)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise invalid(f"generator.state is not a generator state: {exc}") from None
    _load_optimizer(net, state["optimizer"], tensors)
    if tensors:
        raise invalid(f"{WEIGHTS} holds unknown tensors {sorted(tensors)[:5]}")
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


def _load_module(module, tensors, shared):
    if not (isinstance(shared, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in shared.items())):
        raise invalid("shared_weights must map names to names")
    state = {k[len("module."):]: tensors.pop(k) for k in list(tensors)
             if k.startswith("module.")}
    for alias, canonical in shared.items():
        if alias in state or canonical not in state:
            raise invalid(f"the shared weight {alias!r} -> {canonical!r} is inconsistent")
        state[alias] = state[canonical]
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    if missing or unknown:
        raise invalid(f"the weights do not fit the network: missing {missing[:5]}, "
                       f"unexpected {unknown[:5]}")
    for key, tensor in state.items():
        target = expected[key]
        if tensor.shape != target.shape or tensor.dtype != target.dtype:
            raise invalid(
                f"the weight {key!r} has shape {tuple(tensor.shape)} and dtype "
                f"{tensor.dtype}; the network expects {tuple(target.shape)} and "
                f"{target.dtype}"
            )
    module.load_state_dict(state)


def _load_optimizer(net, saved, tensors):
    optimizer_tensors = {k: tensors.pop(k) for k in list(tensors)
                         if k.startswith("optimizer.")}
    if saved is None:
        if optimizer_tensors:
            raise invalid("optimizer tensors without an optimizer state")
        return
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
        state[int(index)] = {}
        for key, value in entry.items():
            if isinstance(value, dict) and set(value) == {"__tensor__"}:
                name = value["__tensor__"]
                if name not in optimizer_tensors:
                    raise invalid(f"the optimizer tensor {short(name)} is missing")
                state[int(index)][key] = optimizer_tensors.pop(name)
            else:
                state[int(index)][key] = decode_value(value, f"optimizer state {key!r}")
    if optimizer_tensors:
        raise invalid(f"unknown optimizer tensors {sorted(optimizer_tensors)[:5]}")
    params = list(net.module_.parameters())
    for index, entry in state.items():
        if index >= len(params):
            raise invalid("the optimizer state names a parameter the network lacks")
        for key, value in entry.items():
            if (isinstance(value, torch.Tensor) and value.dim() > 0
                    and value.shape != params[index].shape):
                raise invalid(f"the optimizer's {key!r} of parameter {index} has the "
                               "wrong shape")
    try:
        net.optimizer_.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise invalid(f"the optimizer state does not fit the optimizer: {exc}") from None
