"""Logistic regression on Dask: scikit-learn's lbfgs objective, minimised on the client over
losses and gradients summed from the workers.

Each training partition's one-hot design stays on the worker that built it (a future, never
gathered), split into the rows before the validation day and the rows of it. For a vector of
coefficients and intercept (sent with one task per worker per evaluation) every part returns the sum of its
rows' logistic losses and its gradient ``(X^T (p - y), sum(p - y))``; the client adds the parts
up in partition order (so a run is reproducible), scales them and adds the L2 term exactly as
``LogisticRegression(solver="lbfgs", C=C)`` does (:func:`lbfgs_objective`), and runs
``scipy.optimize.minimize(method="L-BFGS-B")`` with the options scikit-learn passes
(:func:`minimize_lbfgs`). The client holds vectors of one value per feature, never a matrix.

The validation-day rule is the single-machine one (:func:`ltr.models._select.choose_C`): each
``C`` of the grid fitted on the days before the last training day, warm-started from the
previous ``C``'s solution; the validation day's probabilities computed on the workers; the
lowest logloss wins; then the refit on every training day, started from the chosen solution.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit

from ltr.bundle import design_matrix
from ltr.distributed._parts import Parts, by_holder, part_facts
from ltr.features import FeatureBuilder
from ltr.models import LogisticRegressionRanker
from ltr.models._select import C_GRID, check_validation_rows, choose_C, held_out

__all__ = ["SOLVER", "fit_lr_on_dask", "lbfgs_objective", "minimize_lbfgs", "part_loss_gradient"]

#: What ``metadata.training.engine.solver`` says of the Dask engine's LR.
SOLVER = ("L-BFGS-B (scipy) on the client over losses and gradients summed from the workers' one-hot designs "
          "(scikit-learn's lbfgs objective and options)")

Block = tuple[Any, np.ndarray]
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _lr_design(frame: pd.DataFrame, builder: FeatureBuilder, inputs: str, day: int | None) -> tuple[Block, Block]:
    """A partition's model inputs and labels: the rows before ``day``, the rows of ``day`` (runs on a worker;
    without a day, every row is in the first block)."""
    X, _ = design_matrix(builder.transform(frame, dense=inputs != "onehot"), inputs)
    y = frame["click"].to_numpy().astype(np.float64)
    on_day = frame["day"].to_numpy().astype(np.int64) == day if day is not None else np.zeros(len(y), dtype=bool)
    return (X[~on_day], y[~on_day]), (X[on_day], y[on_day])


def _block_counts(blocks: tuple[Block, Block]) -> list[int]:
    """Rows and clicks of each block: ``[rows, clicks, day rows, day clicks]``."""
    return [int(blocks[0][1].size), int(blocks[0][1].sum()), int(blocks[1][1].size), int(blocks[1][1].sum())]


def _day_labels(blocks: tuple[Block, Block]) -> np.ndarray:
    return blocks[1][1]


def _day_probabilities(blocks: tuple[Block, Block], theta: np.ndarray) -> np.ndarray:
    """Click probabilities of the validation day's rows."""
    X = blocks[1][0]
    return expit(np.asarray(X @ theta[:-1], dtype=np.float64).ravel() + theta[-1])


def part_loss_gradient(blocks: Sequence[Block], theta: np.ndarray, every: bool = True) -> tuple[float, np.ndarray]:
    """Sum of a part's logistic losses and its gradient (runs on a worker).

    Parameters
    ----------
    blocks : sequence of (X, y)
        The part's designs (CSR or dense) and 0/1 labels: the rows before the validation day,
        then the rows of it.
    theta : ndarray of shape (n_features + 1,)
        Coefficients, then the intercept.
    every : bool, default True
        Every block; False reads the first one only (the days before the validation day).

    Returns
    -------
    loss : float
        ``sum(log(1 + exp(z)) - y z)`` over the rows, ``z = X coef + intercept``.
    gradient : ndarray of shape (n_features + 1,)
        ``X^T (p - y)``, then ``sum(p - y)``, ``p = expit(z)``.
    """
    loss, gradient = 0.0, np.zeros(theta.size)
    for X, y in blocks if every else blocks[:1]:
        if not y.size:
            continue
        z = np.asarray(X @ theta[:-1], dtype=np.float64).ravel() + theta[-1]
        loss += float(np.sum(np.logaddexp(0.0, z) - y * z))
        residual = expit(z) - y
        gradient[:-1] += np.asarray(X.T @ residual, dtype=np.float64).ravel()
        gradient[-1] += residual.sum()
    return loss, gradient


def lbfgs_objective(parts: Sequence[tuple[float, np.ndarray]], theta: np.ndarray, C: float, n_rows: int
                    ) -> tuple[float, np.ndarray]:
    """scikit-learn's objective for ``LogisticRegression(solver="lbfgs", C=C)`` from the parts' sums.

    ``mean(loss) + ||coef||^2 / (2 C n)`` and its gradient (the intercept is not penalised):
    ``LinearModelLoss.loss_gradient`` with ``l2_reg_strength = 1 / (C n)``, as scikit-learn's
    ``_logistic_regression_path`` calls it with unit sample weights. Parts are added in the
    given order.
    """
    loss, gradient = 0.0, np.zeros(theta.size)
    for part_loss, part_gradient in parts:
        loss += part_loss
        gradient += part_gradient
    strength = 1.0 / (C * n_rows)
    coef = theta[:-1]
    gradient /= n_rows
    gradient[:-1] += strength * coef
    return loss / n_rows + 0.5 * strength * float(coef @ coef), gradient


