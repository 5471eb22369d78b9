"""Every public name is documented with a runnable example.

The examples themselves run as doctests (``--doctest-modules`` over the package).
"""

import inspect

import pytest

import skrecordpair
import skrecordpair.dask
import skrecordpair.datasets
import skrecordpair.plotting


def _public():
    for module in (
        skrecordpair,
        skrecordpair.datasets,
        skrecordpair.plotting,
        skrecordpair.dask,
    ):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj


PUBLIC = dict(_public())


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_have_numpydoc_docstrings_with_examples(name):
    doc = inspect.getdoc(PUBLIC[name]) or ""
    assert "\nParameters\n----------\n" in doc, f"{name} documents no parameters"
    assert "\nExamples\n--------\n" in doc and ">>> " in doc, f"{name} has no example"


def test_estimator_methods_are_documented():
    for cls in (
        skrecordpair.RecordPairClassifier,
        skrecordpair.SimilarityFeatures,
        skrecordpair.NearestNeighborBlocker,
    ):
        for name in (
            "fit",
            "predict",
            "predict_proba",
            "score",
            "explain",
            "transform",
            "candidates",
            "save",
            "load",
        ):
            method = getattr(cls, name, None)
            if method is not None:
                doc = inspect.getdoc(method) or ""
                assert "Returns\n-------" in doc, f"{cls.__name__}.{name}"
