"""The package's structure: one declaration per hyperparameter, no import cycles."""

import inspect

import pytest

from skrecordpair import RecordPairClassifier
from skrecordpair._bimpm import RecordPairNetwork
from skrecordpair._training import NETWORK_PARAMS


def _init_parameters(cls):
    return {name: p for name, p in inspect.signature(cls).parameters.items()
            if p.kind is not p.VAR_KEYWORD}


def test_network_hyperparameters_are_the_estimators_with_the_same_defaults():
    network = {name: p.default for name, p in _init_parameters(RecordPairNetwork).items()
               if p.kind is p.KEYWORD_ONLY}
    estimator = {name: p.default for name, p in _init_parameters(RecordPairClassifier).items()}
    assert set(NETWORK_PARAMS) == set(network) - {"n_similarity_features"}
    assert {name: estimator.get(name, "absent") for name in NETWORK_PARAMS} == {
        name: network[name] for name in NETWORK_PARAMS}


def test_every_hyperparameter_is_constrained_and_documented():
    names = list(_init_parameters(RecordPairClassifier))
    assert sorted(RecordPairClassifier._parameter_constraints) == sorted(names)
    doc = inspect.getdoc(RecordPairClassifier)
    section = doc[doc.index("Parameters\n----------\n"):doc.index("Attributes\n----------\n")]
    documented = [line.split(" : ")[0] for line in section.splitlines()
                  if " : " in line and not line.startswith(" ")]
    assert documented == names


@pytest.mark.parametrize("name, value, match", [
    ("batch_size", 0, "batch_size must be a positive integer; got 0."),
    ("dropout", 1.0, r"dropout must be a number in \[0, 1\); got 1.0."),
    ("lr", -1.0, "lr must be a positive number; got -1.0."),
    ("record_encoder", "cnn",
     r"record_encoder must be one of \['gru', 'lstm'\]; got 'cnn'."),
    ("char_encoder", 3, r"char_encoder must be one of \['cnn', 'gru', 'lstm', None\]"),
    ("hidden_layer_sizes", (8, 0),
     r"hidden_layer_sizes may list positive integers; got \(8, 0\)."),
    ("similarity_prior", "yes", "similarity_prior must be"),
])
def test_invalid_hyperparameters_name_what_they_must_be(name, value, match):
    with pytest.raises(ValueError, match=match):
        RecordPairClassifier(**{name: value})._validate_params()