def minimize_lbfgs(objective: Objective, start: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """``scipy.optimize.minimize(method="L-BFGS-B")`` with scikit-learn's lbfgs options; the solution
    and the iterations (at most ``max_iter``: ``max_iter`` means it stopped there)."""
    result = optimize.minimize(objective, start, method="L-BFGS-B", jac=True,
                               options={"maxiter": max_iter, "maxls": 50, "gtol": tol,
                                        "ftol": 64 * np.finfo(float).eps})
    return np.asarray(result.x, dtype=np.float64), min(int(result.nit), max_iter)


def _each_part(func: Callable[..., Any], designs: list[tuple[Block, Block]], *args: Any) -> list[Any]:
    """``func(design, *args)`` for each of a worker's designs, in order (runs on that worker)."""
    return [func(design, *args) for design in designs]


class _Solver:
    """The parts' designs on the workers and the L-BFGS runs over them.

    Each evaluation is one task per worker holding designs (the vector passed with it), which
    returns each of its parts' results; the client puts them back in partition order.
    """

    def __init__(self, client: Any, designs: list[Any], rows: tuple[int, int], max_iter: int, tol: float):
        self.client, self.designs, self.rows, self.max_iter, self.tol = client, designs, rows, max_iter, tol
        self.groups = by_holder(client, designs)  # the designs are in memory

    def run(self, func: Callable[..., Any], *args: Any) -> list[Any]:
        """``func(design, *args)`` on every design, on the worker holding it; the results in partition order."""
        # Where the designs are; elsewhere if that worker is gone (its designs are then rebuilt or moved).
        futures = [self.client.submit(_each_part, func, [self.designs[i] for i in held], *args, workers=[worker],
                                      allow_other_workers=True, pure=False) for worker, held in self.groups]
        found: list[Any] = [None] * len(self.designs)
        for (_, held), results in zip(self.groups, self.client.gather(futures), strict=True):
            for i, result in zip(held, results, strict=True):
                found[i] = result
        return found

    def objective(self, C: float, every: bool) -> Objective:
        def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray]:
            parts = self.run(part_loss_gradient, theta, every)
            return lbfgs_objective(parts, theta, C, self.rows[1] if every else self.rows[0])
        return evaluate

    def solve(self, C: float, every: bool, start: np.ndarray) -> tuple[np.ndarray, int]:
        return minimize_lbfgs(self.objective(C, every), start, self.max_iter, self.tol)

    def predict_day(self, theta: np.ndarray) -> np.ndarray:
        return np.concatenate(self.run(_day_probabilities, theta))


def _validated(solver: _Solver, params: dict[str, Any], y_valid: np.ndarray, refit: bool, zeros: np.ndarray
               ) -> tuple[dict[str, Any], dict[str, float | None], tuple[np.ndarray, int]]:
    """The chosen ``C``, its validation metrics and the final solution (refit or not)."""
    if "C" in params:
        chosen = {"C": float(params["C"])}
        probe = solver.solve(chosen["C"], False, zeros)
        valid = held_out(y_valid, solver.predict_day(probe[0]))
    else:
        last = [zeros]

        def fit(C: float) -> tuple[np.ndarray, int]:
            found = solver.solve(C, False, last[0])  # from the previous C's solution
            last[0] = found[0]
            return found

        chosen, valid, probe = choose_C(fit, lambda found: solver.predict_day(found[0]), y_valid, C_GRID)
        if not refit:  # the probes were warm-started: the chosen C afresh, as on one machine
            probe = solver.solve(chosen["C"], False, zeros)
    return chosen, valid, solver.solve(chosen["C"], True, probe[0]) if refit else probe


def fit_lr_on_dask(client: Any, rows: Parts, builder: Any, inputs: str, params: dict[str, Any], names: list[str],
                   validation: bool, refit: bool) -> tuple[LogisticRegressionRanker, dict[str, Any] | None, int]:
    """``fit_estimator``'s logistic regression on the training partitions (see the module docstring).

    Parameters
    ----------
    client : distributed.Client
    rows : Parts
        The training rows.
    builder : FeatureBuilder or Future
        The fitted feature pipeline (scattered).
    inputs, params, validation, refit
        As in :func:`ltr._training.fit_estimator`.
    names : list of str
        The design's column names.

    Returns
    -------
    model : LogisticRegressionRanker
    record : dict or None
        The validation record (:func:`ltr.models.fit_validated`'s), None without a validation day.
    rows : int
        The rows fitted.
    """
    checked = LogisticRegressionRanker(**params)._checked_params()
    days = sorted({d for facts in rows.run(part_facts) for d in facts["days"]})
    day = days[-1] if validation and len(days) > 1 else None
    designs = rows.map(_lr_design, builder=builder, inputs=inputs, day=day)
    counts = np.array(client.gather(client.map(_block_counts, designs, pure=False)), dtype=np.int64).sum(axis=0)
    n_rows = int(counts[0] + counts[2])
    solver = _Solver(client, designs, (int(counts[0]), n_rows), checked["max_iter"], checked["tol"])
    zeros = np.zeros(len(names) + 1)
    record: dict[str, Any] | None = None
    chosen: dict[str, Any] = {}
    if day is None:
        theta, n_iter = solver.solve(checked["C"], True, zeros)
    else:
        record = {"rows": check_validation_rows(*(int(c) for c in counts))}
        y_valid = np.concatenate(client.gather(client.map(_day_labels, designs, pure=False)))
        chosen, valid, (theta, n_iter) = _validated(solver, params, y_valid, refit, zeros)
        record.update(chosen=chosen, valid=valid, refit=bool(refit))
    model = LogisticRegressionRanker(**{**params, **chosen})
    model._store_solution(theta[:-1], theta[-1], n_iter, checked["max_iter"], stacklevel=3)
    model.n_features_in_ = len(names)
    model.feature_names_ = list(names)
    client.cancel(designs)
    return model, record, n_rows
