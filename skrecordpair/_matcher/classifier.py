"""``RecordPairClassifier``: scikit-learn glue around the featurizer and the network.

``fit``'s pairs go from here to the featurizer (``featurizer``), whose encoded
pairs train the BiMPM network through skorch (``training``); explanations are
``explain``'s, the saved state is composed in ``saved_model``.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._candidate_nonmatches import near_miss_pairs
from .._pairs import as_text, resolve_fields, resolve_pair_args
from .._persistence import load_files, save_files
from .._progress import Progress, count, id_column_message, looks_like_id
from .._threads import on_cpu_threads
from .._validation import StrOptions, validate_params
from .batches import PairDataset
from .classes import (
    check_threshold_known,
    encode_labels,
    encode_validation_labels,
    match_index,
    positive_index,
    predicted_labels,
)
from .explain import explain_pairs
from .featurizer import CHUNK_SIZE, PairFeaturizer, chunks
from .network import MATCHING_STRATEGIES
from .saved_model import rebuild, saved_state
from .training import (
    NETWORK_CONSTRAINTS,
    NETWORK_PARAMS,
    TRAINING_CONSTRAINTS,
    TrainingSettings,
    best_f1_threshold,
    build_net,
    check_validation_split,
    class_weights,
    predict_encoded,
    train,
)

__all__ = ["CHUNK_SIZE", "RecordPairClassifier", "best_f1_threshold", "positive_index"]


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
    text_encoder : str, path-like or None, default=None
        A pre-trained Hugging Face text encoder (a hub name such as
        ``"sentence-transformers/all-MiniLM-L6-v2"``, or a local directory
        holding the model and its tokenizer) whose contextual subword vectors
        join the word and character embeddings: per field, a token-level
        bilateral matcher compares the subwords of the two values, and its
        result, with the value's mean subword vector, joins the field's
        encoding (see :ref:`pretrained`). The encoder is frozen: each
        distinct value is encoded once per call (cached across calls), in
        batches. Needs the optional dependency ``transformers`` (``pip install
        skrecordpair[transformers]``) and fields with both sides. Saved models
        keep the encoder's name and identity (hashes of its configuration and
        weights), not its weights.
    text_encoder_options : dict or None, default=None
        Settings of the text encoder (:class:`~skrecordpair.FrozenTextEncoder`'s
        ``template``, ``layer``, ``pooling``, ``max_length``,
        ``max_batch_tokens``, ``max_cache_bytes``, ``device``), e.g.
        ``{"template": "COL {field} VAL {value}"}`` for Ditto's serialisation.
    dropout : float, default=0.1
        Dropout probability, applied after each stage.
    candidate_nonmatches : "auto" or bool, default="auto"
        Also train on the near misses that :func:`~skrecordpair.link` will
        score: among the distinct records of the training pairs, each left
        record with exactly one labelled match gets the other candidates of
        a default :class:`~skrecordpair.NearestNeighborBlocker` as
        non-matches (none already labelled, none of two identical records;
        see :func:`~skrecordpair.add_candidate_nonmatches`), at most as many
        as the labelled pairs (each record's nearest first), so that
        training takes at most about twice as long. Labelled pairs
        usually come from another candidate generator than the blocker, and
        without its near misses a model calls many of them matches.

        This **assumes a left record matches at most one right record** (the
        right side holds no duplicates), as in most linkage of two
        deduplicated sources; records with several labelled matches are left
        out. Pass False where that is false, e.g. when the right table has
        duplicates, or when the training pairs must be exactly the labelled
        ones (comparisons with published pair-level results). ``"auto"``
        adds them in binary tasks whose match class is known (see
        `pos_label`) and does nothing otherwise; True raises an error in
        other tasks. ``n_candidate_nonmatches_`` says how many were added.
        A continued fit (`warm_start`) adds none.
    max_epochs : int, default=20
        Maximum number of passes over the training data.
    batch_size : int, default=64
        Pairs per gradient step, at most ``2**31 - 1``. Prediction and
        ``explain`` use batches of ``max(batch_size, 1024)`` pairs.
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
    decision_threshold : float or "auto", default="auto"
        Binary tasks only: ``predict`` returns `pos_label` when its
        probability exceeds this threshold, and the other class otherwise.
        ``"auto"`` chooses the threshold that maximises F1 of `pos_label` on
        the validation pairs (``validation_data``, or else the internal
        split of ``validation_fraction``), as Ditto does; without validation
        pairs (``early_stopping=False`` and no ``validation_data``) it is
        0.5, and without a known match class (labels other than 0/1, -1/1
        or booleans and no `pos_label`) there is no threshold: ``predict``
        is the most probable class. A number other than 0.5 needs to know
        which class is the match: `pos_label`. Pass 0.5 to predict the most
        probable class whatever the validation pairs. For cross-validated
        tuning see :class:`~sklearn.model_selection.TunedThresholdClassifierCV`.
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
        Where to train and predict, e.g. ``"cuda"`` or ``"cuda:1"``; a device
        that torch knows and that holds data (not ``"meta"``).
    verbose : int, default=0
        0 is silent; 1 or more says what ``fit`` does before training
        (vocabularies, similarity features, similarity prior, each with its
        time), shows a progress bar and a table of epochs, and a progress
        bar of the pairs that ``predict_proba`` featurises and scores when
        they are more than one chunk of ``CHUNK_SIZE``.
    warm_start : bool, default=False
        When True, ``fit`` on a fitted model continues training it (same
        vocabularies and classes) instead of starting anew.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (or ``(name, callback)`` tuples), e.g. a
        learning-rate schedule.
    n_jobs : int or None, default=None
        Number of CPU threads for ``fit``, ``predict_proba`` and ``explain``:
        PyTorch's threads, the gradient boosting's (`similarity_prior`) and
        the string comparisons' (`similarity_features`). None means 1 unless
        in a :func:`joblib.parallel_config` context; -1 means all cores. The
        network takes at most one thread per 32 pairs of a batch. Threads
        that share their cores with other work wait for each other at every
        operation of the network, so more than one thread pays only on cores
        that nothing else uses (see :ref:`cpu-threads`). PyTorch's setting
        (``torch.set_num_threads``) is restored after each call. The
        probabilities do not depend on `n_jobs` (up to float rounding).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    fields_ : list of Field
        ``(name, left, right)`` of each field used: named tuples of the
        field's name and its left and right columns (None for a side without
        the field).
    vocabulary_ : Vocabulary
        Word and character vocabularies learnt from the training pairs.
    numeric_fields_ : list of str
        The fields whose similarity features include the relative numeric
        difference (chosen as by ``SimilarityFeatures(numeric_fields="auto")``);
        empty when neither `similarity_features` nor `similarity_prior` is set.
    prior_ : HistGradientBoostingClassifier or None
        The similarity model fitted on all training pairs (None when
        ``similarity_prior=False``).
    featurizer_ : object
        The fitted featurisation of the pairs (fields, vocabularies,
        similarity features and prior), whose attributes the four above are.
    net_ : skorch.NeuralNetClassifier
        The trained network; ``net_.module_`` is the :class:`torch.nn.Module`
        and ``net_.history_`` the training history.
    threshold_ : float
        The decision threshold on the probability of `pos_label`: the given
        `decision_threshold`, or the one ``"auto"`` chose (binary tasks whose
        match class is known: given as `pos_label` or inferred from the
        labels).
    n_candidate_nonmatches_ : int
        Number of near misses that `candidate_nonmatches` added to the
        training pairs as non-matches (0 when none).
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
    orders are refused. Unique indexes that share nearly all (90 % or more)
    but not all of their labels, some at other positions, are still paired
    by position, with a ``UserWarning``: pass ``y.to_numpy()`` or reset the
    indexes when the positions are right.

    A pair's probability does not depend on the other pairs scored with it,
    up to float32 rounding (1e-5 at most, tested), and not at all on the
    order of the pairs within a chunk of ``CHUNK_SIZE`` (32,768) of them
    (``predict_proba`` featurises that many at a time): shuffling the rows of
    a frame of at most ``CHUNK_SIZE`` pairs gives the same probabilities, bit
    for bit, and copies of a pair get the same probability, bit for bit
    (both tested). Across chunks, e.g. when a larger frame is shuffled, they
    agree to float32 rounding.

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

    # Each hyperparameter's allowed values, declared once, next to the code that
    # uses it: ``_validate_params`` checks them in ``fit`` and ``load``.
    _parameter_constraints: ClassVar[dict] = {
        **PairFeaturizer._parameter_constraints,
        **NETWORK_CONSTRAINTS,
        **TRAINING_CONSTRAINTS,
        "candidate_nonmatches": [StrOptions({"auto"}), "boolean"],
    }

    _doc_link_module = "skrecordpair"
    _doc_link_template = "https://skrecordpair.readthedocs.io/en/latest/api.html#{estimator_module}.{estimator_name}"

    def __init__(
        self,
        fields=None,
        *,
        left_prefix="left_",
        right_prefix="right_",
        # featurisation
        min_frequency=2,
        max_vocabulary=50000,
        max_tokens_per_field=64,
        max_chars_per_token=20,
        prepend_field_names=False,
        # network
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
        text_encoder=None,
        text_encoder_options=None,
        dropout=0.1,
        # training
        candidate_nonmatches="auto",
        max_epochs=20,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=3,
        decision_threshold="auto",
        pos_label=None,
        class_weight=None,
        random_state=None,
        device="cpu",
        verbose=0,
        warm_start=False,
        callbacks=None,
        n_jobs=None,
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
        self.text_encoder = text_encoder
        self.text_encoder_options = text_encoder_options
        self.dropout = dropout
        self.candidate_nonmatches = candidate_nonmatches
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
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags

    # ------------------------------------------------------------------ fit

    @on_cpu_threads
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
            ``validation_fraction`` of the training pairs (with
            ``early_stopping=False``, only to choose the threshold). Only used
            for monitoring, never for training or for the vocabularies.

        Returns
        -------
        self : RecordPairClassifier
            The fitted estimator.
        """
        X, y = resolve_pair_args(
            "fit", (X, y, *args), self.left_prefix, self.right_prefix, with_y=True
        )
        self._validate_params()
        continuing = self.warm_start and hasattr(self, "net_")
        X = self._validate_pairs(X, reset=not continuing)
        self.classes_, y_encoded = encode_labels(
            X,
            y,
            self.classes_ if continuing else None,
            self.pos_label,
            self.decision_threshold,
        )
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        progress = Progress(self.verbose, type(self).__name__)
        positive = (
            match_index(self.classes_, self.pos_label)
            if len(self.classes_) == 2
            else None
        )
        labelled = X, y_encoded
        if continuing:
            self.n_candidate_nonmatches_ = 0
        else:
            X, y_encoded = self._add_candidate_nonmatches(
                X, y_encoded, positive, progress
            )
        if continuing:
            # The features stay as fitted; the prior's predictions on the
            # pairs it was fitted on are then in-sample.
            with progress.step(f"Featurising {count(len(X))} training pairs"):
                encoded = self.featurizer_.transform(X)
        else:
            self.featurizer_ = PairFeaturizer(
                **{
                    name: getattr(self, name)
                    for name in PairFeaturizer.parameter_names()
                }
            )
            encoded = self.featurizer_.fit(X, y_encoded, seed=seed, progress=progress)
            self._warn_id_fields(*labelled, positive)
        progress.say(f"Training the network on {count(len(X))} pairs.")
        valid = (
            None
            if validation_data is None
            else self._validation_dataset(validation_data)
        )
        if self.early_stopping and valid is None:
            check_validation_split(
                self.validation_fraction, len(y_encoded), len(self.classes_)
            )
        params = self.get_params(deep=False)
        settings = TrainingSettings.from_params(params)
        net = (
            self.net_
            if continuing
            else build_net(
                {name: params[name] for name in NETWORK_PARAMS},
                self._network_sizes(),
                settings,
                class_weights(self.class_weight, self.classes_, y_encoded),
                seed,
                valid,
            )
        )
        self.net_, threshold = train(
            net,
            PairDataset(encoded, y_encoded),
            y_encoded,
            seed,
            settings,
            valid=valid,
            continuing=continuing,
            decision_threshold=self.decision_threshold,
            positive=positive,
        )
        if threshold is None:
            # Without a known match class there is no threshold; a refit must
            # not keep one from an earlier fit.
            vars(self).pop("threshold_", None)
        else:
            self.threshold_ = threshold
        return self

    def __getattr__(self, name):
        # Only called for a missing attribute: say why a binary model has no
        # threshold_ rather than just that it is missing.
        if name == "threshold_":
            check_threshold_known(vars(self).get("classes_"), self.pos_label)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def _validate_params(self):
        """Check the hyperparameters against ``_parameter_constraints``."""
        validate_params(self._parameter_constraints, self.get_params(deep=False))

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

    def _add_candidate_nonmatches(self, X, y_encoded, positive, progress):
        """The training pairs and labels with ``candidate_nonmatches``'s
        near misses appended; sets ``n_candidate_nonmatches_``."""
        if positive is None and self.candidate_nonmatches is True:
            raise ValueError(
                "candidate_nonmatches=True adds non-matches, so it needs a "
                "binary task whose match class is known; got the classes "
                f"{self.classes_.tolist()} with pos_label={self.pos_label!r}. "
                "Pass pos_label, or candidate_nonmatches='auto' or False."
            )
        if positive is None or self.candidate_nonmatches is False:
            self.n_candidate_nonmatches_ = 0
            return X, y_encoded
        with progress.step(
            f"Finding the blocker's near misses among the records of "
            f"{count(len(X))} training pairs"
        ):
            fields = resolve_fields(
                X.columns, self.fields, self.left_prefix, self.right_prefix
            )
            added = near_miss_pairs(X, y_encoded == positive, fields)
        self.n_candidate_nonmatches_ = len(added)
        if added.empty:
            return X, y_encoded
        progress.say(f"Added {count(len(added))} near misses as non-matches.")
        return (
            pd.concat([X, added], ignore_index=True),
            np.concatenate(
                [y_encoded, np.full(len(added), 1 - positive, dtype=y_encoded.dtype)]
            ),
        )

    def _validation_dataset(self, validation_data):
        """``fit``'s `validation_data` as a dataset of encoded pairs."""
        if not isinstance(validation_data, (tuple, list)) or len(
            validation_data
        ) not in (2, 3):
            raise TypeError(
                "validation_data must be a tuple (X_valid, y_valid) or (X_valid_left, "
                f"X_valid_right, y_valid); got {type(validation_data).__name__}."
            )
        X, y = resolve_pair_args(
            "fit",
            tuple(validation_data),
            self.left_prefix,
            self.right_prefix,
            with_y=True,
        )
        X = self._validate_pairs(X, reset=False)
        return PairDataset(
            self.featurizer_.transform(X), encode_validation_labels(X, y, self.classes_)
        )

    def _network_sizes(self):
        """The network's sizes that the data set (``NETWORK_DATA_SIZES``)."""
        return {**self.featurizer_.network_sizes(), "n_classes": len(self.classes_)}

    def _warn_id_fields(self, X, y_encoded, positive):
        """Warn about a field that holds record ids: named like an id, with
        values that differ in nearly all the matching pairs (an attribute
        such as a social security number agrees in most of them, and
        pseudo-labels or typos make it differ in some)."""
        matches = y_encoded == positive
        if positive is None or not matches.any():
            return
        for field in self.fields_:
            if not (field.two_sided and looks_like_id(field.name)):
                continue
            left = as_text(X[field.left].to_numpy()[matches])
            right = as_text(X[field.right].to_numpy()[matches])
            agree = np.mean([a is not None and a == b for a, b in zip(left, right)])
            if agree < 0.1:
                warnings.warn(
                    id_column_message(
                        field.name,
                        type(self).__name__,
                        f"named like an id, and its two values differ in "
                        f"{1 - agree:.0%} of the matching pairs",
                    ),
                    UserWarning,
                    stacklevel=3,
                )

    def _check_fitted_columns(self, columns):  # also used by skrecordpair.dask
        self.featurizer_.check_columns(columns)

    # The featurizer's fitted attributes (documented under Attributes).
    fields_ = property(lambda self: self.featurizer_.fields_)
    vocabulary_ = property(lambda self: self.featurizer_.vocabulary_)
    numeric_fields_ = property(lambda self: self.featurizer_.numeric_fields_)
    prior_ = property(lambda self: self.featurizer_.prior_)

    # -------------------------------------------------------------- predict

    @on_cpu_threads
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
        X, _ = resolve_pair_args(
            "predict_proba",
            (X, X_right),
            self.left_prefix,
            self.right_prefix,
            with_y=False,
        )
        X = self._validate_pairs(X, reset=False)
        if len(X) == 0:
            return np.empty((0, len(self.classes_)))
        # One chunk has no progress to show (and link() scores smaller batches
        # under a bar of its own).
        progress = Progress(self.verbose and len(X) > CHUNK_SIZE, type(self).__name__)
        out = []
        with progress.bar(len(X), "Featurising and scoring pairs") as bar:
            for chunk in chunks(X):
                out.append(
                    predict_encoded(self.net_, self.featurizer_.transform(chunk))
                )
                bar.update(len(chunk))
        return np.concatenate(out)

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
        return predicted_labels(
            self.classes_, proba, vars(self).get("threshold_"), self.pos_label
        )

    @on_cpu_threads
    def explain(self, X, X_right=None, *, target=None, n_steps=50, normalize=True):
        """Per-field evidence: why each pair got its prediction.

        For each pair and each side, integrated gradients of the log-odds of
        the `target` class (with more than two classes, of its logit) run
        over that side's field encodings, from a *baseline* record to the
        record itself, the other record staying, and are summed over the
        encoding dimension: one number per field. The baseline depends on the
        predicted class (binary tasks whose match class is known, as
        `pos_label` or inferred from the labels): a predicted match is
        measured from the record with every field missing (a non-matching
        reference), so the fields that agree get the credit; a predicted
        non-match from the other record (a perfect duplicate), so the fields
        that disagree get the blame. Otherwise every pair is measured from
        the perfect duplicate. ``evidence_for_match`` holds the same values
        signed towards the match: positive pushes towards the match class,
        whatever the explained class. Completeness holds per side: the raw
        attributions sum to ``f(pair) - f(baseline)``, ``f`` the explained
        log-odds, up to the reported convergence delta (see
        :ref:`explanations`).

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
            predicted label), ``convergence_delta`` (of that pair and side, in
            the units of ``raw_attribution``), ``evidence_for_match`` (the raw
            attribution in log-odds of the match, positive towards the match;
            NaN with more than two classes or an unknown match class, with a
            warning for the latter), ``baseline`` (``"reference"`` or
            ``"duplicate"``: where the side's path starts) and
            ``baseline_log_odds`` (the log-odds of the match at that start:
            with the side's evidence it adds up to the pair's log-odds, up to
            the convergence delta).
            No pair gives an empty frame with these columns.

        Raises
        ------
        ValueError
            If a field of the model exists on one side only: explanations
            need the same fields, in the same order, on both sides.

        Notes
        -----
        With a single field the normalised attribution is always -1, 0 or
        +1. Explanations are most meaningful for binary match / non-match
        tasks. Earlier versions measured every pair from the perfect
        duplicate and explained the target's logit: their attributions of a
        predicted match could only be negative.

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
        X, _ = resolve_pair_args(
            "explain", (X, X_right), self.left_prefix, self.right_prefix, with_y=False
        )
        X = self._validate_pairs(X, reset=False)
        return explain_pairs(
            self, X, target=target, n_steps=n_steps, normalize=normalize
        )

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
        check_is_fitted(self)
        save_files(
            path,
            **saved_state(
                self.get_params(deep=False), vars(self), self.featurizer_, self.net_
            ),
        )
        return self

    @classmethod
    def load(cls, path, *, device=None, text_encoder=None, max_weights_bytes=None):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The directory or ``.zip`` archive written by :meth:`save`.
        device : str or torch.device, default=None
            Where to put the network; None uses the saved ``device`` (the CPU,
            with a warning, if that was CUDA and none is available).
        text_encoder : str or path-like, default=None
            Where the model's pre-trained text encoder is now (a hub name or a
            local directory), when it moved since the model was saved; None
            uses the saved `text_encoder`, from local files only (a local
            directory, or the Hugging Face cache): loading a model contacts the
            network, for a hub name, only when you name the encoder here.
            Either way the encoder is checked against the identity saved with
            the model (hashes of its configuration, tokenizer and weights),
            and a different one raises a ValueError. Remote code is never run.
        max_weights_bytes : int, default=None
            The largest weights file to read, in bytes; None means 1 GiB
            (``skrecordpair._persistence.MAX_WEIGHTS_BYTES``). A larger one
            is refused before it is read: pass a larger number for a large
            model that you trust (see :ref:`persistence`).

        Returns
        -------
        RecordPairClassifier
            The fitted model, predicting exactly as the saved one did.
        """
        if device is not None:
            validate_params(
                {"device": cls._parameter_constraints["device"]}, {"device": device}
            )
        loaded = load_files(
            path,
            partial(rebuild, cls, device=device, text_encoder=text_encoder),
            max_weights_bytes=max_weights_bytes,
        )
        clf = cls(**loaded.params)
        for name, value in loaded.fitted.items():  # classes_, threshold_, ...
            setattr(clf, name, value)
        clf.featurizer_ = loaded.featurizer
        clf.net_ = loaded.net
        return clf

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
        X, y = resolve_pair_args(
            "score", (X, y, *args), self.left_prefix, self.right_prefix, with_y=True
        )
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
