"""skrecordpair: entity matching with a BiMPM record-pair network, the scikit-learn way."""

from . import datasets
from ._blocking import NearestNeighborBlocker
from ._blocking_metrics import pair_completeness, reduction_ratio
from ._candidate_nonmatches import add_candidate_nonmatches
from ._labelling.annotation import read_annotation_file, write_annotation_file
from ._labelling.labels_file import read_labels
from ._labelling.learner import ActiveLearner, uncertain_pairs
from ._labelling.terminal import label_session
from ._labelling.widget import LabelWidget
from ._linking import deduplicate, link
from ._matcher.classifier import CHUNK_SIZE, RecordPairClassifier, best_f1_threshold
from ._matcher.text_encoder import FrozenTextEncoder
from ._pairs import pair_frame
from ._similarity import SimilarityFeatures
from .plotting import (
    ExplanationView,
    evidence_by_field,
    explanation_html,
    plot_evidence_by_field,
    plot_explanation,
    plot_waterfall,
)

__version__ = "0.1.0"

__all__ = [
    "CHUNK_SIZE",
    "ActiveLearner",
    "ExplanationView",
    "FrozenTextEncoder",
    "LabelWidget",
    "NearestNeighborBlocker",
    "RecordPairClassifier",
    "SimilarityFeatures",
    "__version__",
    "add_candidate_nonmatches",
    "best_f1_threshold",
    "datasets",
    "deduplicate",
    "evidence_by_field",
    "explanation_html",
    "label_session",
    "link",
    "pair_completeness",
    "pair_frame",
    "plot_evidence_by_field",
    "plot_explanation",
    "plot_waterfall",
    "read_annotation_file",
    "read_labels",
    "reduction_ratio",
    "uncertain_pairs",
    "write_annotation_file",
]
