"""Churn training: time-based holdout, logistic baseline, calibration check, final refit.

The model is fitted on the window before the latest one (features up to as_of − 2h, labels
in the following h), evaluated on the latest window (features up to as_of − h, labels up to
as_of) beside a logistic regression trained on the same split, then refitted on the latest
window for serving. Contractual customer tables (``churned``/``churn_date``) give the labels
instead of the purchase gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from models.churn import ChurnClassifier
from models.churn.evaluation import LogisticBaseline, calibration_check, compare_models, gains_data
from models.churn.features import DERIVED_FEATURES, SUMMARY_FEATURES, churn_features
from models.churn.labels import contract_split, time_split
from models.churn.leakage import LEAK_AUC, leakage_suspects
from models.clv.contractual import has_contract_data
from models.exceptions import InvalidInputError
from training import evaluate


@dataclass
class ChurnTraining:
    model: ChurnClassifier
    holdout_model: ChurnClassifier
    features_now: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _split(transactions, customers, as_of, horizon_days):
    if customers is not None and has_contract_data(customers):
        X, y = contract_split(
            customers, as_of, horizon_days=horizon_days, transactions=transactions
        )
        return X, y, "contract"
    X, y = time_split(
        transactions, as_of, horizon_days=horizon_days, customers=customers, features="churn"
    )
    return X, y, "purchase_gap"


def _leak_check(
    windows: list[tuple[pd.DataFrame, pd.Series]], drop: bool, step: Callable[[str], None]
) -> list[str]:
    """Customer-table columns that alone separate the churners of either window (see
    :mod:`models.churn.leakage`). A snapshot column written when customers leave matches the
    latest window's labels best. Behaviour features come from dated purchases and are not
    checked."""
    behaviour = {*SUMMARY_FEATURES, *DERIVED_FEATURES, "main_channel"}
    found = []
    for X, y in windows:
        candidates = [c for c in X.columns if c not in behaviour]
        found.append(leakage_suspects(X, y.to_numpy(), candidates))
    suspects = (
        pd.concat(found)
        .sort_values("auc", ascending=False, kind="stable")
        .drop_duplicates("column")
        .reset_index(drop=True)
    )
    for row in suspects.itertuples(index=False):
        action = "left out of the churn model" if drop else "KEPT (--keep-leaky)"
        step(
            f"WARNING churn: the customer-table column '{row.column}' alone separates churners "
            f"from the rest (out-of-fold AUC {row.auc:.3f} >= {LEAK_AUC}): probably written "
            f"after the cutoff (a leak); {action}"
        )
    return list(suspects["column"])


def _with_columns(X: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``X`` for a model fitted on ``columns``: as it is when it has them all (the encoders
    read columns by name), else reindexed (absent columns missing) -- no copy of a large
    table when nothing is absent."""
    if set(columns) <= set(X.columns):
        return X
    return X.reindex(columns=columns)


