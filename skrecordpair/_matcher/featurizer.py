"""``PairFeaturizer``: pair frames turned into the network's inputs.

It owns everything learnt from the training pairs before the network: the
fields, the token and character vocabularies (``PairEncoder``), the similarity
features' plan and TF-IDF weights, and the similarity prior. Each of the
frame's columns is converted to text once per call, and the text is shared by
the encoder and the similarity features.

Everything here is fitted on the training pairs only, so a cross-validation
never leaks vocabulary or similarity statistics from its test folds.
"""

from __future__ import annotations

import inspect
import os
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from .._pairs import Field, PairTexts, pair_texts, require_columns, resolve_fields
from .._persistence import expect_keys, invalid, short
from .._progress import Progress, count
from .._similarity import (
    auto_numeric_fields,
    feature_fields,
    field_plan,
    fit_tfidf,
    n_features,
    pair_similarities,
    tfidf_from_state,
    tfidf_state,
)
from .._validation import POSITIVE
from .text_encoder import FrozenTextEncoder
from .tokens import PairEncoder, Vocabulary

# FrozenTextEncoder's settings that ``text_encoder_options`` does not offer:
# every encoder that the featurizer builds keeps their defaults (the model is
# `text_encoder` itself).
TEXT_ENCODER_OPTIONS_NOT_OFFERED = ("storage_dtype", "cache")
# The settings of the text encoder that ``text_encoder_options`` may hold.
TEXT_ENCODER_OPTIONS = tuple(
    name
    for name, parameter in inspect.signature(FrozenTextEncoder).parameters.items()
    if parameter.kind is parameter.KEYWORD_ONLY
    and name not in TEXT_ENCODER_OPTIONS_NOT_OFFERED
)

#: Pairs featurised and scored at a time by ``predict_proba``, ``predict`` and
#: ``explain``: their working memory is that of one chunk, whatever the size
#: of the input (see :ref:`scaling`).
CHUNK_SIZE = 32768


def chunks(X):
    """Consecutive row blocks of `X` of at most ``CHUNK_SIZE`` pairs, so that
    memory stays flat on large inputs."""
    for start in range(0, len(X), CHUNK_SIZE):
        yield X.iloc[start : start + CHUNK_SIZE]


class ExplanationInputs(NamedTuple):
    """What an explanation of some pairs needs from the featurizer."""

    encoded: object  # EncodedPairs
    #: The similarity features of the pairs (NaN where missing), or None.
    similarity: np.ndarray | None
    #: The similarities of each right record and of each left record compared
    #: with itself: the baselines of the left and the right side (or None).
    baselines: tuple | None
    texts: PairTexts


