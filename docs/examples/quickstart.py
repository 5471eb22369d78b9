"""Train a matcher on FEBRL person records, score it, explain one pair, draw it."""

import matplotlib

matplotlib.use("Agg")  # draw to a file, no display needed

from sklearn.metrics import classification_report

from skrecordpair import RecordPairClassifier, plot_explanation
from skrecordpair.datasets import load_febrl

X_left, X_right, y = load_febrl("train")
test_left, test_right, test_y = load_febrl("test")

# A quick model: 2,000 training pairs, 3 epochs (the defaults train up to 20).
clf = RecordPairClassifier(max_epochs=3, random_state=0)
clf.fit(X_left[:2000], X_right[:2000], y[:2000])

print(classification_report(test_y, clf.predict(test_left, test_right), digits=3))

# Why is the first test pair (not) a match? One row per side and field.
explanation = clf.explain(test_left[:1], test_right[:1])
print(explanation[["side", "field", "text", "attribution"]])

ax = plot_explanation(explanation)
ax.figure.savefig("explanation.png", dpi=100, bbox_inches="tight")
