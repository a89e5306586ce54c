"""Campaign history as data: the loader's error contract, outcomes from the transactions,
the uplift training frame, and the synthetic campaigns with known uplift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from training import synthetic
from training.campaigns import (
    campaign_outcomes,
    feature_columns,
    load_campaigns,
    uplift_training_frame,
)
from training.data import DataError

HEADER = "customer_id,campaign_id,sent_at,treatment,cost\n"
ACCEPTED = (
    "Accepted dates: YYYY-MM-DD (ISO 8601, with an optional time and UTC offset; also "
    "YYYY/MM/DD) or YYYYMMDD; DD/MM/YYYY and MM/DD/YYYY are not read (05/01/2024 could be "
    "either): convert them to YYYY-MM-DD."
)
FIX = " Fix them or rerun with --bad-rows quarantine."


def _file(tmp_path: Path, text: str, name: str = "campaigns.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------------


def test_load_campaigns_parses_and_normalises(tmp_path):
    path = _file(
        tmp_path,
        "Customer ID,Campaign-ID,Sent At,Treatment,Cost,Channel,segment\n"
        "007,spring,2025-03-01,voucher,2.50,email,a\n"
        " C2 ,spring,20250301,CONTROL,,email,\n"
        "C3,autumn,2025-09-01T10:00:00+02:00,discount,1,sms,b\n",
    )
    frame, report = load_campaigns(path)
    assert list(frame.columns) == [
        "customer_id",
        "campaign_id",
        "sent_at",
        "treatment",
        "cost",
        "channel",
        "segment",
    ]
    assert frame["customer_id"].tolist() == ["C3", "007", "C2"]  # by campaign, time, customer
    assert frame["treatment"].tolist() == ["discount", "voucher", "control"]
    assert frame["sent_at"].tolist() == [
        pd.Timestamp("2025-09-01 08:00:00"),  # converted to UTC
        pd.Timestamp("2025-03-01"),
        pd.Timestamp("2025-03-01"),
    ]
    assert frame["sent_at"].dtype == "datetime64[ns]"
    assert frame["cost"].tolist()[:2] == [1.0, 2.5] and np.isnan(frame["cost"].iloc[2])
    assert (report.n_read, report.n_kept, report.n_quarantined) == (3, 3, 0)


def test_bad_date_names_file_column_line_and_value(tmp_path):
    path = _file(tmp_path, HEADER + "C1,A,2025-01-05,o1,1.5\nC2,A,05/01/2025,control,0\n")
    with pytest.raises(DataError) as err:
        load_campaigns(path)
    assert str(err.value) == (
        f"{path}, column 'sent_at': 1 row has an unparsable date (line 3): '05/01/2025'. "
        + ACCEPTED
        + FIX
    )
    assert (err.value.column, err.value.rows, err.value.n_rows) == ("sent_at", [3], 1)


def test_negative_cost_is_an_error(tmp_path):
    path = _file(
        tmp_path,
        HEADER + "C1,A,2025-01-05,o1,-1.5\nC2,A,2025-01-05,control,0\nC3,A,2025-01-05,o1,-2\n",
    )
    with pytest.raises(DataError) as err:
        load_campaigns(path)
    assert str(err.value) == (
        f"{path}, column 'cost': 2 rows have negative costs (lines 2, 4): '-1.5', '-2'." + FIX
    )
    assert (err.value.column, err.value.rows, err.value.n_rows) == ("cost", [2, 4], 2)


def test_non_numeric_cost_is_an_error(tmp_path):
    path = _file(tmp_path, HEADER + "C1,A,2025-01-05,o1,$3\nC2,A,2025-01-05,control,0\n")
    with pytest.raises(DataError, match=r"column 'cost': 1 row has a non-numeric cost"):
        load_campaigns(path)


def test_missing_column_lists_what_was_found(tmp_path):
    path = _file(tmp_path, "customer_id,campaign,sent_at,treatment\nC1,A,2025-01-05,o1\n")
    with pytest.raises(DataError) as err:
        load_campaigns(path)
    assert str(err.value) == (
        f"{path}: missing required column 'campaign_id' "
        "(found: customer_id, campaign, sent_at, treatment)"
    )
    assert err.value.column == "campaign_id"


def test_duplicated_assignment_is_named(tmp_path):
    path = _file(
        tmp_path,
        HEADER
        + "C1,A,2025-01-05,o1,1\nC2,A,2025-01-05,control,0\nC1,A,2025-01-05,o2,1\n"
        + "C1,B,2025-02-05,o2,1\n",
    )
    with pytest.raises(DataError) as err:
        load_campaigns(path)
    assert str(err.value) == (
        f"{path}, column 'customer_id': 1 row repeats a (customer_id, campaign_id) pair seen "
        "on an earlier row (line 4): 'C1 in campaign A'." + FIX
    )
    assert (err.value.rows, err.value.n_rows) == ([4], 1)


def test_missing_treatment_and_first_reason_wins(tmp_path):
    path = _file(
        tmp_path,
        HEADER + "C1,A,2025-01-05,,1\nC2,A,2025-01-05,control,0\nC3,A,2025-01-05,o1,-1\n",
    )
    with pytest.raises(DataError) as err:
        load_campaigns(path)
    assert str(err.value) == (
        f"{path}, column 'treatment': 1 row has a missing treatment (line 2): ''; also "
        "negative_cost (1 row)." + FIX
    )


def test_quarantine_keeps_the_good_rows_and_gives_reasons(tmp_path):
    path = _file(
        tmp_path,
        HEADER
        + "C1,A,2025-01-05,o1,1\nC2,A,yesterday,control,0\nC1,A,2025-01-05,o2,1\n"
        + "C4,A,2025-01-05,control,0\n",
    )
    frame, report = load_campaigns(path, bad_rows="quarantine", quarantine_dir=tmp_path / "q")
    assert frame["customer_id"].tolist() == ["C1", "C4"]
    assert frame["treatment"].tolist() == ["o1", "control"]
    assert (report.n_read, report.n_kept, report.n_quarantined) == (4, 2, 2)
    assert report.reasons == {"bad_sent_at": 1, "duplicate_assignment": 1}
    quarantined = pd.read_csv(report.quarantine_path, dtype=str)
    assert quarantined["_line"].tolist() == ["3", "4"]
    assert quarantined["_reason"].tolist() == ["bad_sent_at", "duplicate_assignment"]
    assert quarantined["sent_at"].tolist() == ["yesterday", "2025-01-05"]  # values as written


def test_no_usable_row_says_what_to_check(tmp_path):
    path = _file(tmp_path, HEADER + "C1,A,yesterday,o1,1\n")
    with pytest.raises(DataError, match=r"check that column 'sent_at' holds the send dates"):
        load_campaigns(path)


def test_parquet_campaigns(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "campaign_id": ["A", "A"],
            "sent_at": pd.to_datetime(["2025-01-05", "2025-01-05"]),
            "treatment": ["o1", "Control"],
            "cost": [2.0, -1.0],
        }
    ).to_parquet(path)
    with pytest.raises(DataError) as err:
        load_campaigns(path)
    assert str(err.value) == (
        f"{path}, column 'cost': 1 row has a negative cost (row 2): '-1.0'." + FIX
    )


# --------------------------------------------------------------------------------------------
# Outcomes and the training frame
# --------------------------------------------------------------------------------------------


def _hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    campaigns = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "campaign_id": "spring",
            "sent_at": pd.to_datetime(["2025-03-01 09:00"] * 4),
            "treatment": ["o1", "control", "o1", "control"],
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "B", "C"],
            "timestamp": pd.to_datetime(
                [
                    "2025-01-10 00:00",  # before: a feature, not an outcome
                    "2025-03-01 09:00",  # at the send instant: before the contact
                    "2025-03-01 12:00",  # in the window
                    "2025-04-30 09:00",  # 60 days after: the window's last instant
                    "2025-02-28 10:00",
                    "2025-04-30 09:00:01",  # just after the window
                    "2025-03-20 00:00",
                ],
                format="ISO8601",
            ),
            "amount": [50.0, 10.0, 20.0, 30.0, 40.0, 70.0, 100.0],
            "cost": [30.0, 5.0, 15.0, np.nan, 20.0, 50.0, 60.0],
        }
    )
    return campaigns, transactions


def test_outcomes_on_a_hand_made_example():
    campaigns, transactions = _hand_made()
    out = campaign_outcomes(campaigns, transactions, window_days=60)
    assert out["retained"].tolist() == [True, False, True, False]
    assert out["n_purchases"].tolist() == [2, 0, 1, 0]
    assert out["spend"].tolist() == [50.0, 0.0, 100.0, 0.0]
    # costed rows: amount - cost; rate over all costed purchases: (300 - 180) / 290 ... no:
    # revenue with cost 50+10+20+40+70+100 = 290, cost 180 -> rate 110/290 for the 30 uncosted
    rate = (290.0 - 180.0) / 290.0
    assert out.attrs["margin_rate"] == pytest.approx(rate)
    assert out["margin"].tolist() == [round(5.0 + 30.0 * rate, 2), 0.0, 40.0, 0.0]
    assert list(out.columns[:4]) == ["customer_id", "campaign_id", "sent_at", "treatment"]


def test_outcomes_without_costs_use_the_given_rate():
    campaigns, transactions = _hand_made()
    out = campaign_outcomes(
        campaigns, transactions.drop(columns="cost"), window_days=30, margin_rate=0.25
    )
    assert out["retained"].tolist() == [True, False, True, False]  # A's 04-30 is outside 30 d
    assert out["spend"].tolist() == [20.0, 0.0, 100.0, 0.0]
    assert out["margin"].tolist() == [5.0, 0.0, 25.0, 0.0]
    no_rate = campaign_outcomes(campaigns, transactions.drop(columns="cost"))
    assert no_rate["margin"].tolist() == no_rate["spend"].tolist()  # rate 1: margin is spend


def test_training_frame_features_as_of_the_day_before():
    campaigns, transactions = _hand_made()
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "age": [30, 40, 50, 60]})
    frame = uplift_training_frame(campaigns, transactions, customers)
    features = feature_columns(frame)
    assert "days_since_last" in features and "age" in features
    assert "retained" not in features and "treatment" not in features
    by_id = frame.set_index("customer_id")
    # A: the purchase at the send instant (same day) is not a feature; last purchase 01-10,
    # 49 days before 02-28 (the day before the send day)
    assert by_id.loc["A", "days_since_last"] == 49.0
    assert by_id.loc["A", "frequency"] == 0.0
    assert by_id.loc["B", "days_since_last"] == 0.0
    assert np.isnan(by_id.loc["C", "days_since_last"])  # no purchase before: missing
    assert np.isnan(by_id.loc["D", "age"])  # no purchase at all: no features
    assert by_id.loc["B", "age"] == 40
    assert by_id["retained"].tolist() == [True, False, True, False]


# --------------------------------------------------------------------------------------------
# Synthetic campaigns
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth():
    transactions, customers, truth = synthetic.generate(20_000, seed=11)
    out = synthetic.generate_campaigns(transactions, customers, truth, seed=11)
    return transactions, customers, truth, out


def test_generate_is_unchanged_and_inputs_untouched(synth):
    transactions, customers, truth, _ = synth
    again = synthetic.generate(20_000, seed=11)
    pd.testing.assert_frame_equal(transactions, again[0])
    pd.testing.assert_frame_equal(customers, again[1])
    pd.testing.assert_frame_equal(truth.customers, again[2].customers)
    assert truth.campaigns is None and "campaigns" not in truth.params


def test_campaign_design(synth):
    _, _, _, (transactions, campaigns, truth) = synth
    assert list(campaigns.columns) == [
        "customer_id",
        "campaign_id",
        "sent_at",
        "treatment",
        "cost",
        "channel",
    ]
    assert campaigns.groupby(["customer_id"]).size().max() == 1  # disjoint campaigns
    assert sorted(campaigns["campaign_id"].unique()) == ["camp1", "camp2"]
    share = campaigns["treatment"].value_counts(normalize=True)
    assert 0.23 < share["control"] < 0.27
    costs = campaigns.groupby("treatment")["cost"].first().to_dict()
    assert costs == {"control": 0.0, "discount": 10.0, "reminder": 2.0, "voucher": 25.0}
    per_offer = truth.campaigns
    assert set(per_offer["kind"]) == set(synthetic.CUSTOMER_KINDS)
    mean_uplift = per_offer.groupby("offer")["true_uplift"].mean()
    # a costlier offer is stronger on average
    assert mean_uplift["reminder"] < mean_uplift["discount"] < mean_uplift["voucher"]
    by_kind = per_offer.groupby("kind")["true_uplift"]
    assert by_kind.min()["persuadable"] > 0
    assert by_kind.max()["sleeping_dog"] <= 0 and by_kind.mean()["sleeping_dog"] < -0.1
    assert by_kind.max()["sure_thing"] == 0 and by_kind.max()["lost_cause"] == 0
    # the changed transactions are still a valid transactions table
    assert transactions["timestamp"].max() <= pd.Timestamp("2025-12-31 23:59:59")
    assert (truth.customers["churn_reason"] == "contact").sum() > 0


def test_truth_recovered_by_the_randomised_comparison(synth):
    """Treated minus control, per offer over both campaigns: the interval covers the mean
    true effect, for retention and for spend. Six comparisons share one control group, so
    the intervals are family-wise 95 % (Bonferroni: z = 2.64, each 99.17 %)."""
    _, _, _, (transactions, campaigns, truth) = synth
    outcomes = campaign_outcomes(campaigns, transactions, window_days=60)
    control = outcomes[outcomes["treatment"] == "control"]
    per_offer = truth.campaigns
    for offer in synthetic.OFFERS:
        treated = outcomes[outcomes["treatment"] == offer]
        for outcome, true_column in (
            ("retained", "true_uplift"),
            ("spend", "true_incremental_spend"),
        ):
            a = treated[outcome].astype(float)
            b = control[outcome].astype(float)
            estimate = a.mean() - b.mean()
            half = 2.64 * np.sqrt(a.var() / len(a) + b.var() / len(b))
            true = per_offer.loc[per_offer["offer"] == offer, true_column].mean()
            assert abs(estimate - true) < half, (offer, outcome, estimate, true, half)


def test_effects_per_campaign_match_the_per_customer_truth(synth):
    _, _, _, (_, _, truth) = synth
    effects = synthetic.campaign_effects(truth).set_index(["campaign_id", "offer"])
    means = truth.campaigns.groupby(["campaign_id", "offer"])["true_uplift"].mean()
    np.testing.assert_allclose(effects["true_uplift"].sort_index(), means.sort_index())
    assert effects["n_customers"].sum() == len(truth.campaigns)


def test_saved_and_lost_customers_show_in_the_transactions(synth):
    before, _, _, (after, campaigns, truth) = synth
    window = pd.Timedelta(days=60)
    base = campaign_outcomes(campaigns, before, window_days=60)
    now = campaign_outcomes(campaigns, after, window_days=60)
    treated = (campaigns["treatment"] != "control").to_numpy()
    kinds = (
        truth.campaigns.drop_duplicates(["customer_id", "campaign_id"])
        .set_index("customer_id")["kind"]
        .reindex(campaigns["customer_id"])
        .to_numpy()
    )
    changed = base["retained"].to_numpy() != now["retained"].to_numpy()
    assert not changed[~treated].any()  # control rows are never touched
    assert set(kinds[changed]) == {"persuadable", "sleeping_dog"}
    saved = changed & now["retained"].to_numpy()
    assert (kinds[saved] == "persuadable").all() and saved.sum() > 100
    lost = changed & ~now["retained"].to_numpy()
    assert (kinds[lost] == "sleeping_dog").all() and lost.sum() > 50
    # a lost customer buys nothing after the send time
    lost_ids = set(campaigns["customer_id"][lost])
    sent = campaigns.set_index("customer_id")["sent_at"]
    mine = after[after["customer_id"].isin(lost_ids)]
    assert (mine["timestamp"] <= mine["customer_id"].map(sent)).all()
    assert window == pd.Timedelta(days=truth.params["campaigns"]["window_days"])


def test_write_and_read_campaigns(synth, tmp_path):
    _, customers, _, (transactions, campaigns, truth) = synth
    paths = synthetic.write(
        tmp_path, transactions, customers, truth, fmt="csv", campaigns=campaigns
    )
    assert {"campaigns", "campaign_truth"} <= set(paths)
    loaded, report = load_campaigns(paths["campaigns"])
    assert report.n_quarantined == 0 and len(loaded) == len(campaigns)
    _, _, truth2 = synthetic.read(tmp_path)
    assert truth2.campaigns is not None
    assert len(truth2.campaigns) == len(truth.campaigns)
    assert truth2.params["campaigns"]["effects"] == truth.params["campaigns"]["effects"]
    back = synthetic.read_campaigns(tmp_path)
    assert back is not None and back["sent_at"].dtype == "datetime64[ns]"


def test_cvm_generate_writes_campaigns(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "generate",
            "--customers",
            "300",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "campaigns.csv").exists() and (tmp_path / "campaign_truth.csv").exists()
    frame, _ = load_campaigns(tmp_path / "campaigns.csv")
    assert len(frame) == 300


def test_a_planned_campaign_replaces_the_last_one():
    """``planned``: the earlier campaign and the history before the send day are drawn exactly
    as without it; the listed customers get their offer or (a random fifth) control; a
    customer whom the first campaign drove away has no chance of a purchase without contact
    in the planned one (so no contact can drive them away again)."""
    tx, customers, truth = synthetic.generate(3000, seed=3)
    tx_r, camps_r, truth_r = synthetic.generate_campaigns(tx, customers, truth, seed=3)
    first = camps_r[camps_r["campaign_id"] == "camp1"]
    lost = truth_r.customers[truth_r.customers["churn_reason"] == "contact"]["customer_id"]
    lost = lost[lost.isin(first["customer_id"])]  # driven away by camp1
    listed = pd.concat(
        [lost.iloc[:20], first["customer_id"].iloc[:200], camps_r["customer_id"].iloc[-300:]]
    ).drop_duplicates()
    offers = np.resize(["reminder", "discount", "voucher"], len(listed))
    plan = pd.DataFrame({"customer_id": listed.to_numpy(), "offer": offers})
    tx_p, camps_p, truth_p = synthetic.generate_campaigns(
        tx, customers, truth, seed=3, planned=plan, planned_id="spring"
    )
    earlier = camps_p[camps_p["campaign_id"] == "camp1"].reset_index(drop=True)
    assert earlier["planned_offer"].isna().all()  # a randomised campaign: nothing planned
    pd.testing.assert_frame_equal(
        earlier.drop(columns="planned_offer"), first.reset_index(drop=True)
    )
    send = pd.Timestamp(camps_r.loc[camps_r["campaign_id"] == "camp2", "sent_at"].iloc[0])
    pd.testing.assert_frame_equal(
        tx_p[tx_p["timestamp"] < send].reset_index(drop=True),
        tx_r[tx_r["timestamp"] < send].reset_index(drop=True),
    )
    sent = camps_p[camps_p["campaign_id"] == "spring"].merge(plan, on="customer_id")
    assert len(sent) == len(plan)
    control = sent["treatment"] == "control"
    assert 0.12 < control.mean() < 0.28
    assert (sent.loc[~control, "treatment"] == sent.loc[~control, "offer"]).all()
    assert (sent["planned_offer"] == sent["offer"]).all()  # the held-out ones too
    rows = truth_p.campaigns[truth_p.campaigns["campaign_id"] == "spring"]
    driven = rows[rows["customer_id"].isin(lost.iloc[:20])]
    assert len(driven) == 60 and (driven["p_control"] == 0).all()
    assert (driven.loc[driven["kind"] == "sleeping_dog", "true_uplift"] == 0).all()
    assert "spring" in truth_p.params["campaigns"]["campaigns"]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (pd.DataFrame({"customer_id": ["nobody"], "offer": ["reminder"]}), "not in the data"),
        (pd.DataFrame({"customer_id": ["C00001"], "offer": ["gift"]}), "unknown offer 'gift'"),
        (pd.DataFrame({"customer_id": ["C00001", "C00001"], "offer": ["reminder"] * 2}), "twice"),
        (pd.DataFrame({"customer_id": ["C00001"]}), "missing: offer"),
    ],
)
def test_a_bad_plan_is_named(plan, message):
    tx, customers, truth = synthetic.generate(300, seed=3)
    plan = plan.replace({"C00001": customers["customer_id"].iloc[0]})
    with pytest.raises(InvalidInputError, match=message):
        synthetic.generate_campaigns(tx, customers, truth, seed=3, planned=plan)


def test_planned_offers_are_read_and_checked(tmp_path):
    """``planned_offer``: a control row names the offer it was held out from; an offer's row
    leaves it blank or repeats its own offer; anything else is an error naming the rows."""
    header = "customer_id,campaign_id,sent_at,treatment,cost,planned_offer\n"
    good = (
        "C1,P,2025-01-05,o1,1,o1\nC2,P,2025-01-05,Control,0,o1\n"
        "C3,P,2025-01-05,o2,1,\nC4,P,2025-01-05,control,0,o2\n"
    )
    frame, _ = load_campaigns(_file(tmp_path, header + good))
    assert list(frame["treatment"]) == ["o1", "control", "o2", "control"]
    assert list(frame["planned_offer"]) == ["o1", "o1", "o2", "o2"]
    bad = good + "C5,P,2025-01-05,o1,1,o2\nC6,P,2025-01-05,control,0,CONTROL\n"
    with pytest.raises(DataError) as err:
        load_campaigns(_file(tmp_path, header + bad))
    message = str(err.value)
    assert "column 'planned_offer': 2 rows have a planned offer that is neither blank" in message
    assert "lines 6-7" in message or "lines 6, 7" in message, message
    frame, report = load_campaigns(
        _file(tmp_path, header + bad), bad_rows="quarantine", quarantine_dir=tmp_path / "q"
    )
    assert report.reasons == {"bad_planned_offer": 2} and len(frame) == 4


def test_an_identical_row_again_is_set_aside_not_an_error(tmp_path):
    """An export run twice repeats rows: the repeats go to the quarantine file (as repeated
    purchases do), the first of each is kept; a conflicting repeat is still an error."""
    rows = "C1,A,2025-01-05,o1,1\nC2,A,2025-01-05,control,0\n"
    path = _file(tmp_path, HEADER + rows + rows + "C3,A,2025-01-05,o1,1\n")
    frame, report = load_campaigns(path, quarantine_dir=tmp_path / "q")
    assert list(frame["customer_id"]) == ["C1", "C2", "C3"]
    assert (report.n_read, report.n_kept, report.n_quarantined) == (5, 3, 2)
    assert report.reasons == {"duplicate": 2}
    quarantined = pd.read_csv(report.quarantine_path)
    assert list(quarantined["_line"]) == [4, 5]
    assert set(quarantined["_reason"]) == {"duplicate"}


def test_a_send_with_its_control_group_drawn_is_simulated_as_drawn():
    """``planned`` as ``cvm plan --campaign-out`` writes it (treatment, planned_offer): its
    control rows stay control, its offers are sent, each row keeps its planned offer."""
    tx, customers, truth = synthetic.generate(2000, seed=4)
    _, camps, _ = synthetic.generate_campaigns(tx, customers, truth, seed=4)
    ids = camps.loc[camps["campaign_id"] == "camp2", "customer_id"].iloc[:300].to_numpy()
    planned_offer = np.resize(["reminder", "discount", "voucher"], len(ids))
    treatment = np.where(np.arange(len(ids)) % 5 == 0, "Control", planned_offer)
    send = pd.DataFrame(
        {"customer_id": ids, "treatment": treatment, "planned_offer": planned_offer}
    )
    _, camps_p, _ = synthetic.generate_campaigns(
        tx, customers, truth, seed=4, planned=send, planned_id="winter"
    )
    sent = camps_p[camps_p["campaign_id"] == "winter"].merge(
        send, on="customer_id", suffixes=("", "_asked")
    )
    assert len(sent) == len(send)
    assert ((sent["treatment"] == "control") == (sent["treatment_asked"] == "Control")).all()
    assert (sent["planned_offer"] == sent["planned_offer_asked"]).all()
    wrong = send.assign(treatment=np.where(treatment == "Control", "Control", "voucher"))
    with pytest.raises(InvalidInputError, match="other than their planned offer"):
        synthetic.generate_campaigns(tx, customers, truth, seed=4, planned=wrong)
