"""The fitted ``RecordPairClassifier``'s saved state, composed of its parts'.

``RecordPairClassifier.save`` and ``load`` write and read through these.
``model.json`` (format 2) holds one entry per component, each written and read
by the component itself::

    {"estimator": {"classes": ..., "n_features_in": ..., "feature_names_in": ...,
                   "attributes": {"threshold_": ...}},
     "featurizer": PairFeaturizer.to_state(),
     "network": net_state(net)[0]}

The hyperparameters are in ``config.json``. Format 1 held the same entries
side by side at the top level (the featurizer's numeric fields among the
estimator's attributes); :func:`_upgrade_format_1` translates it. The files,
their manifest and the checked readers are ``_persistence``'s.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import NamedTuple

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
from .._validation import validate_params
from .classes import loaded_pos_label
from .featurizer import PairFeaturizer
from .net_state import load_net, net_state, read_net_state
from .text_encoder import encoders_from_local_files
from .training import NETWORK_PARAMS, TrainingSettings

# The estimator's own fitted attributes that have entries of their own (or are
# components); any other public fitted attribute (e.g. ``threshold_``) is
# saved generically among ``attributes`` if it is plain data.
_REBUILT = frozenset(
    {"classes_", "n_features_in_", "feature_names_in_", "featurizer_", "net_"}
)
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*_")


# ------------------------------------------------------------------- saving


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
    network, tensors, history = net_state(net)
    names = attributes.get("feature_names_in_")
    estimator = {
        "classes": encode_classes(attributes["classes_"]),
        "n_features_in": int(attributes["n_features_in_"]),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "attributes": _extra_attributes(attributes),
    }
    model = {
        "estimator": estimator,
        "featurizer": featurizer.to_state(),
        "network": network,
    }
    return {
        "config": {"params": _encode_params(params)},
        "model": model,
        "tensors": tensors,
        "history": history,
        "prior": featurizer.prior_,
    }


def _encode_params(params):
    out = {}
    for name, value in params.items():
        if name == "callbacks" and value is not None:
            warnings.warn(
                "The callbacks are not saved (they are arbitrary Python objects); "
                "the loaded model has callbacks=None. Set them again with "
                "set_params(callbacks=...) before continuing training, or save the "
                "model with pickle/joblib.",
                UserWarning,
                stacklevel=4,
            )
            value = None
        elif name == "random_state" and isinstance(value, np.random.RandomState):
            warnings.warn(
                "random_state is a RandomState instance, which is not saved; the "
                "loaded model has random_state=None (it only affects training).",
                UserWarning,
                stacklevel=4,
            )
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
            raise ValueError(
                f"Cannot save the model as plain data: the fitted attribute {exc}."
            ) from None
    return out


# ------------------------------------------------------------------ loading


class LoadedModel(NamedTuple):
    """What a saved model holds, read and checked: the estimator's
    hyperparameters, its own fitted attributes, the fitted featurizer and the
    trained net. :meth:`RecordPairClassifier.load` assigns them."""

    params: dict
    fitted: dict
    featurizer: PairFeaturizer
    net: object


def rebuild(
    cls,
    config,
    model,
    history,
    read_weights,
    prior,
    *,
    format_version,
    device=None,
    text_encoder=None,
):
    """The parts of a classifier of class `cls` from its parsed files (see
    ``load_files``), as a :class:`LoadedModel`."""
    if format_version == 1:
        model = _upgrade_format_1(model)
    expect_keys(model, ("estimator", "featurizer", "network"), MODEL)
    params = _params_from(cls, config, text_encoder)
    params["device"] = _loaded_device(params["device"], device)
    fitted = _fitted_attributes_from(cls, model["estimator"])
    network = read_net_state(model["network"])
    # An encoder that only the file names is read from local files only: a
    # crafted file must not make load download anything.
    with (
        contextlib.nullcontext()
        if text_encoder is not None
        else encoders_from_local_files()
    ):
        featurizer = PairFeaturizer.from_state(
            {name: params[name] for name in PairFeaturizer.parameter_names()},
            model["featurizer"],
            prior=prior,
            n_network_features=network["arguments"].get("n_similarity_features", 0),
            n_classes=len(fitted["classes_"]),
            where=MODEL,
        )
    _check_feature_names(fitted.get("feature_names_in_"), featurizer)
    try:
        params["pos_label"], threshold = loaded_pos_label(
            fitted["classes_"],
            params["pos_label"],
            params["decision_threshold"],
            fitted.pop("threshold_", None),
        )
    except ValueError as exc:
        raise invalid(str(exc).rstrip(".")) from None
    if threshold is not None:
        fitted["threshold_"] = threshold
    net = load_net(
        network,
        read_weights,
        history,
        network_params={name: params[name] for name in NETWORK_PARAMS},
        sizes={**featurizer.network_sizes(), "n_classes": len(fitted["classes_"])},
        settings=TrainingSettings.from_params(params),
        seed=check_random_state(params["random_state"]).randint(np.iinfo(np.int32).max),
    )
    return LoadedModel(params, fitted, featurizer, net)


def _upgrade_format_1(model):
    """Format 1's ``model.json`` in format 2's layout.

    Format 1 held the featurizer's ``fields``, ``encoder``, ``vocabulary``,
    ``tfidf`` and ``text_encoder`` and the network's ``network`` (its
    arguments), ``shared_weights`` and ``optimizer`` at the top level, beside
    the estimator's entries, and the featurizer's numeric fields among the
    estimator's ``attributes`` (as ``numeric_fields_``).
    """
    expect_keys(
        model,
        (
            "classes",
            "fields",
            "n_features_in",
            "feature_names_in",
            "encoder",
            "vocabulary",
            "network",
            "shared_weights",
            "optimizer",
            "attributes",
        ),
        MODEL,
        optional=("tfidf", "text_encoder"),
    )
    attributes = model["attributes"]
    if not isinstance(attributes, dict):
        raise invalid(f"{MODEL} 'attributes' must be a JSON object")
    attributes = dict(attributes)
    featurizer = {
        key: model[key]
        for key in ("fields", "encoder", "vocabulary", "tfidf", "text_encoder")
        if key in model
    }
    featurizer["numeric_fields"] = attributes.pop("numeric_fields_", None)
    return {
        "estimator": {
            "classes": model["classes"],
            "n_features_in": model["n_features_in"],
            "feature_names_in": model["feature_names_in"],
            "attributes": attributes,
        },
        "featurizer": featurizer,
        "network": {
            "arguments": model["network"],
            "shared_weights": model["shared_weights"],
            "optimizer": model["optimizer"],
        },
    }


def _params_from(cls, config, text_encoder):
    """Every hyperparameter of an estimator of class `cls`: those saved in
    ``config.json`` (`text_encoder`, if given, replacing the saved one) and the
    defaults of those saved before they existed, checked."""
    expect_keys(config, ("params",), CONFIG)
    saved = config["params"]
    if not isinstance(saved, dict):
        raise invalid(f"{CONFIG} 'params' must be a JSON object")
    defaults = cls().get_params(deep=False)
    unknown = sorted(set(saved) - set(defaults))
    if unknown:
        raise ValueError(
            f"The saved model sets the parameter(s) {unknown}, which this version of "
            f"{cls.__name__} does not have; load it with the skrecordpair version "
            "that saved it."
        )
    params = {
        **defaults,
        **{
            name: decode_value(value, f"parameter {name!r}")
            for name, value in saved.items()
        },
    }
    if text_encoder is not None:
        params["text_encoder"] = text_encoder
    try:
        validate_params(cls._parameter_constraints, params)
    except (ValueError, TypeError) as exc:
        raise invalid(f"a saved parameter is invalid: {exc}") from None
    for name in ("left_prefix", "right_prefix"):
        if not isinstance(params[name], str):
            raise invalid(f"{name} must be a string")
    return params


def _loaded_device(saved, device):
    """Where the loaded model goes: `device`, else the `saved` one (the CPU
    if that is CUDA and none is available)."""
    if device is not None:
        return device
    if str(saved).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved with device={saved!r}, but CUDA is not "
            "available; it is loaded on the CPU.",
            UserWarning,
            stacklevel=5,
        )
        return "cpu"
    return saved


def _fitted_attributes_from(cls, saved):
    """The estimator's own fitted attributes, by name, from ``model.json``'s
    ``estimator`` entry."""
    expect_keys(
        saved,
        ("classes", "n_features_in", "feature_names_in", "attributes"),
        f"{MODEL} 'estimator'",
    )
    fitted = {"classes_": decode_classes(saved["classes"])}
    n_features = saved["n_features_in"]
    if (
        not isinstance(n_features, int)
        or isinstance(n_features, bool)
        or n_features < 1
    ):
        raise invalid(
            f"n_features_in must be a positive integer, got {short(n_features)}"
        )
    fitted["n_features_in_"] = n_features
    names = saved["feature_names_in"]
    if names is not None:
        if not (
            isinstance(names, list)
            and len(names) == n_features
            and all(isinstance(n, str) for n in names)
        ):
            raise invalid("feature_names_in must be n_features_in strings")
        fitted["feature_names_in_"] = np.array(names, dtype=object)
    attributes = saved["attributes"]
    if not isinstance(attributes, dict):
        raise invalid(f"{MODEL} 'attributes' must be a JSON object")
    for name, value in attributes.items():
        if (
            name in _REBUILT
            or not _ATTRIBUTE_NAME.fullmatch(name)
            or hasattr(cls, name)
        ):
            raise invalid(
                f"{MODEL} 'attributes' names an invalid attribute {short(name)}"
            )
        fitted[name] = decode_value(value, f"attribute {name!r}")
    return fitted


def _check_feature_names(names, featurizer):
    """The fields' columns are among the feature names seen in ``fit``."""
    if names is None:
        return
    absent = [c for f in featurizer.fields_ for c in f.columns if c not in set(names)]
    if absent:
        raise invalid(
            f"the fields use columns {absent} that are not among the feature names"
        )
