"""skrecordpair: entity matching with a BiMPM record-pair network, the scikit-learn way."""

from . import datasets
from ._classifier import RecordPairClassifier
from ._pairs import pair_frame
from ._similarity import SimilarityFeatures

__version__ = "0.1.0"

__all__ = ["RecordPairClassifier", "SimilarityFeatures", "datasets", "pair_frame",
           "__version__"]
