"""The package's structure: one declaration per hyperparameter, no import cycles."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import torch

import skrecordpair
from skrecordpair import RecordPairClassifier
from skrecordpair._matcher.network import RecordPairNetwork
from skrecordpair._matcher.training import (
    NETWORK_DATA_SIZES,
    NETWORK_OPTIONS_NOT_OFFERED,
    NETWORK_PARAMS,
)

PACKAGE = Path(skrecordpair.__file__).resolve().parent


def _init_parameters(cls):
    return {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind is not p.VAR_KEYWORD
    }


def test_network_hyperparameters_are_the_estimators_with_the_same_defaults():
    network = {
        name: p.default
        for name, p in _init_parameters(RecordPairNetwork).items()
        if p.kind is p.KEYWORD_ONLY
    }
    estimator = {
        name: p.default for name, p in _init_parameters(RecordPairClassifier).items()
    }
    assert set(NETWORK_PARAMS) == (
        set(network) - set(NETWORK_DATA_SIZES) - set(NETWORK_OPTIONS_NOT_OFFERED)
    )
    assert {name: estimator.get(name, "absent") for name in NETWORK_PARAMS} == {
        name: network[name] for name in NETWORK_PARAMS
    }


def test_featurizer_parameters_are_the_estimators_with_the_same_defaults():
    from skrecordpair._matcher.featurizer import PairFeaturizer

    featurizer = {
        name: p.default for name, p in _init_parameters(PairFeaturizer).items()
    }
    estimator = {
        name: p.default for name, p in _init_parameters(RecordPairClassifier).items()
    }
    assert {name: estimator.get(name, "absent") for name in featurizer} == featurizer
    assert list(featurizer) == PairFeaturizer.parameter_names()


def test_every_hyperparameter_is_constrained_and_documented():
    names = list(_init_parameters(RecordPairClassifier))
    assert sorted(RecordPairClassifier._parameter_constraints) == sorted(names)
    doc = inspect.getdoc(RecordPairClassifier)
    section = doc[
        doc.index("Parameters\n----------\n") : doc.index("Attributes\n----------\n")
    ]
    documented = [
        line.split(" : ")[0]
        for line in section.splitlines()
        if " : " in line and not line.startswith(" ")
    ]
    assert documented == names


@pytest.mark.parametrize(
    "name, value, match",
    [
        (
            "batch_size",
            0,
            "batch_size must be a positive integer up to 2147483647; got 0.",
        ),
        (
            "batch_size",
            10**30,
            r"batch_size must be a positive integer up to 2147483647; "
            r"got 10{30}.",
        ),
        (
            "device",
            "meta",
            r"device must be a torch device such as 'cpu', 'cuda', 'cuda:1' "
            r"or 'mps' \(not 'meta'\); got 'meta'.",
        ),
        ("device", "gpu", r"device must be a torch device .*; got 'gpu'."),
        (
            "device",
            torch.device("meta"),
            r"device must be a torch device .*; got device",
        ),
        ("dropout", 1.0, r"dropout must be a number in \[0, 1\); got 1.0."),
        ("lr", -1.0, "lr must be a positive number; got -1.0."),
        (
            "record_encoder",
            "cnn",
            r"record_encoder must be one of \['gru', 'lstm'\]; got 'cnn'.",
        ),
        (
            "char_encoder",
            3,
            r"char_encoder must be one of \['cnn', 'gru', 'lstm', None\]",
        ),
        (
            "hidden_layer_sizes",
            (8, 0),
            r"hidden_layer_sizes may list positive integers; got \(8, 0\).",
        ),
        ("similarity_prior", "yes", "similarity_prior must be"),
    ],
)
def test_invalid_hyperparameters_name_what_they_must_be(name, value, match):
    with pytest.raises(ValueError, match=match):
        RecordPairClassifier(**{name: value})._validate_params()


def _module_name(path):
    """`path`'s dotted name inside the package: ``_matcher.featurizer``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _internal_imports(path, modules):
    """The package modules (of `modules`) that the module at `path` imports,
    at any depth of its code."""
    name = _module_name(path)
    here = name.split(".") if path.stem == "__init__" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)]
            module = [*base, *(node.module.split(".") if node.module else [])]
            targets = [".".join(module)] + [
                ".".join([*module, a.name]) for a in node.names
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "skrecordpair."
        ):
            module = node.module.split(".")[1:]
            targets = [".".join(module)] + [
                ".".join([*module, a.name]) for a in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [
                a.name.split(".", 1)[1]
                for a in node.names
                if a.name.startswith("skrecordpair.")
            ]
        imported.update(t for t in targets if t in modules and t != name)
    return imported


def test_no_module_imports_a_module_that_imports_it_back():
    modules = {
        _module_name(path): path
        for path in PACKAGE.rglob("*.py")
        if path.stem != "__init__"
    }
    for name in modules:
        importlib.import_module(f"skrecordpair.{name}")
    graph = {name: _internal_imports(path, modules) for name, path in modules.items()}
    assert graph["_matcher.classifier"] >= {"_matcher.featurizer", "_matcher.training"}
    # The saved-model format knows no estimator nor component: they use it.
    assert graph["_persistence"] == set()

    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, cycles
