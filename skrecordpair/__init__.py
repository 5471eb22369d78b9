"""skrecordpair: entity matching with a BiMPM record-pair network, the scikit-learn way."""

from ._classifier import RecordPairClassifier
from ._pairs import pair_frame

__version__ = "0.1.0"

__all__ = ["RecordPairClassifier", "pair_frame", "__version__"]
