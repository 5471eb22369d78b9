"""scikit-learn API compliance of RecordPairClassifier.

scikit-learn's common checks feed numeric ``(n, k)`` arrays, which are not pair
frames. Two layers of coverage (see the conventions, section 3.3):

- the full check suite runs on ``_NumericAdapter``, a test-only subclass that
  validates the numeric array the way any scikit-learn estimator does and turns
  it into a pair frame of ``k`` text fields before handing it to the real code;
- the data-independent checks run directly on the real estimator.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from skrecordpair import RecordPairClassifier


class _NumericAdapter(RecordPairClassifier):
    """RecordPairClassifier on numeric arrays, for scikit-learn's common checks.

    The raw ``(n, k)`` input is validated with ``validate_data`` (which runs
    ``check_array(X, accept_sparse=False, ensure_all_finite=True)``), so
    ``n_features_in_`` (``k``), ``feature_names_in_`` and the error messages
    for NaN, inf, sparse, complex and empty input are scikit-learn's own. It
    then becomes a pair frame with ``k`` fields ``left_<j>``/``right_<j>``: the
    ``str`` of each value, the same on both sides. Everything after that
    (parameter and target validation, encoding, training, prediction, labels,
    fitted-state checks) is the real code; only the frame-level feature
    bookkeeping in ``_validate_pairs`` is replaced, because the frame is an
    internal, derived representation here.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The adapter takes numeric arrays only and rejects NaN/inf through
        # check_array, so it must not claim the text estimator's input tags.
        tags.input_tags.string = False
        tags.input_tags.allow_nan = False
        tags.input_tags.categorical = False
        # Floats are tokenised as text and the network trains for 3 epochs on
        # tiny data: it cannot reach the 0.83 accuracy check_classifiers_train
        # demands of ordinary classifiers.
        tags.classifier_tags.poor_score = True
        return tags

    def _to_pairs(self, X, *, reset):
        X = validate_data(
            self, X, reset=reset, accept_sparse=False, ensure_all_finite=True
        )
        text = np.vectorize(str, otypes=[object])(X)
        columns = {}
        for side in ("left", "right"):
            for j in range(text.shape[1]):
                columns[f"{side}_{j}"] = text[:, j]
        return pd.DataFrame(columns)

    def _validate_pairs(self, X, *, reset):
        # The raw array was validated in _to_pairs; validating the derived frame
        # again would replace n_features_in_ (k) and feature_names_in_ with the
        # frame's 2k generated column names.
        return X

    def fit(self, X, y=None):
        continuing = self.warm_start and hasattr(self, "net_")
        return super().fit(self._to_pairs(X, reset=not continuing), y)

    # predict and score are inherited: both go through self.predict_proba.
    def predict_proba(self, X, X_right=None):
        check_is_fitted(self)
        if X_right is not None:
            raise TypeError("_NumericAdapter takes one numeric array.")
        return super().predict_proba(self._to_pairs(X, reset=False))

    def explain(self, X, **kwargs):
        check_is_fitted(self)
        return super().explain(self._to_pairs(X, reset=False), **kwargs)


# Tiny network, few epochs: the whole suite must run in seconds (conftest.py
# also limits torch to one thread).
_TINY = dict(
    word_dim=8,
    char_dim=8,
    char_hidden_size=8,
    field_hidden_size=8,
    record_hidden_size=4,
    num_perspectives=2,
    aggregator_hidden_size=4,
    hidden_layer_sizes=(8,),
    max_epochs=3,
    early_stopping=False,
)

# Checks expected to fail, each with its reason. fit takes no sample_weight (so the
# sample-weight checks do not apply, and passing weights is a TypeError), and the
# error messages use the phrases the checks look for.
# xfail_strict=True below turns a fixed entry into a failure, so entries get removed.
# None today. check_methods_sample_order_invariance was one while the head's input
# size (which grows with the similarity features) was not a multiple of the CPU's
# vector width: float32 kernels then round a row differently by its position in the
# batch (~1e-7, the check's rtol). Should it return, that is the reason;
# test_classifier.py asserts order and batch independence to 1e-5.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [_NumericAdapter(**_TINY, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check",
    [
        check_estimator_cloneable,
        check_estimator_repr,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
        check_do_not_raise_errors_in_init_or_set_params,
        check_estimator_tags_renamed,
        check_valid_tag_types,
        check_mixin_order,
    ],
    ids=lambda check: check.__name__,
)
def test_data_independent_checks(check):
    check("RecordPairClassifier", RecordPairClassifier())


def test_tags_are_honest():
    tags = RecordPairClassifier().__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert tags.input_tags.string
    assert tags.input_tags.allow_nan
    # two_d_array=False would make scikit-learn skip every check but one.
    assert tags.input_tags.two_d_array
    assert tags.target_tags.required
    assert tags.requires_fit

    # string=True and allow_nan=True hold in practice: text with missing values
    # (NaN, None, empty string) fits and predicts finite probabilities.
    left = pd.DataFrame(
        {
            "name": ["anna smith", "john doe", np.nan, "émile"] * 5,
            "city": ["berlin", None, "paris", ""] * 5,
        }
    )
    right = pd.DataFrame(
        {
            "name": ["ana smith", "jane roe", "x", np.nan] * 5,
            "city": ["berlin", "rome", None, "lyon"] * 5,
        }
    )
    clf = RecordPairClassifier(**_TINY, random_state=0)
    proba = clf.fit(left, right, [1, 0, 0, 1] * 5).predict_proba(left, right)
    assert proba.shape == (20, 2)
    assert np.isfinite(proba).all()
