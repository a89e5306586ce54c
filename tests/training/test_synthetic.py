"""Tests of the synthetic data generator: its frames must carry the truth they claim.

Statistical tolerances are several standard errors wide for the stated sample sizes, so the
tests are stable for the fixed seeds yet fail when a mechanism is wrong.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln

from models.exceptions import InvalidInputError
from training.synthetic import SyntheticTruth, generate, read, write

R, ALPHA, A, B = 0.75, 8.0, 0.8, 2.5
P, Q, GAMMA = 6.0, 4.0, 60.0
HORIZON_WEEKS = 365 / 7
AS_OF_END = pd.Timestamp("2026-01-01")  # end of the default as_of day 2025-12-31

TRANSACTION_COLUMNS = ["customer_id", "timestamp", "amount", "cost", "channel"]
CUSTOMER_COLUMNS = [
    "customer_id",
    "signup_date",
    "region",
    "age",
    "acquisition_channel",
    "complaints",
    "complaint_resolved",
    "resolution_days",
    "complaint_date",
    "resolution_date",
]
REQUIRED_TRUTH_COLUMNS = {
    "customer_id",
    "lambda_",
    "p_",
    "nu_",
    "true_mean_spend",
    "n_channels",
    "channel_multiplier",
    "margin",
    "margin_class",
    "value_type",
    "death_time",
    "alive_at_as_of",
    "repeat_purchases_observed",
    "future_purchases",
    "future_revenue",
    "problem",
    "complaint_handling",
    "churn_reason",
    "stopped_after_problem",
}


@pytest.fixture(scope="module")
def small():
    return generate(5_000, seed=3)


@pytest.fixture(scope="module")
def big():
    return generate(50_000, seed=11)


@pytest.fixture(scope="module")
def huge():
    return generate(100_000, seed=12)


def bgnbd_pmf(x: int, t: np.ndarray) -> np.ndarray:
    """BG/NBD P(X(t) = x) (Fader, Hardie & Lee 2005, eq. 8), t in weeks."""
    log_a = R * np.log(ALPHA / (ALPHA + t))
    log_b = np.log(t / (ALPHA + t))
    first = np.exp(
        betaln(A, B + x) - betaln(A, B) + gammaln(R + x) - gammaln(R) - gammaln(x + 1)
        + log_a + x * log_b
    )  # fmt: skip
    if x == 0:
        return first
    partial = sum(
        np.exp(gammaln(R + j) - gammaln(R) - gammaln(j + 1) + j * log_b) for j in range(x)
    )
    return first + np.exp(betaln(A + 1, B + x - 1) - betaln(A, B)) * (1 - np.exp(log_a) * partial)


def no_problem(truth: SyntheticTruth) -> pd.DataFrame:
    return truth.customers[~truth.customers["problem"]]


# --- determinism and shape -------------------------------------------------------------


def test_same_seed_identical_different_seed_different():
    tx1, cu1, tr1 = generate(2_000, seed=5)
    tx2, cu2, tr2 = generate(2_000, seed=5)
    pd.testing.assert_frame_equal(tx1, tx2)
    pd.testing.assert_frame_equal(cu1, cu2)
    pd.testing.assert_frame_equal(tr1.customers, tr2.customers)
    assert tr1.params == tr2.params

    tx3, cu3, tr3 = generate(2_000, seed=6)
    assert len(tx3) != len(tx1) or not np.array_equal(tx3["amount"], tx1["amount"])
    assert not np.array_equal(cu3["age"], cu1["age"])
    assert not np.allclose(tr3.customers["lambda_"], tr1.customers["lambda_"])


def test_columns_dtypes_and_ids(small, huge):
    tx, cu, truth = small
    assert list(tx.columns) == TRANSACTION_COLUMNS
    assert list(cu.columns) == CUSTOMER_COLUMNS
    assert set(truth.customers.columns) >= REQUIRED_TRUTH_COLUMNS
    assert tx["timestamp"].dtype == "datetime64[ns]"
    assert cu["signup_date"].dtype == "datetime64[ns]"
    assert truth.customers["death_time"].dtype == "datetime64[ns]"
    assert truth.customers["alive_at_as_of"].dtype == bool
    assert truth.customers["stopped_after_problem"].dtype == bool

    assert cu["customer_id"].is_unique
    assert len(cu) == len(truth.customers) == 5_000
    assert (cu["customer_id"] == truth.customers["customer_id"]).all()
    assert cu["customer_id"].iloc[0] == "C0001" and cu["customer_id"].iloc[-1] == "C5000"
    ids = huge[1]["customer_id"]
    assert ids.iloc[0] == "C000001" and ids.iloc[-1] == "C100000"
    assert ids.is_unique

    assert set(cu["region"]) == {"north", "south", "east", "west"}
    assert set(cu["acquisition_channel"]) == {"search", "social", "referral", "store"}
    assert cu["age"].between(18, 80).all() and {18, 80} <= set(cu["age"])

    params = truth.params
    assert params["bgnbd"] == {"r": R, "alpha": ALPHA, "a": A, "b": B}
    assert params["gamma_gamma"] == {"p": P, "q": Q, "gamma": GAMMA}
    assert params["time_unit_days"] == 7 and params["as_of"] == "2025-12-31"
    assert params["horizon_days"] == 365
    assert params["channel_multipliers"] == {"1": 1.0, "2": 1.85, "3": 2.4}
    assert params["value_type_repeat_threshold"] == 2
    json.dumps(params)  # serialisable


def test_transactions_sorted_observed_and_in_cents(small):
    tx, cu, truth = small
    assert tx["timestamp"].max() < AS_OF_END
    order = tx.sort_values(["customer_id", "timestamp"], kind="stable").index
    assert (order == tx.index).all()
    assert (tx["amount"] > 0).all()
    assert np.allclose(tx["amount"] * 100, np.round(tx["amount"] * 100))
    assert np.allclose(tx["cost"] * 100, np.round(tx["cost"] * 100))
    assert set(tx["channel"]) == {"store", "online", "catalog"}
    # timestamps carry a time of day, in whole seconds
    assert (tx["timestamp"].dt.normalize() != tx["timestamp"]).mean() > 0.99
    assert (tx["timestamp"].dt.nanosecond == 0).all()
    assert (tx["timestamp"].dt.microsecond == 0).all()

    first = tx.groupby("customer_id", sort=False)["timestamp"].min()
    tc = truth.customers.set_index("customer_id")
    assert (first.reindex(tc.index) == tc["birth_time"]).all()
    assert (cu.set_index("customer_id")["signup_date"] == tc["birth_time"].dt.normalize()).all()
    # births uniform over [as_of - 730 d, as_of - 365 d]
    lo, hi = pd.Timestamp("2024-01-01"), pd.Timestamp("2025-01-01")
    assert tc["birth_time"].between(lo, hi).all()
    assert tc["birth_time"].lt(pd.Timestamp("2024-07-01")).mean() == pytest.approx(0.5, abs=0.03)


def test_observed_repeat_count_matches_transactions(big):
    tx, _, truth = big
    counts = tx.groupby("customer_id").size()
    tc = truth.customers.set_index("customer_id")
    assert (counts.reindex(tc.index, fill_value=0) - 1 == tc["repeat_purchases_observed"]).all()
    assert (tc["T_weeks"] > 52).all() and (tc["T_weeks"] < 105).all()


# --- BG/NBD ------------------------------------------------------------------------------


def test_latent_parameters_follow_their_priors(big):
    tc = big[2].customers
    assert tc["lambda_"].mean() == pytest.approx(R / ALPHA, rel=0.05)
    assert tc["lambda_"].var() == pytest.approx(R / ALPHA**2, rel=0.10)
    assert tc["p_"].mean() == pytest.approx(A / (A + B), abs=0.005)
    assert tc["nu_"].mean() == pytest.approx(Q / GAMMA, rel=0.02)


def test_zero_one_two_repeat_shares_match_bgnbd(big):
    """Without a problem, P(X(T)=x) must equal the BG/NBD pmf averaged over each T."""
    npb = no_problem(big[2])
    t = npb["T_weeks"].to_numpy()
    x = npb["repeat_purchases_observed"].to_numpy()
    # P(X(t)=0) = (alpha / (alpha + t))^r because dropout happens only after a repeat
    assert np.allclose(bgnbd_pmf(0, t), (ALPHA / (ALPHA + t)) ** R)
    for k in range(4):
        assert (x == k).mean() == pytest.approx(bgnbd_pmf(k, t).mean(), abs=0.01), k


def test_repeats_and_alive_match_latent_parameters(big):
    """Given lambda, p: E[X(t)] = (1 - exp(-lambda p t)) / p and P(alive at t) = exp(-lambda p t)."""
    npb = no_problem(big[2])
    lam, p, t = npb["lambda_"], npb["p_"], npb["T_weeks"]
    expected_x = (1 - np.exp(-lam * p * t)) / p
    assert npb["repeat_purchases_observed"].mean() == pytest.approx(expected_x.mean(), rel=0.03)
    assert npb["alive_at_as_of"].mean() == pytest.approx(np.exp(-lam * p * t).mean(), abs=0.01)
    t_end = t + HORIZON_WEEKS
    total = npb["repeat_purchases_observed"] + npb["future_purchases"]
    assert total.mean() == pytest.approx(((1 - np.exp(-lam * p * t_end)) / p).mean(), rel=0.03)
    # dropout only after a repeat purchase, never before the first repeat
    zero = npb["repeat_purchases_observed"] == 0
    assert npb.loc[zero, "alive_at_as_of"].all()


def test_death_and_churn_reason_consistent(big):
    tc = big[2].customers
    dead = tc["death_time"].notna()
    assert (dead == (tc["churn_reason"] != "none")).all()
    assert (tc["alive_at_as_of"] == (~dead | (tc["death_time"] >= AS_OF_END))).all()
    assert (tc.loc[~tc["alive_at_as_of"], "future_purchases"] == 0).all()
    assert ((tc["future_purchases"] == 0) == (tc["future_revenue"] == 0)).all()
    assert (tc.loc[dead, "death_time"] > tc.loc[dead, "birth_time"]).all()
    dropout = tc["churn_reason"] == "dropout"
    assert (tc.loc[dropout, "death_time"] == tc.loc[dropout, "dropout_time"]).all()
    assert {"none", "dropout", "complaint"} == set(tc["churn_reason"])


# --- spend and channels ------------------------------------------------------------------


def test_single_channel_spend_is_gamma_gamma(big):
    tx, _, truth = big
    tc = truth.customers
    single = tc[tc["n_channels"] == 1]
    assert (single["channel_multiplier"] == 1.0).all()
    assert single["true_mean_spend"].mean() == pytest.approx(P * GAMMA / (Q - 1), rel=0.03)
    assert np.allclose(tc["true_mean_spend"], P / tc["nu_"] * tc["channel_multiplier"])
    # each transaction: amount / multiplier ~ Gamma(p, rate nu), so amount * nu / (p m) has mean 1
    d = tx.merge(tc[["customer_id", "nu_", "channel_multiplier"]], on="customer_id")
    scaled = d["amount"] * d["nu_"] / (P * d["channel_multiplier"])
    assert scaled.mean() == pytest.approx(1.0, abs=0.01)
    assert scaled.var() == pytest.approx(1 / P, rel=0.05)


def test_channel_counts_and_usage(big):
    tx, _, truth = big
    tc = truth.customers
    shares = tc["n_channels"].value_counts(normalize=True)
    for k, share in {1: 0.55, 2: 0.35, 3: 0.10}.items():
        assert shares[k] == pytest.approx(share, abs=0.01)
    mult = tc["n_channels"].map({1: 1.0, 2: 1.85, 3: 2.4})
    assert (tc["channel_multiplier"] == mult).all()
    used = tx.groupby("customer_id")["channel"].agg(lambda s: set(s))
    allowed = tc.set_index("customer_id")["channels"].str.split("|").map(set)
    assert all(u <= allowed[c] for c, u in used.items())
    single = tc.loc[tc["n_channels"] == 1, "channels"].value_counts(normalize=True)
    assert single.to_dict() == pytest.approx(
        {"store": 1 / 3, "online": 1 / 3, "catalog": 1 / 3}, abs=0.02
    )


def test_multichannel_customers_spend_more_per_year(big):
    tx, _, truth = big
    tc = truth.customers.set_index("customer_id")
    frame = pd.DataFrame(
        {
            "revenue": tx.groupby("customer_id")["amount"].sum(),
            "years": tc["T_weeks"] * 7 / 365.25,
            "n_channels": tc["n_channels"],
        }
    )
    totals = frame.groupby("n_channels")[["revenue", "years"]].sum()
    per_year = totals["revenue"] / totals["years"]
    assert per_year[1] < per_year[2] < per_year[3]
    assert per_year[2] / per_year[1] == pytest.approx(1.85, rel=0.15)
    assert per_year[3] / per_year[1] == pytest.approx(2.4, rel=0.15)


# --- margin, cost, value types -----------------------------------------------------------


def test_cost_and_margins(big):
    tx, _, truth = big
    tc = truth.customers
    high = tc["margin_class"] == "high"
    assert high.mean() == pytest.approx(0.5, abs=0.01)
    assert tc.loc[high, "margin"].between(0.25, 0.45).all()
    assert tc.loc[~high, "margin"].between(-0.05, 0.05).all()
    d = tx.merge(tc[["customer_id", "margin", "margin_class"]], on="customer_id")
    high_tx = d["margin_class"] == "high"
    assert (d.loc[high_tx, "cost"] < d.loc[high_tx, "amount"]).all()
    assert (d.loc[~high_tx, "cost"] > d.loc[~high_tx, "amount"]).any()  # loss-making sales
    big_tx = d["amount"] > 20
    ratio = d.loc[big_tx, "cost"] / (d.loc[big_tx, "amount"] * (1 - d.loc[big_tx, "margin"]))
    assert ratio.mean() == pytest.approx(1.0, abs=0.001)
    assert ratio.std() == pytest.approx(0.02, rel=0.05)


def test_value_types_follow_rule_and_all_occur(small):
    tc = small[2].customers
    shares = tc["value_type"].value_counts(normalize=True)
    assert set(shares.index) == {"Gold", "Meteor", "Stream", "Burden"}
    assert (shares >= 0.05).all()
    freq_high = tc["repeat_purchases_observed"] >= 2
    high = tc["margin_class"] == "high"
    expected = np.select(
        [freq_high & high, ~freq_high & high, freq_high & ~high],
        ["Gold", "Meteor", "Stream"],
        "Burden",
    )
    assert (tc["value_type"].to_numpy() == expected).all()


# --- problems and complaints ------------------------------------------------------------


REPURCHASE = {
    "did_not_complain": 0.09,
    "unresolved": 0.19,
    "resolved": 0.54,
    "resolved_quickly": 0.82,
}


def test_complaint_repurchase_rates(huge):
    tc = huge[2].customers
    assert tc["problem"].mean() == pytest.approx(0.20, abs=0.006)
    problems = tc[tc["problem"]]
    assert (tc.loc[~tc["problem"], "complaint_handling"] == "none").all()
    assert not tc.loc[~tc["problem"], "stopped_after_problem"].any()
    handling_share = problems["complaint_handling"].value_counts(normalize=True)
    for name, share in zip(REPURCHASE, (0.40, 0.20, 0.25, 0.15), strict=True):
        assert handling_share[name] == pytest.approx(share, abs=0.015)
    kept = 1 - problems.groupby("complaint_handling")["stopped_after_problem"].mean()
    counts = problems["complaint_handling"].value_counts()
    assert list(kept[list(REPURCHASE)].sort_values().index) == list(REPURCHASE)
    for name, rate in REPURCHASE.items():
        se = np.sqrt(rate * (1 - rate) / counts[name])
        assert kept[name] == pytest.approx(rate, abs=4 * se), name


def test_stopped_customers_buy_nothing_after_problem(huge):
    tx, _, truth = huge
    tc = truth.customers
    problems = tc[tc["problem"]]
    end_active = (
        problems["dropout_time"]
        .where(problems["dropout_time"] < AS_OF_END, AS_OF_END)
        .fillna(AS_OF_END)
    )
    assert (problems["problem_time"] >= problems["birth_time"]).all()
    assert (problems["problem_time"] <= end_active).all()

    d = tx.merge(problems[["customer_id", "problem_time", "complaint_handling"]], on="customer_id")
    later = d[d["timestamp"] > d["problem_time"]]["customer_id"].unique()
    stopped = problems[problems["stopped_after_problem"]]
    assert not set(later) & set(stopped["customer_id"])
    assert (stopped["future_purchases"] == 0).all()
    assert (stopped["churn_reason"] == "complaint").all()
    assert (stopped["death_time"] == stopped["problem_time"]).all()
    assert not stopped["alive_at_as_of"].any()
    # realised behaviour: buying again after the problem is ordered like the repurchase rates
    bought_again = problems["customer_id"].isin(later) | (problems["future_purchases"] > 0)
    share = bought_again.groupby(problems["complaint_handling"]).mean()[list(REPURCHASE)]
    assert share.is_monotonic_increasing and share.iloc[0] < share.iloc[-1] / 3


def test_customer_complaint_columns(huge):
    _, cu, truth = huge
    tc = truth.customers
    handling = tc["complaint_handling"]
    complained = handling.isin(["unresolved", "resolved", "resolved_quickly"])
    assert (cu["complaints"] == complained.astype(int)).all()
    assert cu.loc[~complained, "complaint_resolved"].isna().all()
    assert (cu.loc[handling == "unresolved", "complaint_resolved"] == 0).all()
    resolved = handling.isin(["resolved", "resolved_quickly"])
    assert (cu.loc[resolved, "complaint_resolved"] == 1).all()
    assert cu.loc[~resolved, "resolution_days"].isna().all()
    quick = cu.loc[handling == "resolved_quickly", "resolution_days"]
    slow = cu.loc[handling == "resolved", "resolution_days"]
    assert set(quick) == {1.0, 2.0, 3.0}
    assert slow.between(10, 40).all() and slow.min() == 10 and slow.max() == 40


def test_problem_rate_zero_disables_complaints():
    _, cu, truth = generate(3_000, seed=2, problem_rate=0.0)
    assert not truth.customers["problem"].any()
    assert (cu["complaints"] == 0).all()
    assert "complaint" not in set(truth.customers["churn_reason"])


# --- arguments and files -----------------------------------------------------------------


def test_custom_window_and_parameters():
    tx, cu, truth = generate(
        4_000, seed=9, as_of="2024-06-30", horizon_days=90, acquisition_days=30, history_days=60
    )
    assert tx["timestamp"].max() < pd.Timestamp("2024-07-01")
    births = truth.customers["birth_time"]
    assert births.min() >= pd.Timestamp("2024-05-01") and births.max() <= pd.Timestamp("2024-05-31")
    assert truth.params["as_of"] == "2024-06-30" and truth.params["horizon_days"] == 90
    assert truth.customers["death_time"].max() < pd.Timestamp("2024-09-29")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_customers": 0},
        {"r": 0.0},
        {"alpha": -1.0},
        {"acquisition_days": 800},
        {"horizon_days": -1},
        {"problem_rate": 1.5},
        {"as_of": "not a date"},
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(InvalidInputError):
        generate(**{"n_customers": 10, **kwargs})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_round_trips(tmp_path, small, fmt):
    tx, cu, truth = small
    paths = write(tmp_path / "out", tx, cu, truth, fmt=fmt)
    assert set(paths) == {"transactions", "customers", "truth", "truth_customers"}
    assert paths["transactions"].name == f"transactions.{fmt}"
    assert all(path.exists() for path in paths.values())
    assert json.loads(paths["truth"].read_text()) == truth.params

    tx2, cu2, truth2 = read(tmp_path / "out", fmt=fmt)
    pd.testing.assert_frame_equal(tx2, tx, check_dtype=False)
    pd.testing.assert_frame_equal(cu2, cu, check_dtype=False)
    pd.testing.assert_frame_equal(truth2.customers, truth.customers, check_dtype=False)
    assert truth2.params == truth.params


def test_write_rejects_unknown_format(tmp_path, small):
    with pytest.raises(InvalidInputError):
        write(tmp_path, *small, fmt="xlsx")