class PairFeaturizer:
    """Turns pair frames into :class:`~skrecordpair._matcher.tokens.EncodedPairs`.

    Parameters
    ----------
    fields, left_prefix, right_prefix, min_frequency, max_vocabulary, \
max_tokens_per_field, max_chars_per_token, prepend_field_names, \
similarity_features, similarity_prior, text_encoder, text_encoder_options
        As for :class:`~skrecordpair.RecordPairClassifier`.

    Attributes
    ----------
    fields_ : list of Field
        The fields, resolved against the training pair frame's columns.
    encoder_ : PairEncoder
        The fitted token and character encoder.
    numeric_fields_ : list of str
        The fields whose similarity features include the numeric difference.
    plan_ : list of FieldFeatures or None
        The similarity features of each field; None when neither
        `similarity_features` nor `similarity_prior` is set.
    tfidf_ : dict or None
        The TF-IDF weights of the similarity features (see ``fit_tfidf``).
    prior_ : HistGradientBoostingClassifier or None
        The similarity prior, fitted on all training pairs.
    text_encoder_ : FrozenTextEncoder or None
        The pre-trained text encoder (None without `text_encoder`).
    """

    # The allowed values of the parameters (scikit-learn's declarations).
    _parameter_constraints: ClassVar[dict] = {
        "fields": "no_validation",  # resolved against the columns in fit
        "left_prefix": [str],
        "right_prefix": [str],
        "min_frequency": [POSITIVE],
        "max_vocabulary": [POSITIVE, None],
        "max_tokens_per_field": [POSITIVE],
        "max_chars_per_token": [POSITIVE],
        "prepend_field_names": ["boolean"],
        "similarity_features": ["boolean"],
        "similarity_prior": ["boolean"],
        "text_encoder": [str, os.PathLike, None],
        "text_encoder_options": [dict, None],
    }

    def __init__(
        self,
        *,
        fields=None,
        left_prefix="left_",
        right_prefix="right_",
        min_frequency=2,
        max_vocabulary=50000,
        max_tokens_per_field=64,
        max_chars_per_token=20,
        prepend_field_names=False,
        similarity_features=True,
        similarity_prior=True,
        text_encoder=None,
        text_encoder_options=None,
    ):
        self.fields = fields
        self.left_prefix = left_prefix
        self.right_prefix = right_prefix
        self.min_frequency = min_frequency
        self.max_vocabulary = max_vocabulary
        self.max_tokens_per_field = max_tokens_per_field
        self.max_chars_per_token = max_chars_per_token
        self.prepend_field_names = prepend_field_names
        self.similarity_features = similarity_features
        self.similarity_prior = similarity_prior
        self.text_encoder = text_encoder
        self.text_encoder_options = text_encoder_options

    @classmethod
    def parameter_names(cls):
        """The names of the featurizer's parameters (the estimator's of the same name)."""
        return [name for name in inspect.signature(cls).parameters]

    # ------------------------------------------------------------- fitting

    def fit(self, X, y, *, seed, progress=None):
        """Learn the features from the training pairs `X` with labels `y`.

        Parameters
        ----------
        X : pandas.DataFrame
            The training pair frame, validated by the caller.
        y : ndarray of shape (n_pairs,)
            The class indices (0 to n_classes - 1) of the pairs.
        seed : int
            Seeds the prior's folds and trees.
        progress : Progress or None, default=None
            Told each step and its time (silent when None).

        Returns
        -------
        EncodedPairs
            The training pairs encoded, with the prior's out-of-fold
            log-probabilities as their prior: the network learns what the
            prior misses on new pairs, not on the pairs it was fitted on.
        """
        progress = Progress(0, "") if progress is None else progress
        self.fields_ = resolve_fields(
            X.columns, self.fields, self.left_prefix, self.right_prefix
        )
        self.text_encoder_ = self._build_text_encoder()
        n = count(len(X))
        with progress.step(f"Vocabularies of {n} pairs ({len(self.fields_)} fields)"):
            texts = self._texts(X)
            self.encoder_ = PairEncoder(
                self.fields_,
                max_tokens_per_field=self.max_tokens_per_field,
                max_chars_per_token=self.max_chars_per_token,
                prepend_field_names=self.prepend_field_names,
            ).fit(
                texts,
                min_frequency=self.min_frequency,
                max_vocabulary=self.max_vocabulary,
            )
        self.numeric_fields_, self.plan_, self.tfidf_, self.prior_ = (
            [],
            None,
            None,
            None,
        )
        similarity = prior = None
        if self.similarity_features or self.similarity_prior:
            with progress.step(f"Similarity features of {n} pairs"):
                self.numeric_fields_ = auto_numeric_fields(texts, self.fields_)
                self.plan_ = field_plan(self.fields_, self.numeric_fields_)
                self.tfidf_ = fit_tfidf(texts, self.plan_)
                similarity = self._similarities(texts)
            if self.similarity_prior:
                with progress.step(
                    "Similarity prior (gradient boosting, out-of-fold "
                    "predictions of the training pairs)"
                ):
                    self.prior_, prior = fit_prior(similarity, y, seed)
        with progress.step(f"Encoding {n} pairs for the network"):
            return self._encode(texts, similarity, prior)

    # ---------------------------------------------------------- transforms

    def transform(self, X):
        """The encoded pairs of the pair frame `X` (validated by the caller)."""
        return self._encode(self._texts(X))

    def explanation_inputs(self, X):
        """The encoded pairs of `X`, their similarities and the explanation
        baselines, and the pairs' texts (an :class:`ExplanationInputs`).

        The pairs and both baselines are compared in one call: on small inputs
        the cost per call dominates, and a row's features do not depend on the
        other rows.
        """
        texts = self._texts(X)
        similarity = baselines = None
        if self.plan_ is not None:
            stacked = {}
            for field in self.fields_:
                for column in field.columns:
                    stacked[column] = np.concatenate(
                        [texts[column], texts[field.right], texts[field.left]]
                    )
            similarity, *baselines = np.split(
                self._similarities(PairTexts(stacked, 3 * texts.n_pairs)), 3
            )
        return ExplanationInputs(
            self._encode(texts, similarity), similarity, baselines, texts
        )

    def _build_text_encoder(self):
        """The frozen encoder of `text_encoder` (None without one); checks that
        every field has both sides, which its token-level matching compares."""
        if self.text_encoder is None:
            return None
        options = dict(self.text_encoder_options or {})
        unknown = sorted(set(options) - set(TEXT_ENCODER_OPTIONS))
        if unknown:
            raise ValueError(
                f"text_encoder_options has unknown option(s) {unknown}; "
                f"the options are {list(TEXT_ENCODER_OPTIONS)}."
            )
        one_sided = [field.name for field in self.fields_ if not field.two_sided]
        if one_sided:
            raise ValueError(
                f"text_encoder compares each field's two values, but the field(s) "
                f"{one_sided} have one side only; pass fields= with two-sided fields."
            )
        return FrozenTextEncoder(os.fspath(self.text_encoder), **options)

    def _subwords(self, texts):
        """Each field's distinct values encoded by the text encoder, and each
        pair's rows among them: ``(left_values, right_values, value_vectors)``."""
        n = texts.n_pairs
        shape = (n, len(self.fields_))
        left, right = np.empty(shape, np.int64), np.empty(shape, np.int64)
        per_field = []
        for f, field in enumerate(self.fields_):
            vectors = self.text_encoder_.encode(
                np.concatenate([texts[field.left], texts[field.right]]),
                field=field.name,
            )
            left[:, f], right[:, f] = (
                vectors.index[:n].numpy(),
                vectors.index[n:].numpy(),
            )
            per_field.append(vectors)
        return left, right, per_field

    def _texts(self, X):
        return pair_texts(X, [c for field in self.fields_ for c in field.columns])

    def _similarities(self, texts):
        """The similarity features of the pairs (NaN where missing).

        The string comparisons run on torch's threads: they come before the
        network, never beside it, so they use the cores the network would.
        """
        return pair_similarities(
            texts, self.plan_, self.tfidf_, workers=torch.get_num_threads()
        )

    def _encode(self, texts, similarity=None, prior=None):
        """The network's inputs: token ids; and, as the network reads them, the
        similarity features and the prior's log-probabilities (computed unless
        given)."""
        encoded = self.encoder_.transform(texts)
        if self.text_encoder_ is not None:
            encoded.left_values, encoded.right_values, encoded.value_vectors = (
                self._subwords(texts)
            )
        if self.plan_ is None:
            return encoded
        if similarity is None:
            similarity = self._similarities(texts)
        if self.similarity_features:
            encoded.similarity = as_network_input(similarity)
        if self.prior_ is not None:
            encoded.prior = self.prior_log_proba(similarity) if prior is None else prior
        return encoded

    # ---------------------------------------------------------- saved state

    def to_state(self):
        """The fitted state as plain data; the prior (``prior_``) is saved apart.

        ``fields``, ``encoder``, ``vocabulary``, ``numeric_fields``, with
        similarity features ``tfidf``, and with a text encoder
        ``text_encoder``, its identity (``FrozenTextEncoder.identity``).
        """
        state = {
            "fields": [list(field) for field in self.fields_],
            "encoder": self.encoder_.to_state(),
            "vocabulary": self.vocabulary_.to_state(),
            "numeric_fields": list(self.numeric_fields_),
        }
        if self.tfidf_ is not None:
            state["tfidf"] = tfidf_state(self.tfidf_)
        if self.text_encoder_ is not None:
            state["text_encoder"] = self.text_encoder_.identity()
        return state

    @classmethod
    def from_state(
        cls, params, state, *, prior, n_network_features, n_classes, where="model.json"
    ):
        """The featurizer saved by :meth:`to_state`; ValueError if malformed.

        Parameters
        ----------
        params : dict
            The featurizer's parameters (the estimator's of the same name).
        state : dict
            The output of :meth:`to_state`.
        prior : HistGradientBoostingClassifier or None
            The saved similarity prior.
        n_network_features : int
            The length of the similarity vector the saved network reads: the
            similarity features are on when it is not 0.
        n_classes : int
            The number of classes the prior must predict.
        where : str, default="model.json"
            Where the state was read, for the error messages.
        """
        expect_keys(
            state,
            ("fields", "encoder", "vocabulary", "numeric_fields"),
            f"{where} 'featurizer'",
            optional=("tfidf", "text_encoder"),
        )
        # The settings as fitted (the parameters may have changed since).
        featurizer = cls(
            **{
                **params,
                "similarity_features": bool(n_network_features),
                "similarity_prior": prior is not None,
            }
        )
        featurizer.fields_ = _fields(state["fields"])
        vocabulary = Vocabulary.from_state(state["vocabulary"], f"{where} 'vocabulary'")
        featurizer.encoder_ = PairEncoder.from_state(
            featurizer.fields_, state["encoder"], vocabulary, f"{where} 'encoder'"
        )
        numeric = state["numeric_fields"]
        if not (isinstance(numeric, list) and all(isinstance(n, str) for n in numeric)):
            raise invalid("the attribute numeric_fields_ must be a list of field names")
        featurizer.numeric_fields_ = numeric
        featurizer.plan_ = featurizer.tfidf_ = featurizer.prior_ = None
        if n_network_features or prior is not None:
            featurizer.plan_ = field_plan(featurizer.fields_, numeric)
            featurizer.tfidf_ = _tfidf(state.get("tfidf"), featurizer.plan_, where)
        featurizer.text_encoder_ = _text_encoder(
            featurizer, state.get("text_encoder"), where
        )
        n_similarity = 0 if featurizer.plan_ is None else n_features(featurizer.plan_)
        if n_network_features and n_network_features != n_similarity:
            raise invalid(
                f"the network's n_similarity_features={short(n_network_features)} does "
                f"not match the {n_similarity} similarity features of the saved fields"
            )
        if prior is not None:
            if not (
                getattr(prior, "n_features_in_", None) == n_similarity
                and np.array_equal(
                    getattr(prior, "classes_", None), np.arange(n_classes)
                )
            ):
                raise invalid(
                    f"prior.skops is not a similarity prior for {n_similarity} "
                    f"features and {n_classes} classes"
                )
            featurizer.prior_ = prior
        return featurizer

    # ------------------------------------------------------------- queries

    def check_columns(self, columns):
        """Raise unless `columns` hold the columns of every field."""
        require_columns(
            columns,
            [c for f in self.fields_ for c in f.columns],
            "X (the pair frame of the fields the model was fitted on)",
        )

    @property
    def vocabulary_(self):
        """The word and character vocabularies (a ``Vocabulary``)."""
        return self.encoder_.vocabulary

    @property
    def n_network_features(self):
        """The length of the similarity vector that the network's head reads."""
        return n_features(self.plan_) if self.similarity_features else 0

    @property
    def pretrained_dim(self):
        """The size of the text encoder's vectors (0 without one)."""
        return 0 if self.text_encoder_ is None else self.text_encoder_.dim

    def network_sizes(self):
        """The network's input sizes that the fitted featurisation sets:
        ``n_words``, ``n_chars``, ``n_similarity_features`` and
        ``pretrained_dim`` (``RecordPairNetwork``'s arguments)."""
        vocabulary = self.vocabulary_
        return {
            "n_words": len(vocabulary.words),
            "n_chars": len(vocabulary.chars),
            "n_similarity_features": self.n_network_features,
            "pretrained_dim": self.pretrained_dim,
        }

    @property
    def feature_fields(self):
        """The field index of each similarity feature, or None without them."""
        return None if self.plan_ is None else feature_fields(self.plan_)

    def prior_log_proba(self, similarity):
        """The prior's log-probabilities for the similarity features (n, S)."""
        return log_proba(self.prior_, similarity)


