"""Linear class scores as extra features for the forest.

A forest splits on one feature at a time, so on sparse text it sees a few hundred of tens of
thousands of words per split, while a linear model weighs every word at once. `LinearScores`
appends, for each class, a linear SVM's score to the feature matrix, and the forest splits on those
scores next to the words themselves (stacking). Training rows get out-of-fold scores, fitted
without the row itself, so the forest learns how far to trust the scores on products the linear
model has not seen; every other row gets the scores of the linear model fitted on all training rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.parallel import Parallel, delayed

FLOOR = -1.0
"""Scores below it say only "not this class"; clipped there and shifted to start at 0, so the
features stay non-negative like the TF-IDF ones."""


class LinearScores(TransformerMixin, BaseEstimator):
    """Appends one linear score per class. The last `linear_only` input columns (the featurizer's
    `linear_chars` block) feed the linear model only and are not passed on."""

    def __init__(
        self,
        C: float = 1.0,
        folds: int = 3,
        random_state: int | None = None,
        linear_only: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state
        self.linear_only = linear_only
        self.n_jobs = n_jobs

    def _linear(self) -> LinearSVC:
        # liblinear shuffles the rows: seeded here, or it draws from NumPy's global generator,
        # and the same --seed would not give the same scores.
        return LinearSVC(C=self.C, class_weight="balanced", random_state=self.random_state)

    def fit(self, X: Any, y: Any) -> LinearScores:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **_: Any) -> sparse.csr_matrix:
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        scores = np.full((X.shape[0], len(self.classes_)), FLOOR)
        folds = min(self.folds, int(np.bincount(np.searchsorted(self.classes_, y)).max()))
        if folds >= 2:
            split = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            with warnings.catch_warnings():  # a class with fewer rows than folds: see below
                warnings.simplefilter("ignore", UserWarning)
                splits = list(split.split(np.zeros(len(y)), y))
        else:
            splits = []
        # The folds' fits and the final one are independent, so they run side by side, in
        # processes: liblinear draws its row order from one generator per process, and fits in
        # threads of one process drew from it in turns that vary from run to run (the same
        # --seed gave scores up to 5e-5 apart). A class with fewer rows than folds is still
        # scored out of fold, by models that saw none of its rows (FLOOR), as a new class would.
        fits = [delayed(self._scores_by_class)(X, y, fit, scored) for fit, scored in splits]
        *fold_scores, (self.coef_, self.intercept_) = Parallel(self.n_jobs, prefer="processes")(
            [*fits, delayed(self._fit_all)(X, y)]
        )
        for (_, scored), block in zip(splits, fold_scores, strict=True):
            scores[scored] = block
        if folds < 2:  # too few rows to hold any out: in-sample scores
            scores = self._scores(X)
        return _with_scores(self._passed_on(X), scores)

    def _fit_all(self, X: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # float16: the weights of tens of thousands of words and character n-grams per class are
        # most of this step's size in the saved model; scores stay float32 sums.
        coef = np.zeros((len(self.classes_), X.shape[1]), dtype=np.float16)
        intercept = np.full(len(self.classes_), FLOOR, dtype=np.float32)
        if len(self.classes_) > 1:
            model = self._linear().fit(X, y)
            rows = _rows(model, self.classes_)
            coef[rows], intercept[rows] = model.coef_, model.intercept_
        return coef, intercept

    def _scores_by_class(
        self, X: Any, y: np.ndarray, fitted_on: np.ndarray, scored: np.ndarray
    ) -> np.ndarray:
        """Scores of the rows `scored` by a model fitted on the rows `fitted_on`, in the columns
        of all classes (a class missing from those rows scores FLOOR)."""
        X_fit, y_fit, X_score = X[fitted_on], y[fitted_on], X[scored]
        scores = np.full((X_score.shape[0], len(self.classes_)), FLOOR)
        present = np.unique(y_fit)
        if len(present) > 1:
            model = self._linear().fit(X_fit, y_fit)
            scores[:, _rows(model, self.classes_)] = model.decision_function(X_score).reshape(
                X_score.shape[0], -1
            )
        return scores

    def _scores(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self._weights()) + self.intercept_

    def _weights(self) -> np.ndarray:
        """`coef_` transposed and C-ordered, made once: scipy copies a transposed view (4.6 MB for
        58 classes by 20,000 words) on every product, which cost more than the product itself."""
        weights = self.__dict__.get("weights_")
        if weights is None:
            weights = self.weights_ = np.ascontiguousarray(self.coef_.T, dtype=np.float32)
        return weights

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("weights_", None)  # derived from coef_: not saved twice
        return state

    def transform(self, X: Any) -> sparse.csr_matrix:
        return _with_scores(self._passed_on(X), self._scores(X))

    def _passed_on(self, X: Any) -> Any:
        kept = X.shape[1] - getattr(self, "linear_only", 0)
        return X[:, :kept] if kept < X.shape[1] else X


def _rows(model: LinearSVC, classes: np.ndarray) -> np.ndarray:
    """Where the model's score columns go among all classes. For two classes LinearSVC gives one
    column, the second's score; the first's column keeps FLOOR."""
    return np.searchsorted(
        classes, model.classes_ if len(model.classes_) > 2 else model.classes_[1:]
    )


def _with_scores(X: Any, scores: np.ndarray) -> sparse.csr_matrix:
    shifted = np.clip(scores, FLOOR, None) - FLOOR
    return sparse.hstack([X, sparse.csr_matrix(shifted, dtype=np.float32)], format="csr")
