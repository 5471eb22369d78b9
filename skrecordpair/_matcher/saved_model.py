"""The fitted ``RecordPairClassifier``'s saved state, composed of its parts'.

``RecordPairClassifier.save`` and ``load`` write and read through these: the
estimator's own state (hyperparameters, classes, the fitted attributes such as
``threshold_``) beside the states that the featurizer and the network give of
themselves (``PairFeaturizer.to_state``, ``net_state`` in ``training``). The
files, their manifest and the checked readers are ``_persistence``'s.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._persistence import (
    CONFIG,
    MODEL,
    Unsupported,
    decode_classes,
    decode_value,
    encode_classes,
    encode_value,
    expect_keys,
    invalid,
    short,
)
from .classes import loaded_pos_label
from .featurizer import PairFeaturizer
from .net_state import load_net, net_state, network_arguments
from .text_encoder import encoders_from_local_files
from .training import NETWORK_PARAMS, TrainingSettings

# The featurizer's entries of model.json (format 1 keeps them at the top level;
# its numeric fields are among the attributes).
_FEATURIZER_KEYS = ("fields", "encoder", "vocabulary")
# Fitted attributes rebuilt from their own entries; any other public fitted
# attribute (e.g. ``threshold_``) is saved generically if it is plain data.
_REBUILT = frozenset({"classes_", "fields_", "vocabulary_", "net_", "prior_",
                      "n_features_in_", "feature_names_in_", "featurizer_",
                      "numeric_fields_"})
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*_")


def saved_state(params, attributes, featurizer, net):
    """The contents of a fitted classifier's files, for ``save_files``.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params(deep=False)``).
    attributes : dict
        The estimator's own attributes (its ``vars``): ``classes_``,
        ``n_features_in_``, ``feature_names_in_`` (if any), and any other
        public fitted attribute of plain data such as ``threshold_``.
    featurizer : PairFeaturizer
        The fitted featurizer.
    net : skorch.NeuralNetClassifier
        The trained net.
    """
    state = featurizer.to_state()
    network, tensors, history = net_state(net)
    names = attributes.get("feature_names_in_")
    model = {
        "classes": encode_classes(attributes["classes_"]),
        **{key: state[key] for key in _FEATURIZER_KEYS},
        "n_features_in": int(attributes["n_features_in_"]),
        "feature_names_in": None if names is None else [str(n) for n in names],
        **network,
        "attributes": {"numeric_fields_": state["numeric_fields"],
                       **_extra_attributes(attributes)},
    }
    for key in ("tfidf", "text_encoder"):
        if key in state:
            model[key] = state[key]
    return {"config": {"params": _encode_params(params)}, "model": model,
            "tensors": tensors, "history": history, "prior": featurizer.prior_}


def _encode_params(params):
    out = {}
    for name, value in params.items():
        if name == "callbacks" and value is not None:
            warnings.warn(
                "The callbacks are not saved (they are arbitrary Python objects); "
                "the loaded model has callbacks=None. Set them again with "
                "set_params(callbacks=...) before continuing training, or save the "
                "model with pickle/joblib.", UserWarning, stacklevel=4)
            value = None
        elif name == "random_state" and isinstance(value, np.random.RandomState):
            warnings.warn(
                "random_state is a RandomState instance, which is not saved; the "
                "loaded model has random_state=None (it only affects training).",
                UserWarning, stacklevel=4)
            value = None
        try:
            out[name] = encode_value(value, name)
        except Unsupported as exc:
            raise ValueError(
                f"Cannot save the model as plain data: the parameter {exc}. Use a "
                "value made of strings, numbers, booleans, lists, tuples and dicts "
                "(for optimizer: 'adam', 'adamw', 'sgd' or a class of torch.optim), "
                "or save the model with pickle/joblib."
            ) from None
    return out


def _extra_attributes(attributes):
    out = {}
    for name, value in attributes.items():
        if name in _REBUILT or not _ATTRIBUTE_NAME.fullmatch(name):
            continue
        try:
            out[name] = encode_value(value, name)
        except Unsupported as exc:
            raise ValueError(f"Cannot save the model as plain data: the fitted "
                             f"attribute {exc}.") from None
    return out


def rebuild(cls, config, model, history, read_weights, prior, *, device=None,
            text_encoder=None):
    """The classifier of class `cls` from its parsed files (see ``load_files``)."""
    # --- hyperparameters
    expect_keys(config, ("params",), CONFIG)
    saved = config["params"]
    if not isinstance(saved, dict):
        raise invalid(f"{CONFIG} 'params' must be a JSON object")
    known = cls().get_params(deep=False)
    unknown = sorted(set(saved) - set(known))
    if unknown:
        raise ValueError(
            f"The saved model sets the parameter(s) {unknown}, which this version of "
            f"{cls.__name__} does not have; load it with the skrecordpair version "
            "that saved it."
        )
    params = {name: decode_value(value, f"parameter {name!r}") for name, value in saved.items()}
    if text_encoder is not None:
        params["text_encoder"] = text_encoder
    clf = cls(**params)
    try:
        clf._validate_params()
    except (ValueError, TypeError) as exc:
        raise invalid(f"a saved parameter is invalid: {exc}") from None
    for name in ("left_prefix", "right_prefix"):
        if not isinstance(getattr(clf, name), str):
            raise invalid(f"{name} must be a string")
    if device is not None:
        clf.device = device
    elif str(clf.device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"The model was saved with device={clf.device!r}, but CUDA is not "
                      "available; it is loaded on the CPU.", UserWarning, stacklevel=4)
        clf.device = "cpu"

    # --- fitted attributes
    expect_keys(model, ("classes", "fields", "n_features_in", "feature_names_in",
                        "encoder", "vocabulary", "network", "shared_weights",
                        "optimizer", "attributes"), MODEL,
                optional=("tfidf", "text_encoder"))
    clf.classes_ = decode_classes(model["classes"])
    n_features = model["n_features_in"]
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        raise invalid(f"n_features_in must be a positive integer, got {short(n_features)}")
    clf.n_features_in_ = n_features
    attributes = model["attributes"]
    if not isinstance(attributes, dict):
        raise invalid(f"{MODEL} 'attributes' must be a JSON object")
    attributes = dict(attributes)
    network = network_arguments(model["network"])
    featurizer_state = {key: model[key] for key in _FEATURIZER_KEYS}
    featurizer_state["numeric_fields"] = attributes.pop("numeric_fields_", None)
    for key in ("tfidf", "text_encoder"):
        if key in model:
            featurizer_state[key] = model[key]
    # An encoder that only the file names is read from local files only: a
    # crafted file must not make load download anything.
    with (contextlib.nullcontext() if text_encoder is not None
          else encoders_from_local_files()):
        featurizer = PairFeaturizer.from_state(
            {name: getattr(clf, name) for name in PairFeaturizer.parameter_names()},
            featurizer_state, prior=prior,
            n_network_features=network.get("n_similarity_features", 0),
            n_classes=len(clf.classes_), where=MODEL)
    vocabulary = featurizer.vocabulary_
    expected_sizes = {"n_words": len(vocabulary.words), "n_chars": len(vocabulary.chars),
                      "n_classes": len(clf.classes_)}
    if featurizer.text_encoder_ is not None or network.get("pretrained_dim"):
        expected_sizes["pretrained_dim"] = featurizer.pretrained_dim
    for key, size in expected_sizes.items():
        if network.get(key) != size:
            raise invalid(f"the network's {key}={short(network.get(key))} does not match "
                          f"the saved vocabularies and classes ({size})")
    names = model["feature_names_in"]
    if names is not None:
        if not (isinstance(names, list) and len(names) == n_features
                and all(isinstance(n, str) for n in names)):
            raise invalid("feature_names_in must be n_features_in strings")
        clf.feature_names_in_ = np.array(names, dtype=object)
        absent = [c for f in featurizer.fields_ for c in f.columns if c not in set(names)]
        if absent:
            raise invalid(f"the fields use columns {absent} that are not among the "
                          "feature names")
    for name, value in attributes.items():
        if (name in _REBUILT or not _ATTRIBUTE_NAME.fullmatch(name)
                or hasattr(cls, name)):
            raise invalid(f"{MODEL} 'attributes' names an invalid attribute "
                          f"{short(name)}")
        setattr(clf, name, decode_value(value, f"attribute {name!r}"))
    try:
        clf.pos_label, threshold = loaded_pos_label(
            clf.classes_, clf.pos_label, clf.decision_threshold,
            vars(clf).pop("threshold_", None))
    except ValueError as exc:
        raise invalid(str(exc).rstrip(".")) from None
    if threshold is not None:
        clf.threshold_ = threshold
    clf.featurizer_ = featurizer

    # --- the network
    seed = check_random_state(clf.random_state).randint(np.iinfo(np.int32).max)
    params = clf.get_params(deep=False)
    clf.net_ = load_net(
        {"network": network, "shared_weights": model["shared_weights"],
         "optimizer": model["optimizer"]}, read_weights, history,
        network_params={name: params[name] for name in NETWORK_PARAMS},
        sizes=clf._network_sizes(), settings=TrainingSettings.from_params(params),
        seed=seed)
    return clf