# ------------------------------------------------------------------ the prior


def as_network_input(similarity):
    """Similarity features as network input: float32, NaN as 0.

    The missing flags among the features tell the network when a 0 stands for
    a missing value.
    """
    return np.nan_to_num(similarity, nan=0.0).astype(np.float32)


def prior_training_input(similarity, min_present=20):
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


def log_proba(model, similarity):
    """`model`'s log-probabilities, float32."""
    # Clipped so that a prior that is certain cannot make a logit infinite.
    proba = model.predict_proba(similarity)
    return np.log(np.clip(proba, 1e-6, None)).astype(np.float32)


def fit_prior(similarity, y, seed, n_splits=5):
    """The similarity model, and its out-of-fold log-probabilities on `y`'s pairs.

    Out-of-fold predictions are as good on the training pairs as the model is
    on new pairs; in-sample ones would be overconfident, leaving the network
    nothing to learn from. With fewer than two pairs in some class there are
    no folds, and the in-sample predictions are used.
    """
    model = HistGradientBoostingClassifier(random_state=seed)
    features = prior_training_input(similarity)
    n_splits = min(n_splits, int(np.bincount(y).min()))
    if n_splits >= 2:
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        proba = cross_val_predict(model, features, y, cv=folds, method="predict_proba")
        prior = np.log(np.clip(proba, 1e-6, None)).astype(np.float32)
    model.fit(features, y)
    if n_splits < 2:
        prior = log_proba(model, features)
    return model, prior