def train_churn(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: pd.Timestamp,
    *,
    horizon_days: int,
    options: dict[str, Any],
    step: Callable[[str], None] = print,
    drop_leaky: bool = True,
    summary: pd.DataFrame | None = None,
    evaluation: tuple[pd.DataFrame, pd.DataFrame | None] | None = None,
) -> ChurnTraining:
    """Fit on the window before the latest, evaluate on the latest, refit on the latest (see
    the module docstring). ``summary``: :func:`models.features.summarize` of ``transactions``
    as of ``as_of`` when already computed (it gives today's features).

    ``evaluation``: (transactions, customers) of other customers (a separate sample, as the
    Spark engine draws it) on whose latest window the holdout metrics are measured; by
    default the latest window of the same customers."""
    h = pd.Timedelta(days=horizon_days)
    X_train, y_train, label_source = _split(transactions, customers, as_of - h, horizon_days)
    X_test, y_test, _ = _split(transactions, customers, as_of, horizon_days)
    X_eval, y_eval = X_test, y_test
    if evaluation is not None:
        X_eval, y_eval, _ = _split(evaluation[0], evaluation[1], as_of, horizon_days)
    leaky = _leak_check([(X_train, y_train), (X_test, y_test)], drop_leaky, step)
    if drop_leaky and leaky:
        X_train = X_train.drop(columns=leaky)
        X_test = X_test.drop(columns=[c for c in leaky if c in X_test.columns])
        X_eval = X_eval.drop(columns=[c for c in leaky if c in X_eval.columns])
    for label, y in (("training", y_train), ("evaluation", y_eval)):
        if y.nunique() < 2 or len(y) < 20:
            raise InvalidInputError(
                f"churn {label} window ({horizon_days} days) has {len(y)} customers and "
                f"{y.nunique()} class(es): need at least 20 customers and both churners and "
                "repeat buyers; use an earlier --as-of, more history or a shorter horizon"
            )
    holdout_model = ChurnClassifier(**options).fit(X_train, y_train)
    baseline = LogisticBaseline().fit(X_train, y_train)
    # Memory: the training window is let go once both are fitted, the latest one once the
    # final model is (a million customers' features are a few hundred MB each).
    del X_train, y_train
    columns = list(holdout_model.feature_names_in_)
    score_test = holdout_model.raw_score(holdout_model.encode(_with_columns(X_eval, columns)))
    p_test = holdout_model.probability_from_score(score_test)
    p_baseline = baseline.predict_proba(_with_columns(X_eval, list(baseline.feature_names_in_)))[
        :, 1
    ]
    del X_eval
    metrics = evaluate.churn_metrics(y_eval.to_numpy(), p_test)
    baseline_metrics = evaluate.churn_metrics(y_eval.to_numpy(), p_baseline)
    metrics.update(
        {k.replace("churn_", "churn_baseline_", 1): v for k, v in baseline_metrics.items()}
    )
    check = calibration_check(holdout_model, None, y_eval, score=score_test)
    metrics["churn_brier_uncalibrated"] = float(check["brier_uncalibrated"])
    metrics["churn_calibration_ok"] = float(bool(check["calibration_ok"]))
    step(
        f"churn holdout: ROC AUC {metrics.get('churn_roc_auc', float('nan')):.3f} "
        f"(logistic baseline {metrics.get('churn_baseline_roc_auc', float('nan')):.3f}), "
        f"Brier {metrics['churn_brier']:.3f} (uncalibrated {metrics['churn_brier_uncalibrated']:.3f}), "
        f"base rate {metrics['churn_base_rate']:.2f}"
    )
    model = ChurnClassifier(**options).fit(X_test, y_test)
    n_latest = len(y_test)
    if label_source == "contract":
        features_now = X_test.reindex(columns=list(model.feature_names_in_))
        del X_test
    else:
        del X_test
        features_now = churn_features(transactions, as_of, customers, summary=summary)
    step(f"churn: final model refitted on the latest window ({n_latest:,} customers)")
    return ChurnTraining(
        model=model,
        holdout_model=holdout_model,
        features_now=features_now,
        metrics=metrics,
        params={
            "churn_label_source": label_source,
            "churn_n_iter": int(getattr(model, "n_iter_", 0)),
            "churn_calibration": str(getattr(model, "calibration_method_", "")),
            # the model checked on the holdout (fitted before it) may have chosen otherwise
            "churn_holdout_calibration": str(getattr(holdout_model, "calibration_method_", "")),
            "churn_linear_weight": float(getattr(model, "linear_weight_", 0.0)),
            "churn_leaky_columns": ",".join(leaky) or "none",
            "churn_leaky_dropped": bool(drop_leaky and leaky),
        },
        figures={
            "churn_calibration_gains.png": evaluate.plot_calibration_and_gains(
                y_eval.to_numpy(), p_test
            )
        },
        tables={
            "churn_model_comparison": compare_models(
                y_eval.to_numpy(), {"gradient_boosting": p_test, "logistic_baseline": p_baseline}
            ),
            "churn_gains": gains_data(y_eval.to_numpy(), p_test),
        },
    )
