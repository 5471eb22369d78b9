"""skrecordpair: entity matching with a BiMPM record-pair network, the scikit-learn way."""

from . import datasets
from ._classifier import RecordPairClassifier
from ._pairs import pair_frame
from ._similarity import SimilarityFeatures
from .plotting import ExplanationView, explanation_html, plot_explanation

__version__ = "0.1.0"

__all__ = [
    "ExplanationView",
    "RecordPairClassifier",
    "SimilarityFeatures",
    "datasets",
    "explanation_html",
    "pair_frame",
    "plot_explanation",
    "__version__",
]
