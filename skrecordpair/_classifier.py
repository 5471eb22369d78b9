"""``RecordPairClassifier``: scikit-learn glue around the BiMPM network and skorch."""

from __future__ import annotations

import numbers
import warnings
from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_pos_label_consistency,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split
from skorch.utils import to_tensor

from ._bimpm import MATCHING_STRATEGIES, RecordPairNetwork
from ._data import PairDataset, collate_pairs
from ._explain import integrated_gradients, l2_normalize, prior_shapley
from ._pairs import as_text, resolve_fields, resolve_pair_args
from ._similarity import SimilarityFeatures, field_plan, pair_similarities
from ._text import PairEncoder

# Network hyperparameters, forwarded to RecordPairNetwork as module__<name>.
_NETWORK_PARAMS = (
    "word_dim", "char_dim", "char_encoder", "char_hidden_size", "token_match_features",
    "field_encoder", "field_hidden_size", "field_bidirectional", "record_encoder",
    "record_hidden_size", "num_perspectives", "forward_matching", "backward_matching",
    "matching_variant", "share_matching_weights", "aggregator", "aggregator_hidden_size",
    "aggregator_bidirectional", "hidden_layer_sizes", "dropout",
)


class RecordPairClassifier(ClassifierMixin, BaseEstimator):
    """Classify pairs of records with a BiMPM record-pair network.

    Each record is a sequence of text fields. Every field is tokenised, embedded
    (word embeddings, a character encoder, and flags saying whether a token also
    occurs in the other record) and encoded into one vector; a bidirectional
    encoder runs over each record's fields; bilateral multi-perspective matching
    (BiMPM, Wang et al. 2017) compares the two records field against field in
    both directions; the matching vectors are aggregated per record and a
    feed-forward head predicts the class. Both records share all weights. The
    network is trained with skorch; the vocabularies are learnt in ``fit`` from
    the training data only.

    Inputs are *pair frames*: one DataFrame with ``left_<field>`` and
    ``right_<field>`` columns (see :func:`~skrecordpair.pair_frame`). Every method
    that takes ``X`` also accepts the two records as two frames:
    ``fit(X_left, X_right, y)``, ``predict_proba(X_left, X_right)``.

    Parameters
    ----------
    fields : None, list of str or list of tuple, default=None
        Which fields to compare. None uses every field present under both
        prefixes, in the order of the left columns. A list of names uses
        ``left_<name>`` and ``right_<name>``. A ``(left_name, right_name)``
        tuple pairs differently named columns, e.g. ``("title", "name")``; one
        side may be None for a field present on one side only.
    left_prefix : str, default="left_"
        Column prefix of the left record.
    right_prefix : str, default="right_"
        Column prefix of the right record.
    min_frequency : int, default=2
        Words seen fewer times in the training data get the unknown-word
        embedding (their characters are still encoded).
    max_vocabulary : int or None, default=50000
        Keep at most this many words (the most frequent).
    max_tokens_per_field : int, default=64
        Longer field values are truncated to their first tokens.
    max_chars_per_token : int, default=20
        The character encoder sees at most this many characters of a token.
    prepend_field_names : bool, default=False
        Put the field name's tokens before each value, as biome.text does.
    word_dim : int, default=64
        Word embedding size; 0 disables word embeddings.
    char_dim : int, default=32
        Character embedding size.
    char_encoder : {"cnn", "gru", "lstm"} or None, default="cnn"
        Per-token character encoder; None disables character features.
    char_hidden_size : int, default=32
        CNN filters, or hidden units per direction of the bidirectional RNN.
    token_match_features : bool, default=True
        Give each token two flags: it occurs anywhere in the other record, and
        in the other record's field at the same position.
    field_encoder : {"gru", "lstm", "cnn"}, default="gru"
        Turns a field's tokens into one vector.
    field_hidden_size : int, default=64
        Size of a field vector (per direction when bidirectional).
    field_bidirectional : bool, default=False
        Run the field encoder in both directions.
    record_encoder : {"gru", "lstm"}, default="gru"
        Bidirectional encoder over a record's field vectors.
    record_hidden_size : int, default=32
        Hidden units per direction of the record encoder.
    num_perspectives : int, default=10
        Perspectives of the multi-perspective matching.
    forward_matching : tuple of str, default=("maxpool", "attentive", "max_attentive")
        Matching strategies on the forward direction; any of ``"full"``,
        ``"maxpool"``, ``"attentive"``, ``"max_attentive"``.
    backward_matching : tuple of str, default=("full", "maxpool", "attentive", \
"max_attentive")
        Matching strategies on the backward direction; an empty tuple disables
        the backward matcher.
    matching_variant : {"paper", "allennlp"}, default="paper"
        Attentive and max-attentive matching as in the paper (weighted mean and
        most similar field) or as in AllenNLP (softmax over the hidden
        dimension and element-wise max).
    share_matching_weights : bool, default=True
        The matchers use the same weights for left-to-right and right-to-left.
    aggregator : {"gru", "lstm", "cnn"}, default="gru"
        Pools a record's matching vectors into one vector.
    aggregator_hidden_size : int, default=32
        Hidden units (per direction) of the aggregator.
    aggregator_bidirectional : bool, default=True
        Run the aggregator in both directions.
    hidden_layer_sizes : tuple of int, default=(32,)
        Feed-forward layers of the classifier head.
    similarity_features : bool, default=True
        Also give the classifier head the classic per-field string
        similarities of each pair (the features of
        :class:`~skrecordpair.SimilarityFeatures`, missing values as 0 beside
        the missing flags). ``explain`` attributes them to their field.
    similarity_prior : bool, default=True
        Start the network from a gradient-boosted classifier on the similarity
        features (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`,
        the classic matcher): its log-probabilities are added to the network's
        logits, so the network learns what the similarities miss. During
        ``fit`` the training pairs get out-of-fold (5-fold) predictions, so
        the network never sees the prior's training error as signal.
        ``explain`` attributes the prior's share to the fields by Shapley
        values over the fields. With `warm_start`, continued training keeps
        the fitted prior; its predictions on the pairs it was fitted on are
        then in-sample.
    dropout : float, default=0.1
        Dropout probability, applied after each stage.
    max_epochs : int, default=20
        Maximum number of passes over the training data.
    batch_size : int, default=64
        Pairs per gradient step. Prediction and ``explain`` use batches of
        ``max(batch_size, 1024)`` pairs.
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        The optimizer.
    early_stopping : bool, default=True
        Hold out a stratified ``validation_fraction`` of the training pairs,
        stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, and restore the best epoch's weights.
    validation_fraction : float, default=0.1
        Share of the training pairs held out when ``early_stopping=True``.
    n_iter_no_change : int, default=3
        Patience of early stopping, in epochs.
    decision_threshold : float or "auto", default=0.5
        Binary tasks only: ``predict`` returns `pos_label` when its
        probability exceeds this threshold, and the other class otherwise.
        ``"auto"`` chooses the threshold that maximises F1 of `pos_label` on
        the validation pairs (the internal split, or ``validation_data``), as
        Ditto does. Any value but 0.5 needs to know which class is the match:
        `pos_label`. For cross-validated tuning see
        :class:`~sklearn.model_selection.TunedThresholdClassifierCV`.
    pos_label : int, float, bool, str or None, default=None
        Binary tasks only: the label of a match (the positive class), which
        `decision_threshold`, ``threshold_``, :func:`~skrecordpair.link` and
        :func:`~skrecordpair.deduplicate` apply to. None infers it as
        scikit-learn's metrics do, only for the labels {0, 1} or {-1, 1} (1)
        and {False, True} (True); with other labels, such as ``"match"`` and
        ``"non-match"``, pass it: anything that needs the match class then
        raises an error that says so. Plain ``fit``, ``predict`` (the most
        probable class) and ``predict_proba`` never need it.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the loss; ``"balanced"`` weights them
        inversely to their frequency, a dict maps labels to weights.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation
        split. Two fits with the same integer give identical models.
    device : str or torch.device, default="cpu"
        Where to train and predict, e.g. ``"cuda"``.
    verbose : int, default=0
        0 is silent; 1 or more shows a progress bar and a table of epochs.
    warm_start : bool, default=False
        When True, ``fit`` on a fitted model continues training it (same
        vocabularies and classes) instead of starting anew.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (or ``(name, callback)`` tuples), e.g. a
        learning-rate schedule.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    fields_ : list of tuple of (str, str or None, str or None)
        ``(name, left_column, right_column)`` of each field used.
    vocabulary_ : Vocabulary
        Word and character vocabularies learnt from the training pairs.
    numeric_fields_ : list of str
        The fields whose similarity features include the relative numeric
        difference (chosen as by ``SimilarityFeatures(numeric_fields="auto")``);
        empty when neither `similarity_features` nor `similarity_prior` is set.
    prior_ : HistGradientBoostingClassifier or None
        The similarity model fitted on all training pairs (None when
        ``similarity_prior=False``).
    net_ : skorch.NeuralNetClassifier
        The trained network; ``net_.module_`` is the :class:`torch.nn.Module`
        and ``net_.history_`` the training history.
    threshold_ : float
        The decision threshold on the probability of `pos_label` (binary
        tasks whose match class is known: given as `pos_label` or inferred
        from the labels).
    n_features_in_ : int
        Number of columns seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the columns seen during ``fit``.

    See Also
    --------
    pair_frame : Build a pair frame from a left and a right table.
    sklearn.model_selection.TunedThresholdClassifierCV : Choose the decision
        threshold for imbalanced matching.

    Notes
    -----
    Missing values (NaN, None, empty or whitespace-only strings) become an
    explicit missing-value token; numbers and other values are converted to
    text (integral floats lose their ``.0``). ``score`` is accuracy, as for any
    scikit-learn classifier; entity matching is usually imbalanced, so prefer
    ``scoring="f1"`` or ``"average_precision"`` in model selection.

    ``X`` and ``y`` are paired by position, as in scikit-learn, whatever
    their indexes: pair frames usually carry record ids or a fresh
    ``RangeIndex``, and ``y`` labels of its own. One case is refused as
    ambiguous: a pandas Series ``y`` whose index holds the same (unique)
    labels as the index of ``X`` (or of ``X_left`` and ``X_right``) in
    another order, which means the rows were meant to be matched by label;
    align them with ``y.loc[X.index]``, or reset both indexes. Likewise
    ``X_left`` and ``X_right`` holding the same unique index labels in other
    orders are refused.

    A pair's probability does not depend on the other pairs scored with it,
    up to float32 rounding (1e-5 at most, tested), and not at all on the
    order of the pairs within 8,192 of them (``predict_proba`` featurises
    that many at a time): shuffled rows get the same probabilities, bit for
    bit.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import RecordPairClassifier
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"] * 10,
    ...                      "city": ["berlin", "paris"] * 10})
    >>> right = pd.DataFrame({"name": ["ana smith", "jane roe"] * 10,
    ...                       "city": ["berlin", "rome"] * 10})
    >>> y = [1, 0] * 10
    >>> clf = RecordPairClassifier(max_epochs=5, random_state=0)
    >>> clf.fit(left, right, y).predict(left[:2], right[:2])
    array([1, 0])
    """

    _doc_link_module = "skrecordpair"
    _doc_link_template = (
        "https://skrecordpair.readthedocs.io/en/latest/api.html#{estimator_module}.{estimator_name}"
    )

    def __init__(
        self,
        fields=None,
        *,
        left_prefix="left_",
        right_prefix="right_",
        min_frequency=2,
        max_vocabulary=50000,
        max_tokens_per_field=64,
        max_chars_per_token=20,
        prepend_field_names=False,
        word_dim=64,
        char_dim=32,
        char_encoder="cnn",
        char_hidden_size=32,
        token_match_features=True,
        field_encoder="gru",
        field_hidden_size=64,
        field_bidirectional=False,
        record_encoder="gru",
        record_hidden_size=32,
        num_perspectives=10,
        forward_matching=("maxpool", "attentive", "max_attentive"),
        backward_matching=MATCHING_STRATEGIES,
        matching_variant="paper",
        share_matching_weights=True,
        aggregator="gru",
        aggregator_hidden_size=32,
        aggregator_bidirectional=True,
        hidden_layer_sizes=(32,),
        similarity_features=True,
        similarity_prior=True,
        dropout=0.1,
        max_epochs=20,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=3,
        decision_threshold=0.5,
        pos_label=None,
        class_weight=None,
        random_state=None,
        device="cpu",
        verbose=0,
        warm_start=False,
        callbacks=None,
    ):
        self.fields = fields
        self.left_prefix = left_prefix
        self.right_prefix = right_prefix
        self.min_frequency = min_frequency
        self.max_vocabulary = max_vocabulary
        self.max_tokens_per_field = max_tokens_per_field
        self.max_chars_per_token = max_chars_per_token
        self.prepend_field_names = prepend_field_names
        self.word_dim = word_dim
        self.char_dim = char_dim
        self.char_encoder = char_encoder
        self.char_hidden_size = char_hidden_size
        self.token_match_features = token_match_features
        self.field_encoder = field_encoder
        self.field_hidden_size = field_hidden_size
        self.field_bidirectional = field_bidirectional
        self.record_encoder = record_encoder
        self.record_hidden_size = record_hidden_size
        self.num_perspectives = num_perspectives
        self.forward_matching = forward_matching
        self.backward_matching = backward_matching
        self.matching_variant = matching_variant
        self.share_matching_weights = share_matching_weights
        self.aggregator = aggregator
        self.aggregator_hidden_size = aggregator_hidden_size
        self.aggregator_bidirectional = aggregator_bidirectional
        self.hidden_layer_sizes = hidden_layer_sizes
        self.similarity_features = similarity_features
        self.similarity_prior = similarity_prior
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.decision_threshold = decision_threshold
        self.pos_label = pos_label
        self.class_weight = class_weight
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, *args, validation_data=None):
        """Fit the vocabularies and train the network.

        Parameters
        ----------
        X : pandas.DataFrame
            Pair frame of shape (n_pairs, n_columns). Alternatively pass the
            left and right records as two frames: ``fit(X_left, X_right, y)``
            (positionally).
        y : array-like of shape (n_pairs,)
            Class labels of the pairs (any type; two or more classes).
        *args
            ``y`` when the records are passed as two frames.
        validation_data : tuple, default=None
            ``(X_valid, y_valid)`` or ``(X_valid_left, X_valid_right, y_valid)``:
            pairs to monitor for early stopping and to choose
            ``decision_threshold="auto"`` on, instead of holding out
            ``validation_fraction`` of the training pairs. Only used for
            monitoring, never for training or for the vocabularies.

        Returns
        -------
        self : RecordPairClassifier
            The fitted estimator.
        """
        X, y = resolve_pair_args("fit", (X, y, *args), self.left_prefix,
                                 self.right_prefix, with_y=True)
        self._check_params()
        continuing = self.warm_start and hasattr(self, "net_")
        X = self._validate_pairs(X, reset=not continuing)
        if y is None:
            raise ValueError(
                "RecordPairClassifier requires y to be passed, but the target y is "
                "None; pass the labels of the pairs."
            )
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        if len(y) == 0:
            raise ValueError(
                "RecordPairClassifier got 0 pairs; fit needs pairs of at least two "
                "classes in y."
            )
        check_classification_targets(y)
        if continuing:
            unseen = np.setdiff1d(y, self.classes_)
            if unseen.size:
                raise ValueError(
                    f"warm_start continues training on the classes {self.classes_.tolist()}; "
                    f"y holds new labels {unseen.tolist()}. Fit a new model instead."
                )
            self._check_pos_label(self.classes_)
            y_encoded = np.searchsorted(self.classes_, y)
        else:
            classes, y_encoded = np.unique(y, return_inverse=True)
            if len(classes) < 2:
                raise ValueError(
                    "RecordPairClassifier needs at least two classes in y; got only "
                    f"1 class: {classes.tolist()}."
                )
            self._check_pos_label(classes)
            self.classes_ = classes
            self.fields_ = resolve_fields(X.columns, self.fields, self.left_prefix,
                                          self.right_prefix)
            self._encoder = PairEncoder(
                self.fields_, max_tokens_per_field=self.max_tokens_per_field,
                max_chars_per_token=self.max_chars_per_token,
                prepend_field_names=self.prepend_field_names,
            ).fit(X, min_frequency=self.min_frequency,
                  max_vocabulary=self.max_vocabulary)
            self.vocabulary_ = self._encoder.vocabulary
            use_similarity = self.similarity_features or self.similarity_prior
            self.numeric_fields_, self._similarity_plan, self._tfidf = [], None, None
            if use_similarity:
                features = SimilarityFeatures(self.fields, left_prefix=self.left_prefix,
                                              right_prefix=self.right_prefix).fit(X)
                self.numeric_fields_ = features.numeric_fields_
                self._similarity_plan = field_plan(self.fields_, self.numeric_fields_)
                self._tfidf = features.tfidf_
            self._similarity_in_head = bool(self.similarity_features)

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        similarity = prior = None
        if self._similarity_plan is not None:
            similarity = self._similarities(X)
        if not continuing:
            self.prior_ = None
            if self.similarity_prior:
                self.prior_, prior = _fit_prior(similarity, y_encoded, seed)
        dataset = PairDataset(self._encode(X, similarity, prior), y_encoded)
        valid = None if validation_data is None else self._validation_dataset(
            validation_data)
        if self.early_stopping and valid is None:
            self._check_validation_split(len(y_encoded))
        # Seed a private RNG stream so that fitting never disturbs the caller's.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if continuing:
                # Training settings changed with set_params since the last fit
                # apply to the continued training; the optimizer keeps its state.
                # (Attributes, not set_params, which would re-initialise the net.)
                self.net_.max_epochs = self.max_epochs
                self.net_.batch_size = self.batch_size
                self.net_.iterator_valid__batch_size = _prediction_batch_size(self.batch_size)
                for group in self.net_.optimizer_.param_groups:
                    group["lr"] = self.lr
                if valid is not None:
                    self.net_.train_split = predefined_split(valid)
                self.net_.partial_fit(dataset, y_encoded)
            else:
                self.net_ = self._build_net(y_encoded, seed, valid)
                self.net_.fit(dataset, y_encoded)
        positive = self._positive_index() if len(self.classes_) == 2 else None
        if positive is None:
            # Without a known match class there is no threshold; a refit must
            # not keep one from an earlier fit.
            vars(self).pop("threshold_", None)
        else:
            self.threshold_ = self._choose_threshold(dataset, y_encoded, positive)
        return self

    def _check_pos_label(self, classes):
        """Check `pos_label` against the classes of `y`, before any training."""
        if self.pos_label is not None and len(classes) != 2:
            raise ValueError(
                f"pos_label applies to binary tasks; y has {len(classes)} classes "
                f"{classes.tolist()}. Leave pos_label=None."
            )
        if len(classes) != 2:
            return
        if self.pos_label is not None or self.decision_threshold != 0.5:
            positive_index(classes, self.pos_label,
                           f"decision_threshold={self.decision_threshold!r}")

    def _positive_index(self, needed_for=None):
        """Position of the match class in ``classes_`` (binary tasks).

        None if it is unknown and `needed_for` is None; otherwise an unknown
        match class raises a ValueError saying that `needed_for` needs it.
        """
        try:
            return positive_index(self.classes_, self.pos_label,
                                  needed_for or "threshold_")
        except ValueError:
            if needed_for is None and self.pos_label is None:
                return None
            raise

    def __getattr__(self, name):
        # Only called when the attribute is not found: say why a binary model
        # has no threshold_ rather than just that it is missing.
        if name == "threshold_":
            classes = vars(self).get("classes_")
            if classes is not None and len(classes) == 2:
                try:
                    self._positive_index("threshold_")
                except ValueError as exc:
                    raise _UnknownPositiveClass(str(exc)) from None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _check_loaded_pos_label(self):
        """Check the `pos_label` of a loaded model against its classes.

        Versions before `pos_label` applied ``threshold_`` to ``classes_[1]``
        whatever the labels. A model they saved with labels from which no
        match class can be inferred predicts as before: the most probable
        class if its threshold was 0.5, else with ``pos_label=classes_[1]``.
        """
        if len(self.classes_) != 2:
            self._check_pos_label(self.classes_)
            return
        threshold = vars(self).get("threshold_")
        if self._positive_index() is not None or threshold is None:
            return
        if threshold == 0.5:
            del self.threshold_
            return
        self.pos_label = self.classes_.tolist()[1]
        warnings.warn(
            f"The model was saved without pos_label and its threshold_={threshold} "
            f"applies to the probability of classes_[1]; it is loaded with "
            f"pos_label={self.pos_label!r}, which link() and deduplicate() take as "
            "the match. Set pos_label=... and refit if that is not the match.",
            UserWarning, stacklevel=4)

    def _check_validation_split(self, n_pairs):
        n_classes = len(self.classes_)
        n_valid = int(np.ceil(self.validation_fraction * n_pairs))
        if n_valid < n_classes or n_pairs - n_valid < n_classes:
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} "
                f"of the {n_pairs} training pairs ({n_valid} pairs), fewer than one per "
                f"class ({n_classes} classes). Pass more pairs, a larger "
                "validation_fraction, validation_data, or early_stopping=False."
            )

    def _validation_dataset(self, validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError(
                "validation_data must be a tuple (X_valid, y_valid) or (X_valid_left, "
                f"X_valid_right, y_valid); got {type(validation_data).__name__}."
            )
        X, y = resolve_pair_args("fit", tuple(validation_data), self.left_prefix,
                                 self.right_prefix, with_y=True)
        X = self._validate_pairs(X, reset=False)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        index = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
        unknown = self.classes_[index] != y
        if unknown.any():
            raise ValueError(
                f"validation_data holds labels {np.unique(y[unknown]).tolist()[:5]} that "
                f"are not in y; the classes are {self.classes_.tolist()}."
            )
        return PairDataset(self._encode(X), index)

    def _choose_threshold(self, dataset, y_encoded, positive):
        if self.decision_threshold != "auto":
            return float(self.decision_threshold)
        train_split = self.net_.train_split
        _, valid = train_split(dataset, y_encoded)
        y_valid = valid.dataset.y[valid.indices] if hasattr(valid, "indices") else valid.y
        scores = self.net_.predict_proba(valid)[:, positive]
        return best_f1_threshold((np.asarray(y_valid) == positive).astype(int), scores)

    def _check_params(self):
        for name in ("max_epochs", "batch_size", "max_tokens_per_field",
                     "max_chars_per_token", "num_perspectives", "n_iter_no_change",
                     "min_frequency"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                "validation_fraction must be between 0 and 1 (exclusive); got "
                f"{self.validation_fraction!r}."
            )
        threshold = self.decision_threshold
        if threshold == "auto":
            if not self.early_stopping:
                raise ValueError(
                    'decision_threshold="auto" chooses the threshold on the validation '
                    "pairs, which need early_stopping=True."
                )
        elif not (isinstance(threshold, numbers.Real) and 0 < threshold < 1):
            raise ValueError(
                'decision_threshold must be a number in (0, 1) or "auto"; got '
                f"{threshold!r}."
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}.")
        for name in ("forward_matching", "backward_matching"):
            unknown = set(getattr(self, name)) - set(MATCHING_STRATEGIES)
            if unknown:
                raise ValueError(
                    f"{name} may list {list(MATCHING_STRATEGIES)}; got unknown "
                    f"strategies {sorted(unknown)}."
                )
        for name, allowed in (("char_encoder", ("cnn", "gru", "lstm", None)),
                              ("field_encoder", ("cnn", "gru", "lstm")),
                              ("record_encoder", ("gru", "lstm")),
                              ("aggregator", ("cnn", "gru", "lstm")),
                              ("matching_variant", ("paper", "allennlp"))):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {list(allowed)}; got {getattr(self, name)!r}."
                )

    def _validate_pairs(self, X, *, reset):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "RecordPairClassifier expects a pair frame: a pandas DataFrame with "
                f"'{self.left_prefix}<field>' and '{self.right_prefix}<field>' columns "
                "(see skrecordpair.pair_frame), or two DataFrames (X_left, X_right); "
                f"got {type(X).__name__}."
            )
        validate_data(self, X, skip_check_array=True, reset=reset)
        if not reset:
            self._check_fitted_columns(X.columns)
        return X

    def _check_fitted_columns(self, columns):
        missing = [c for f in self.fields_ for c in f[1:] if c is not None
                   and c not in columns]
        if missing:
            raise ValueError(
                f"X lacks the columns {missing} of fields the model was fitted on; "
                f"it has {list(columns)}."
            )

    def _encode(self, X, similarity=None, prior=None):
        """The network's inputs for the pairs `X`.

        Token ids; and, as the network reads them, the similarity features and
        the prior's log-probabilities (computed unless given).
        """
        encoded = self._encoder.transform(X)
        if self._similarity_plan is None:
            return encoded
        if similarity is None:
            similarity = self._similarities(X)
        if self._similarity_in_head:
            encoded.similarity = _as_network_input(similarity)
        if self.prior_ is not None:
            encoded.prior = (_log_proba(self.prior_, similarity) if prior is None
                             else prior)
        return encoded

    def _build_net(self, y_encoded, seed, valid=None):
        n_classes = len(self.classes_)
        weight = None
        if self.class_weight is not None:
            if isinstance(self.class_weight, dict):
                unknown = set(self.class_weight) - set(self.classes_.tolist())
                if unknown:
                    raise ValueError(
                        f"class_weight names labels {sorted(unknown, key=str)} that are "
                        f"not in y; the classes are {list(self.classes_)}."
                    )
                class_weight = {i: self.class_weight.get(label, 1.0)
                                for i, label in enumerate(self.classes_.tolist())}
            else:
                class_weight = self.class_weight
            weight = torch.as_tensor(
                compute_class_weight(class_weight, classes=np.arange(n_classes),
                                     y=y_encoded),
                dtype=torch.float32,
            )
        callbacks = list(self.callbacks or [])
        train_split = False
        if self.early_stopping:
            train_split = (ValidSplit(self.validation_fraction, stratified=True,
                                      random_state=seed)
                           if valid is None else predefined_split(valid))
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True)))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        module_params = {f"module__{name}": getattr(self, name) for name in _NETWORK_PARAMS}
        return NeuralNetClassifier(
            RecordPairNetwork,
            module__n_words=len(self.vocabulary_.words),
            module__n_chars=len(self.vocabulary_.chars),
            module__n_classes=n_classes,
            module__n_similarity_features=(
                sum(len(f[-1]) for f in self._similarity_plan)
                if self._similarity_in_head else 0),
            **module_params,
            criterion=torch.nn.CrossEntropyLoss,
            criterion__weight=weight,
            optimizer=_OPTIMIZERS.get(self.optimizer, self.optimizer),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks or None,
            iterator_train__collate_fn=collate_pairs,
            iterator_valid__collate_fn=collate_pairs,
            iterator_valid__batch_size=_prediction_batch_size(self.batch_size),
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            classes=list(range(n_classes)),
            device=self.device,
            verbose=int(self.verbose),
        )

    # -------------------------------------------------------------- predict

    def predict_proba(self, X, X_right=None):
        """Probability of each class for each pair.

        Parameters
        ----------
        X : pandas.DataFrame
            Pair frame, or the left records when `X_right` is given.
        X_right : pandas.DataFrame, default=None
            The right records, paired with `X` by position.

        Returns
        -------
        ndarray of shape (n_pairs, n_classes)
            Columns in the order of ``classes_``; each row sums to 1.
        """
        check_is_fitted(self)
        X, _ = resolve_pair_args("predict_proba", (X, X_right), self.left_prefix,
                                 self.right_prefix, with_y=False)
        X = self._validate_pairs(X, reset=False)
        if len(X) == 0:
            return np.empty((0, len(self.classes_)))
        return np.concatenate([self._predict_chunk(c) for c in self._chunks(X)])

    def _predict_chunk(self, X):
        encoded = self._encode(X)
        # Pairs of similar length share batches (less padding); masking makes each
        # probability independent of its batch, so the order can be restored.
        order = encoded.by_length()
        proba = np.empty((len(X), len(self.classes_)))
        proba[order] = self.net_.predict_proba(PairDataset(encoded.take(order)))
        return proba

    def _chunks(self, X):
        """Consecutive row blocks of X, so that memory stays flat on large inputs."""
        for start in range(0, len(X), CHUNK_SIZE):
            yield X.iloc[start:start + CHUNK_SIZE]

    def predict(self, X, X_right=None):
        """Predict the class label of each pair.

        Parameters
        ----------
        X : pandas.DataFrame
            Pair frame, or the left records when `X_right` is given.
        X_right : pandas.DataFrame, default=None
            The right records, paired with `X` by position.

        Returns
        -------
        ndarray of shape (n_pairs,)
            Labels from ``classes_``: for two classes with a ``threshold_``,
            `pos_label` where its probability exceeds ``threshold_``;
            otherwise the most probable class.
        """
        proba = self.predict_proba(X, X_right)
        if len(self.classes_) == 2 and "threshold_" in vars(self):
            positive = self._positive_index("predict() with threshold_")
            match = proba[:, positive] > self.threshold_
            return self.classes_[np.where(match, positive, 1 - positive)]
        return self.classes_[proba.argmax(axis=1)]

    def explain(self, X, X_right=None, *, target=None, n_steps=50, normalize=True):
        """Per-field attributions: why each pair got its prediction.

        For each pair and each side, integrated gradients of the `target`
        logit run over that side's field encodings, from the other record's
        encodings to its own (the baseline is "a perfect duplicate"), and are
        summed over the encoding dimension: one number per field. Positive
        values push towards the target class. Completeness holds per side: the
        raw attributions sum to ``logit(record, other) - logit(other, other)``
        up to the reported convergence delta.

        Parameters
        ----------
        X : pandas.DataFrame
            Pair frame, or the left records when `X_right` is given.
        X_right : pandas.DataFrame, default=None
            The right records, paired with `X` by position.
        target : label, array-like of labels or None, default=None
            The class to explain, for all pairs or per pair; None explains the
            predicted class.
        n_steps : int, default=50
            Integration steps.
        normalize : bool, default=True
            Divide each side's attributions by their L2 norm over the fields,
            as biome.text does (the ``attribution`` column); the raw values are
            always in ``raw_attribution``. With False, ``attribution`` holds
            the raw values.

        Returns
        -------
        pandas.DataFrame
            One row per (pair, side, field), pairs in input order, left fields
            then right fields, with columns ``pair`` (the index label of the
            pair in `X`; a tuple when `X` has a MultiIndex, such as the
            ``(left_id, right_id)`` index of the pairs that
            :func:`~skrecordpair.link` scores), then, when `X` has a
            MultiIndex, one column per index level, named after the level
            (``pair_level_<i>`` when it has no name or its name is taken),
            then ``side`` (``"left"``/``"right"``), ``field``,
            ``text`` (the field's value, None when missing), ``attribution``,
            ``raw_attribution``, ``target`` (the explained label),
            ``prediction`` (the predicted label), ``probability`` (of the
            predicted label) and ``convergence_delta`` (of that pair and side).
            No pair gives an empty frame with these columns.

        Raises
        ------
        ValueError
            If a field of the model exists on one side only: explanations
            need the same fields, in the same order, on both sides.

        Notes
        -----
        Records that are identical give zero attributions. With a single field
        the normalised attribution is always -1, 0 or +1. Attributions are
        most meaningful for binary match / non-match tasks.

        Examples
        --------
        >>> import pandas as pd
        >>> from skrecordpair import RecordPairClassifier
        >>> left = pd.DataFrame({"name": ["anna smith", "john doe"] * 10,
        ...                      "city": ["berlin", "paris"] * 10})
        >>> right = pd.DataFrame({"name": ["ana smith", "jane roe"] * 10,
        ...                       "city": ["berlin", "rome"] * 10})
        >>> clf = RecordPairClassifier(max_epochs=3, random_state=0)
        >>> clf = clf.fit(left, right, [1, 0] * 10)
        >>> clf.explain(left[:1], right[:1])[["side", "field", "text"]]
            side field        text
        0   left  name  anna smith
        1   left  city      berlin
        2  right  name   ana smith
        3  right  city      berlin
        """
        check_is_fitted(self)
        X, _ = resolve_pair_args("explain", (X, X_right), self.left_prefix,
                                 self.right_prefix, with_y=False)
        X = self._validate_pairs(X, reset=False)
        one_sided = [f for f in self.fields_ if None in f[1:]]
        if one_sided:
            raise ValueError(
                "explain() needs the same fields in the same order on both sides; "
                f"the model was fitted with fields present on one side only: "
                f"{[(f[1], f[2]) for f in one_sided]}."
            )
        if not isinstance(n_steps, numbers.Integral) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
        targets = self._target_indices(target, len(X))
        module = self.net_.module_
        module.eval()
        # net_.device, not self.device: skorch moves a CUDA model that is
        # unpickled without a GPU to the CPU and records it there.
        device = self.net_.device
        plan = self._similarity_plan
        feature_fields = (None if plan is None else
                          np.repeat(np.arange(len(plan)), [len(f[-1]) for f in plan]))
        results = []
        start = 0
        for chunk in self._chunks(X):
            similarity = baselines = None
            if plan is not None:
                similarity, *baselines = self._explanation_similarities(chunk)
            dataset = PairDataset(self._encode(chunk, similarity))
            chunk_results = []
            offset = start
            for batch, _ in self.net_.get_iterator(dataset, training=False):
                batch = to_tensor(batch, device)
                stop = start + len(batch["left"])
                batch_target = (None if targets is None else
                                torch.as_tensor(targets[start:stop], device=device))
                options = {}
                if self._similarity_in_head:
                    options = dict(
                        similarity_baselines=tuple(
                            to_tensor(_as_network_input(b[start - offset:stop - offset]),
                                      device) for b in baselines),
                        similarity_fields=torch.as_tensor(feature_fields, device=device))
                chunk_results.append({k: v.cpu() for k, v in integrated_gradients(
                    module, batch, batch_target, n_steps=n_steps, **options).items()})
                start = stop
            if self.prior_ is not None:
                self._add_prior_attributions(chunk_results, similarity, baselines,
                                             feature_fields)
            results += chunk_results
        return self._explanation_frame(X, results, normalize)

    def _add_prior_attributions(self, results, similarity, baselines, feature_fields):
        """Add the prior's Shapley values over the fields to each side's attributions."""
        target = torch.cat([r["target"] for r in results])
        sides = [prior_shapley(partial(_log_proba, self.prior_), similarity, baseline,
                               feature_fields, target)
                 for baseline in baselines]
        start = 0
        for r in results:
            stop = start + len(r["target"])
            for side, values in zip(("left", "right"), sides):
                r[side] = r[side] + values[start:stop].to(r[side].dtype)
            start = stop

    def _explanation_similarities(self, X):
        """The similarity features of the pairs `X`, then of each right record and
        of each left record compared with itself: the explanation baselines of
        the left and the right side.

        One call over the three frames: on small inputs the cost per call
        dominates, and a row's features do not depend on the other rows.
        """
        def values(column):
            return X[column].to_numpy(dtype=object)

        frames = pd.DataFrame({
            column: np.concatenate([values(column), values(right), values(left)])
            for _, left, right in self.fields_ for column in (left, right)})
        return np.split(self._similarities(frames), 3)

    def _similarities(self, X):
        """The similarity features of the pairs `X` (NaN where missing).

        The string comparisons run on torch's threads: they come before the
        network, never beside it, so they use the cores the network would.
        """
        return pair_similarities(X, self._similarity_plan, self._tfidf,
                                 workers=torch.get_num_threads())

    def _target_indices(self, target, n_pairs):
        if target is None:
            return None
        labels = (np.full(n_pairs, target, dtype=object) if np.ndim(target) == 0
                  else column_or_1d(np.asarray(target, dtype=object)))
        if len(labels) != n_pairs:
            raise ValueError(
                f"target must be one label or one label per pair; got {len(labels)} "
                f"labels for {n_pairs} pairs."
            )
        lookup = {label: i for i, label in enumerate(self.classes_.tolist())}
        index = np.array([lookup.get(label, -1) for label in labels])
        if (index < 0).any():
            unknown = pd.unique(labels[index < 0])[:5]
            raise ValueError(
                f"target holds labels {list(unknown)} that are not among the classes "
                f"{self.classes_.tolist()}."
            )
        return index

    def _explanation_frame(self, X, results, normalize):
        n_pairs, n_fields = len(X), len(self.fields_)

        def cat(key, *width):
            if not results:  # no pair: empty columns of the usual types
                return torch.zeros((0, *width), dtype=torch.float64)
            return torch.cat([r[key] for r in results]).double()

        raw = torch.stack([cat("left", n_fields), cat("right", n_fields)],
                          dim=1)  # (n, 2, F)
        delta = torch.stack([cat("left_delta"), cat("right_delta")], dim=1)
        probability = torch.softmax(cat("logits", len(self.classes_)), dim=-1).numpy()
        predicted = probability.argmax(1)
        attribution = l2_normalize(raw) if normalize else raw
        texts = np.stack([
            np.stack([as_text(X[f[1 + side]]) for f in self.fields_], axis=1)
            for side in (0, 1)
        ], axis=1)  # (n, 2, F)
        repeat = 2 * n_fields
        # The pair's index label; with a MultiIndex (e.g. the (left_id,
        # right_id) of the pairs that link scores) also one column per level,
        # so that each row names its records.
        ids = {"pair": np.repeat(X.index.to_numpy(), repeat)}
        if isinstance(X.index, pd.MultiIndex):
            for i, name in enumerate(X.index.names):
                if not isinstance(name, str) or name in _EXPLANATION_COLUMNS or (
                        name in ids or list(X.index.names).count(name) > 1):
                    name = f"pair_level_{i}"
                ids[name] = np.repeat(X.index.get_level_values(i).to_numpy(), repeat)
        return pd.DataFrame({
            **ids,
            "side": np.tile(np.repeat(["left", "right"], n_fields), n_pairs),
            "field": np.tile([f[0] for f in self.fields_], 2 * n_pairs),
            "text": texts.reshape(-1),
            "attribution": attribution.numpy().reshape(-1),
            "raw_attribution": raw.numpy().reshape(-1),
            "target": np.repeat(self.classes_[cat("target").long().numpy()], repeat),
            "prediction": np.repeat(self.classes_[predicted], repeat),
            "probability": np.repeat(probability.max(1), repeat),
            "convergence_delta": np.repeat(delta.numpy(), n_fields, axis=1).reshape(-1),
        })

    def save(self, path):
        """Write the fitted model to a directory of plain data (no pickle).

        The directory holds the network weights as safetensors and JSON files for
        the hyperparameters, fields, vocabularies, classes and package version.
        :meth:`load` reads it back without executing anything from the files.

        Parameters
        ----------
        path : str or path-like
            The directory to write (created if needed; a saved model there is
            replaced as a whole, any other file makes ``save`` refuse), or a
            file name ending in ``.zip`` for a single archive of the same
            files. The save is atomic: if it fails, the previous model at
            `path` is left intact.

        Returns
        -------
        self : RecordPairClassifier
        """
        from ._persistence import save_model

        check_is_fitted(self)
        save_model(self, path)
        return self

    @classmethod
    def load(cls, path, *, device=None):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The directory or ``.zip`` archive written by :meth:`save`.
        device : str or torch.device, default=None
            Where to put the network; None uses the saved ``device`` (the CPU,
            with a warning, if that was CUDA and none is available).

        Returns
        -------
        RecordPairClassifier
            The fitted model, predicting exactly as the saved one did.
        """
        from ._persistence import load_model

        return load_model(path, cls=cls, device=device)

    def score(self, X, y=None, *args, sample_weight=None):
        """Accuracy of the predictions.

        The predictions are those of :meth:`predict`: for a binary task with
        a known match class (`pos_label`), thresholded at ``threshold_``.
        Accuracy itself treats all classes alike and needs no `pos_label`;
        for F1 of the matches use ``sklearn.metrics.f1_score(y,
        clf.predict(X), pos_label=clf.pos_label)`` or ``scoring="f1"``.

        Parameters
        ----------
        X : pandas.DataFrame
            Pair frame; or pass ``score(X_left, X_right, y)``.
        y : array-like of shape (n_pairs,)
            True labels.
        *args
            ``y`` when the records are passed as two frames.
        sample_weight : array-like of shape (n_pairs,), default=None
            Weights of the pairs in the accuracy.

        Returns
        -------
        float
            Accuracy, as for any scikit-learn classifier.
        """
        X, y = resolve_pair_args("score", (X, y, *args), self.left_prefix,
                                 self.right_prefix, with_y=True)
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)


# The columns of explain's frame (besides those of the index levels).
_EXPLANATION_COLUMNS = ("pair", "side", "field", "text", "attribution",
                        "raw_attribution", "target", "prediction", "probability",
                        "convergence_delta")


def positive_index(classes, pos_label, needed_for):
    """Position of the match (positive) class among the two `classes`.

    `pos_label` None is inferred as scikit-learn does, only for the classes
    {0, 1} and {-1, 1} (1) and {False, True} (True). Otherwise, or when
    `pos_label` is not a class, a ValueError names `needed_for` (what needs
    the match class), `pos_label` and the classes.
    """
    classes = np.asarray(classes)
    labels = classes.tolist()
    label = pos_label
    if label is None:
        try:
            label = _check_pos_label_consistency(None, classes)
        except ValueError:
            raise ValueError(
                f"{needed_for} needs to know which class is the match; the classes are "
                f"{labels}. Pass pos_label=<the match label> to RecordPairClassifier, "
                "or use the labels 0/1, -1/1 or False/True, from which it is inferred."
            ) from None
    found = [i for i, c in enumerate(labels) if _same_label(c, label)]
    if not found:
        raise ValueError(f"pos_label={pos_label!r} is not one of the classes {labels}.")
    return found[0]


def _same_label(a, b):
    # 1 == 1.0 == True as labels (as in numpy), but never "1" == 1.
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


class _UnknownPositiveClass(ValueError, AttributeError):
    """``threshold_`` of a binary model whose match class is unknown: a
    ValueError that says why, and an AttributeError so that ``hasattr`` and
    ``getattr(..., default)`` treat it as absent."""


def best_f1_threshold(y_true, scores):
    """The threshold on `scores` that maximises F1 of the positive class (1).

    This is how ``decision_threshold="auto"`` chooses
    :attr:`RecordPairClassifier.threshold_` on the validation pairs; use it to
    give any other scorer (a scikit-learn pipeline's ``predict_proba``) a
    threshold chosen the same way.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,)
        True labels, 1 for a match and 0 otherwise.
    scores : array-like of shape (n_pairs,)
        Match scores, higher for more likely matches, such as the
        ``predict_proba(X)[:, 1]`` of a classifier.

    Returns
    -------
    threshold : float
        Pairs scoring strictly above it are matches. It lies halfway between
        the lowest score kept and the highest score left out, and is 0.5 when
        `y_true` holds no match.

    Examples
    --------
    >>> from skrecordpair import best_f1_threshold
    >>> best_f1_threshold([1, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.1])
    0.35
    """
    y_true = column_or_1d(y_true)
    scores = column_or_1d(scores).astype(float, copy=False)
    check_consistent_length(y_true, scores)
    order = np.argsort(-scores, kind="stable")
    scores, y_true = scores[order], y_true[order]
    if y_true.sum() == 0:
        return 0.5
    true_positives = np.cumsum(y_true)
    f1 = 2 * true_positives / (np.arange(1, len(scores) + 1) + y_true.sum())
    # Only cut between different scores: equal scores get the same prediction.
    f1[:-1][scores[:-1] == scores[1:]] = -1
    k = int(np.argmax(f1))
    below = scores[k + 1] if k + 1 < len(scores) else 0.0
    return float((scores[k] + below) / 2)


def _as_network_input(similarity):
    """Similarity features as network input: float32, NaN as 0.

    The missing flags among the features tell the network when a 0 stands for
    a missing value.
    """
    return np.nan_to_num(similarity, nan=0.0).astype(np.float32)


def _prior_training_input(similarity, min_present=20):
    """The prior's training features: NaN (missing) stays NaN, except in sparse
    columns.

    A column with no value at all, in the training pairs or in a
    cross-validation fold of them (a field always missing on one side), makes
    HistGradientBoostingClassifier fail. Columns with fewer than `min_present`
    values get -1 for NaN: the trees cannot split on them anyway, as every
    leaf holds at least 20 pairs (``min_samples_leaf``), so their values do
    not matter at prediction. Any other column has a value in every fold but
    with a negligible probability.
    """
    sparse = np.count_nonzero(~np.isnan(similarity), axis=0) < min_present
    if not sparse.any():
        return similarity
    out = similarity.copy()
    out[:, sparse] = np.nan_to_num(out[:, sparse], nan=-1.0)
    return out


def _log_proba(model, similarity):
    # Clipped so that a prior that is certain cannot make a logit infinite.
    proba = model.predict_proba(similarity)
    return np.log(np.clip(proba, 1e-6, None)).astype(np.float32)


def _fit_prior(similarity, y, seed, n_splits=5):
    """The similarity model, and its out-of-fold log-probabilities on `y`'s pairs.

    Out-of-fold predictions are as good on the training pairs as the model is
    on new pairs; in-sample ones would be overconfident, leaving the network
    nothing to learn from. With fewer than two pairs in some class there are
    no folds, and the in-sample predictions are used.
    """
    model = HistGradientBoostingClassifier(random_state=seed)
    features = _prior_training_input(similarity)
    n_splits = min(n_splits, int(np.bincount(y).min()))
    if n_splits >= 2:
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        proba = cross_val_predict(model, features, y, cv=folds, method="predict_proba")
        prior = np.log(np.clip(proba, 1e-6, None)).astype(np.float32)
    model.fit(features, y)
    if n_splits < 2:
        prior = _log_proba(model, features)
    return model, prior


#: Pairs featurised and scored at a time by ``predict_proba``, ``predict`` and
#: ``explain``: their working memory is that of one chunk, whatever the size
#: of the input (see :ref:`scaling`).
CHUNK_SIZE = 32768


def _prediction_batch_size(batch_size):
    # Prediction needs no gradients, so large batches are cheap, and each GRU
    # step then advances more sequences at once: 1,024 pairs scored 11-20 %
    # faster than 256 on the Magellan test splits, 4,096 no faster. Masking
    # makes the results independent of the batch size.
    return max(batch_size, 1024)


_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
