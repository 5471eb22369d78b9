"""Cross-validated model selection and a tuned decision threshold on pair frames."""

import numpy as np
from sklearn.model_selection import GridSearchCV, TunedThresholdClassifierCV

from skrecordpair import RecordPairClassifier, pair_frame
from skrecordpair.datasets import load_febrl

X_left, X_right, y = load_febrl("train")
X = pair_frame(X_left, X_right)[:600]  # scikit-learn tools slice one pair frame
y = y[:600]

# Small, fast networks for the example; every hyperparameter can be searched.
small = RecordPairClassifier(max_epochs=2, field_hidden_size=32, random_state=0)
search = GridSearchCV(
    small, {"lr": [1e-3, 3e-3]}, scoring="f1", cv=2, error_score="raise"
)
search.fit(X, y)
print("best parameters:", search.best_params_, f"F1: {search.best_score_:.3f}")

# Entity matching is imbalanced: choose the threshold that maximises F1.
tuned = TunedThresholdClassifierCV(search.best_estimator_, scoring="f1", cv=2)
tuned.fit(X, y)
print(f"threshold: {tuned.best_threshold_:.3f}")
print("predicted matches:", int(np.sum(tuned.predict(X))), "of", len(y))
