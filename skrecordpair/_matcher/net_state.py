"""The trained net's own saved state: constructor arguments, weights, optimizer.

:func:`net_state` gives the skorch net as plain data, tensors and history;
:func:`load_net` builds it back, each tensor checked against the network
(built first on the meta device) before any tensor is loaded or any module is
built. ``saved_model`` composes this state with the estimator's and the
featurizer's; the files and their checked readers are ``_persistence``'s.
"""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import torch

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
from .network import RecordPairNetwork
from .training import build_net


def net_state(net):
    """The trained skorch `net` as plain data, tensors and history.

    Returns
    -------
    state : dict
        ``arguments`` (the module's constructor arguments), ``shared_weights``
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
    network = {
        k[len("module__") :]: v
        for k, v in net.get_params().items()
        if k.startswith("module__")
    }
    state = {
        "arguments": {k: encode_value(v, f"module__{k}") for k, v in network.items()},
        "shared_weights": shared,
        "optimizer": optimizer,
    }
    return state, tensors, _history(net)


def read_net_state(saved):
    """The state that :func:`net_state` saved (``model.json``'s ``network``),
    with its constructor arguments decoded (:func:`network_arguments`)."""
    expect_keys(
        saved, ("arguments", "shared_weights", "optimizer"), f"{MODEL} 'network'"
    )
    return {**saved, "arguments": network_arguments(saved["arguments"])}


def network_arguments(saved):
    """The network's constructor arguments saved by :func:`net_state`."""
    if not isinstance(saved, dict):
        raise invalid(f"{MODEL} 'network' 'arguments' must be a JSON object")
    allowed = set(inspect.signature(RecordPairNetwork).parameters)
    unknown = sorted(set(saved) - allowed)
    if unknown:
        raise invalid(f"the network has unknown argument(s) {unknown}")
    return {k: decode_value(v, f"network argument {k!r}") for k, v in saved.items()}


def load_net(state, read_weights, history, *, network_params, sizes, settings, seed):
    """The net saved by :func:`net_state`.

    Parameters
    ----------
    state : dict
        :func:`net_state`'s, as :func:`read_net_state` reads it.
    read_weights : callable
        ``read_weights(limit)`` returns the weights file's bytes.
    history : list
        The training history.
    network_params, sizes, settings, seed
        As for :func:`~.training.build_net`: the estimator's values, which
        the saved network arguments override. The saved sizes must be
        `sizes` (those of the saved vocabularies, classes and text encoder).

    Returns
    -------
    skorch.NeuralNetClassifier
        The trained net. Every tensor's shape is checked against the network,
        built on the meta device, before any tensor is loaded or any module
        is built.
    """
    arguments = state["arguments"]
    _check_sizes(arguments, sizes)
    n_classes = sizes["n_classes"]
    blueprint = _blueprint(arguments)
    tensors = _read_tensors(read_weights, blueprint, state["shared_weights"])
    module_state = _module_state(tensors, state["shared_weights"])
    class_weight = _class_weight(tensors.pop("criterion.weight", None), n_classes)
    optimizer_state = _saved_optimizer_state(
        state["optimizer"], tensors, list(blueprint.parameters())
    )
    generator_state = tensors.pop("generator.state", None)
    if tensors:
        raise invalid(f"{WEIGHTS} holds unknown tensors {sorted(tensors)[:5]}")
    net = build_net(network_params, sizes, settings, class_weight, seed)
    net.set_params(**{f"module__{k}": v for k, v in arguments.items()})
    _restore_generator(net, generator_state)
    try:
        net.initialize()
    except Exception as exc:  # whatever the constructor raises on bad arguments
        raise invalid(
            f"cannot build the network from the saved arguments: {exc}"
        ) from None
    net.module_.load_state_dict(module_state)
    _load_optimizer(net, optimizer_state)
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        raise invalid("history.json must be a list of epochs")
    from skorch.history import History

    net.history_ = History(history)
    return net


def _check_sizes(arguments, sizes):
    """The saved network's input and output sizes are those of the saved
    vocabularies and classes (and text encoder); the featurizer checks the
    similarity features'."""
    expected = {key: sizes[key] for key in ("n_words", "n_chars", "n_classes")}
    if sizes["pretrained_dim"] or arguments.get("pretrained_dim"):
        expected["pretrained_dim"] = sizes["pretrained_dim"]
    for key, size in expected.items():
        if arguments.get(key) != size:
            raise invalid(
                f"the network's {key}={short(arguments.get(key))} does not match "
                f"the saved vocabularies and classes ({size})"
            )


def _dedup_shared(state):
    """Drop the keys that alias an earlier tensor (safetensors refuses them).

    ``BiMpmMatching`` with shared weights registers one Parameter under two
    names; the alias is restored from its canonical name on load (and the
    rebuilt network shares the Parameter again by construction).
    """
    seen, out, shared = {}, {}, {}
    for key, tensor in state.items():
        ident = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
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
                    scalars[str(index)][key] = {
                        "__tensor__": f"optimizer.{index}.{key}"
                    }
                else:
                    scalars[str(index)][key] = encode_value(
                        value, f"optimizer state {key}"
                    )
    except Unsupported as exc:
        warnings.warn(
            f"The optimizer state is not saved ({exc}); training with warm_start "
            "after loading restarts the optimizer's running averages.",
            UserWarning,
            stacklevel=5,
        )
        for key in [k for k in tensors if k.startswith("optimizer.")]:
            del tensors[key]
        return None
    return {"param_groups": groups, "state": scalars}


def _history(net):
    history = list(getattr(net, "history_", None) or [])

    def scalar(value):
        if isinstance(value, np.generic) or (
            isinstance(value, torch.Tensor) and value.numel() == 1
        ):
            return value.item()
        raise TypeError(type(value).__name__)

    try:
        return json.loads(json.dumps(history, default=scalar))
    except (TypeError, ValueError):
        warnings.warn(
            "The training history holds values that are not plain data "
            "(written by a callback?); it is not saved.",
            UserWarning,
            stacklevel=5,
        )
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
        raise invalid(
            f"cannot build the network from the saved arguments: {exc}"
        ) from None


def _read_tensors(read_weights, blueprint, shared):
    """The saved tensors, read once their header fits the network."""
    data = read_weights(weights_limit([*blueprint.parameters(), *blueprint.buffers()]))
    _check_module_header(safetensors_header(data), blueprint, shared)
    return parse_weights(data)


def _check_shared(shared):
    if not (
        isinstance(shared, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in shared.items())
    ):
        raise invalid("shared_weights must map names to names")


def _check_module_header(header, blueprint, shared):
    """The module's tensors in the header have exactly the network's names and shapes."""
    _check_shared(shared)
    saved = {
        k[len("module.") :]: v for k, v in header.items() if k.startswith("module.")
    }
    for alias, canonical in shared.items():
        if alias in saved or canonical not in saved:
            raise invalid(
                f"the shared weight {alias!r} -> {canonical!r} is inconsistent"
            )
        saved[alias] = saved[canonical]
    expected = blueprint.state_dict()
    missing = sorted(set(expected) - set(saved))
    unknown = sorted(set(saved) - set(expected))
    if missing or unknown:
        raise invalid(
            f"the weights do not fit the network: missing {missing[:5]}, "
            f"unexpected {unknown[:5]}"
        )
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
    state = {
        k[len("module.") :]: tensors.pop(k)
        for k in list(tensors)
        if k.startswith("module.")
    }
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
    optimizer_tensors = {
        k: tensors.pop(k) for k in list(tensors) if k.startswith("optimizer.")
    }
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
        raise invalid(
            f"the optimizer state does not fit the optimizer: {exc}"
        ) from None