# ---------------------------------------------------------------- saved state


def _fields(saved):
    if not (isinstance(saved, list) and saved):
        raise invalid("fields must be a non-empty list")
    fields = []
    for field in saved:
        if not (
            isinstance(field, list)
            and len(field) == 3
            and isinstance(field[0], str)
            and all(c is None or isinstance(c, str) for c in field[1:])
            and field[1:] != [None, None]
        ):
            raise invalid(f"invalid field {short(field)}")
        fields.append(Field(*field))
    return fields


def _text_encoder(featurizer, identity, where):
    """The saved model's text encoder, after checking that it is the one the
    model was trained with; None without one."""
    if featurizer.text_encoder is None:
        if identity is not None:
            raise invalid(
                f"{where} describes a text encoder but the parameter "
                "text_encoder is None"
            )
        return None
    if not isinstance(identity, dict):
        raise invalid(
            f"{where} lacks the identity of the text encoder "
            f"{short(featurizer.text_encoder)}"
        )
    encoder = featurizer._build_text_encoder()
    encoder.check_identity(identity)
    return encoder


def _tfidf(state, plan, where):
    """The similarity features' TF-IDF weights, for exactly the two-sided fields."""
    expected = sorted(field.name for field in plan if field.two_sided)
    if not isinstance(state, dict) or sorted(state) != expected:
        raise invalid(
            f"{where} 'tfidf' must hold the TF-IDF weights of the fields {expected}"
        )
    try:
        return tfidf_from_state(state)
    except (ValueError, TypeError, KeyError) as exc:
        raise invalid(f"{where} 'tfidf' is malformed: {exc}") from None
