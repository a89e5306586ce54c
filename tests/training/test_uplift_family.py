"""The uplift family (cvm-uplift): trained only with campaign history, registered beside the
three others with its metrics, plots, model card and signature; gated on the Qini
coefficient; promoted and rolled back like the others."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.exceptions import InvalidInputError
from models.families import FAMILIES, REQUIRED_FAMILIES
from models.uplift import uplift_matrix
from training import compare, registry
from training.cli import _promotable, main
from training.gate import comparison_table, gate
from training.train_uplift import holdout_metrics, train_uplift

OFFERS = ["discount", "reminder", "voucher"]


def client_of(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_families_required_and_optional():
    assert REQUIRED_FAMILIES == ("segmentation", "churn", "clv")
    assert FAMILIES["uplift"].registered_name == "cvm-uplift"
    assert not FAMILIES["uplift"].required
    assert FAMILIES["uplift"].gate[0].metric == "uplift_qini"


def test_training_without_campaigns_registers_the_three_families(trained_store):
    assert set(trained_store["registered"]) == {"segmentation", "churn", "clv"}
    result = trained_store["result"]
    assert not [k for k in result.metrics if k.startswith("uplift_")]
    assert "uplift" not in result.models and result.uplift_holdout is None


def test_training_with_campaigns_registers_four_families(uplift_store):
    registered = uplift_store["registered"]
    assert set(registered) == {"segmentation", "churn", "clv", "uplift"}
    assert registered["uplift"]["name"] == "cvm-uplift"
    assert registered["uplift"]["alias"] == "champion"
    # one run for the four
    assert len({info["run_id"] for info in registered.values()}) == 1


def test_uplift_metrics_in_the_run_and_qini_positive(uplift_store):
    run = client_of(uplift_store["uri"]).get_run(uplift_store["registered"]["uplift"]["run_id"])
    metrics, params = run.data.metrics, run.data.params
    assert metrics["uplift_qini"] > 0.0
    assert metrics["uplift_qini"] == pytest.approx(
        np.mean([metrics[f"uplift_qini_{o}"] for o in OFFERS])
    )
    assert 0.0 < metrics["uplift_auuc"] < 1.0
    # the voucher (the strongest offer) ranks better than chance on the holdout
    assert metrics["uplift_qini_voucher"] > 0.0
    assert metrics["uplift_n_contacts"] == 2500.0  # every customer contacted once
    assert metrics["uplift_n_campaigns"] == 2.0
    # the holdout is the latest campaign (camp2, half the contacts)
    assert params["uplift_holdout"] == "latest campaigns: camp2"
    assert metrics["uplift_n_holdout"] == pytest.approx(1250.0, abs=1.0)
    assert params["uplift_learner"] in {"t", "x", "dr"}
    assert params["uplift_offers"] == ",".join(OFFERS)
    # randomised arms: the observed retention uplift is positive for every offer
    assert all(metrics[f"uplift_observed_{o}"] > 0.0 for o in OFFERS)
    # the spend model beside it: the observed spend uplift is positive for the voucher, and
    # the spend model ranks the holdout better than chance on average
    assert params["uplift_outcome"] == "retained, spend"
    assert metrics["uplift_observed_spend_voucher"] > 0.0
    assert metrics["uplift_spend_qini"] == pytest.approx(
        np.mean([metrics[f"uplift_spend_qini_{o}"] for o in OFFERS])
    )
    assert metrics["uplift_spend_qini"] > 0.0


def test_qini_plots_and_model_card_in_the_run(uplift_store):
    uri = uplift_store["uri"]
    run_id = uplift_store["registered"]["uplift"]["run_id"]
    client = client_of(uri)
    plots = {f.path for f in client.list_artifacts(run_id, "plots")}
    assert {f"plots/uplift_qini_{o}.png" for o in OFFERS} <= plots
    cards = {f.path for f in client.list_artifacts(run_id, "model_cards")}
    assert "model_cards/uplift_model_card.md" in cards
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="model_cards/uplift_model_card.md", tracking_uri=uri
    )
    card = Path(local).read_text(encoding="utf-8")
    assert "# Model card: cvm-uplift" in card
    assert "## Uplift" in card and "offers: discount, reminder, voucher" in card
    assert "randomised" in card  # the limit: needs randomised history
    assert "| uplift_qini |" in card
    # the other cards do not list the uplift settings
    churn_card = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="model_cards/churn_model_card.md", tracking_uri=uri
    )
    assert "uplift_learner" not in Path(churn_card).read_text(encoding="utf-8")


# the pyfunc's columns: retention uplift per offer, then spend uplift per offer
COLUMNS = [f"uplift_{o}" for o in OFFERS] + [f"spend_uplift_{o}" for o in OFFERS]


def test_uplift_pyfunc_takes_the_churn_columns_and_scores_each_offer(uplift_store, monkeypatch):
    uri = uplift_store["uri"]
    result = uplift_store["result"]
    # MLflow's process-wide URI (which also sets MLFLOW_TRACKING_URI) on the uplift store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        uplift_info = mlflow.models.get_model_info("models:/cvm-uplift/1")
        churn_info = mlflow.models.get_model_info("models:/cvm-churn/1")
        assert uplift_info.signature.inputs.to_dict() == churn_info.signature.inputs.to_dict()
        outputs = [c["name"] for c in uplift_info.signature.outputs.to_dict()]
        assert outputs == COLUMNS
        model = mlflow.pyfunc.load_model("models:/cvm-uplift/1")
        # integers as doubles, as the signature has them (training/tracking.py)
        example = result.input_examples["churn"].astype({"age": "float64"})
        scored = model.predict(example.reset_index(drop=True))
    finally:
        from training import tracking

        monkeypatch.undo()
        tracking.setup()
    expected = result.models["uplift"].predict_frame(example)
    np.testing.assert_allclose(scored.to_numpy(), expected.to_numpy())
    assert list(scored.columns) == COLUMNS


def test_uplift_matrix_for_the_planner(uplift_store):
    result = uplift_store["result"]
    model = result.models["uplift"]
    features = result.input_examples["churn"]
    effects, offers = uplift_matrix(model, features)
    assert offers == OFFERS and effects.shape == (len(features), 3)
    np.testing.assert_allclose(effects, model.predict(features))
    two, chosen = uplift_matrix(model, features, ["voucher", "reminder"])
    assert chosen == ["voucher", "reminder"]
    np.testing.assert_allclose(two, effects[:, [2, 1]])
    with pytest.raises(InvalidInputError, match="no estimate for offer.*gift.*trained on"):
        uplift_matrix(model, features, ["gift"])
    with pytest.raises(InvalidInputError, match="1 missing: frequency"):
        uplift_matrix(model, features.drop(columns=["frequency"]))


def test_cvm_plan_uses_the_uplift_model(uplift_store, uplift_data, monkeypatch):
    """With a ``cvm-uplift`` champion, the plan takes each offer's uplift from it (not the
    assumed save rates): every contact's expected save is the lower confidence bound of the
    model's estimate for that customer and offer (estimate − 1 × its bootstrap standard
    error), and customers the model expects to drive away get no offer."""
    from models.planner import Offer
    from training import plan, tracking

    transactions, customers, _, _ = uplift_data
    result = uplift_store["result"]
    offers = [Offer(id=o, cost=c) for o, c in (("reminder", 2.0), ("discount", 10.0))]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uplift_store["uri"])
    monkeypatch.setenv("CVM_HOME", uplift_store["home"])
    try:
        tracking.setup()
        planned = plan.plan_campaign(
            result.models,
            transactions,
            customers,
            pd.Timestamp("2025-12-31"),
            offers,
            2000.0,
            progress=lambda m: None,
        )
    finally:
        monkeypatch.undo()
        tracking.setup()
    assert planned.summary["assumption_based"] is False
    contacts = planned.contacts.set_index("customer_id")
    assert 0 < len(contacts) < customers["customer_id"].nunique()
    from training.invocation_features import invocation_features

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uplift_store["uri"])
    try:
        tracking.setup()
        features = invocation_features(
            "churn", transactions, customers, pd.Timestamp("2025-12-31"), with_ids=True,
            say=lambda m: None,
        )  # fmt: skip
    finally:
        monkeypatch.undo()
        tracking.setup()
    features = features.set_index(features["customer_id"].astype(str))
    effects, _ = uplift_matrix(result.models["uplift"], features, ["reminder", "discount"], z=1)
    assert planned.summary["uplift_lower_bound"] == {"z": 1.0, "replicas": 8}
    column = {"reminder": 0, "discount": 1}
    rows = features.index.get_indexer(contacts.index)
    expected = effects[rows, [column[o] for o in contacts["offer"]]]
    np.testing.assert_allclose(contacts["expected_save"].to_numpy(), expected, rtol=1e-12)
    assert (expected > 0).all()


def test_retrain_comparison_measures_uplift_on_the_holdout(uplift_store):
    result = uplift_store["result"]
    holdout = compare.Holdout(
        churn_X=pd.DataFrame(),
        churn_y=pd.Series(dtype=float),
        calibration=pd.DataFrame(),
        actual=np.array([]),
        clv_holdout_days=0,
        summary=pd.DataFrame(),
        uplift=result.uplift_holdout,
    )
    twin = compare.holdout_metrics({"uplift": result.holdout_models["uplift"]}, holdout=holdout)
    # the twin (fitted without the holdout) measures as the run logged it
    assert twin["uplift_qini"] == pytest.approx(result.metrics["uplift_qini"])
    assert twin == holdout_metrics(result.holdout_models["uplift"], result.uplift_holdout)
    # without an uplift holdout (no campaigns in the retraining data), nothing is measured
    holdout.uplift = None
    assert compare.holdout_metrics({"uplift": result.models["uplift"]}, holdout=holdout) == {}


def test_gate_on_the_qini_coefficient():
    assert gate("uplift", {"uplift_qini": 0.020}, {"uplift_qini": 0.016}).passed
    refused = gate("uplift", {"uplift_qini": 0.020}, {"uplift_qini": 0.014})
    assert (
        not refused.passed and "uplift_qini 0.0140 vs champion 0.0200 (WORSE" in refused.reasons[0]
    )
    # tighter on request
    assert not gate(
        "uplift", {"uplift_qini": 0.02}, {"uplift_qini": 0.019}, {"uplift_qini": 0}
    ).passed
    three = {"churn": {"churn_roc_auc": 0.8}, "uplift": {}}
    assert "uplift" not in comparison_table(three, three)
    four = {"churn": {"churn_roc_auc": 0.8}, "uplift": {"uplift_qini": 0.02}}
    assert "uplift_qini" in comparison_table(four, four)


def test_train_uplift_refuses_history_without_control(uplift_data):
    transactions, customers, campaigns, _ = uplift_data
    treated = campaigns[campaigns["treatment"] != "control"]
    with pytest.raises(InvalidInputError, match="control group.*found 0"):
        train_uplift(treated, transactions, customers, pd.Timestamp("2025-12-31"), step=print)
    with pytest.raises(InvalidInputError, match="complete 60-day response window by 2025-07-01"):
        train_uplift(campaigns, transactions, customers, pd.Timestamp("2025-07-01"), step=print)


@pytest.fixture
def uplift_registry(uplift_store, tmp_path, monkeypatch):
    """A copy of the uplift store whose cvm-uplift has a second version as @challenger."""
    from tests.service.store_copies import copy_store
    from training import tracking

    uri = copy_store(uplift_store["uri"], tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CVM_HOME", str(tmp_path))
    # a new version of a logged model is resolved in MLflow's process-wide store
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = client_of(uri)
    first = client.get_model_version("cvm-uplift", "1")
    second = client.create_model_version("cvm-uplift", first.source, run_id=first.run_id)
    for key, value in first.tags.items():
        if not key.startswith("event."):
            client.set_model_version_tag("cvm-uplift", second.version, key, value)
    client.set_registered_model_alias("cvm-uplift", "challenger", second.version)
    yield client
    monkeypatch.undo()
    tracking.setup()


def compared(champion: float, challenger: float) -> None:
    registry.save_comparison(
        "uplift", "2", "1", {"uplift_qini": champion}, {"uplift_qini": challenger}
    )


def test_promote_and_rollback_uplift(uplift_registry, capsys):
    client = uplift_registry
    compared(0.02, 0.001)
    assert main(["promote", "--family", "uplift"]) == 3  # refused by the gate
    assert "uplift_qini 0.0010 vs champion 0.0200 (WORSE" in capsys.readouterr().err
    assert str(client.get_model_version_by_alias("cvm-uplift", "champion").version) == "1"

    compared(0.02, 0.018)
    assert main(["promote", "--family", "uplift", "--reason", "better offers"]) == 0
    assert "uplift: promoted v2 to @champion (was v1)" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cvm-uplift", "champion").version) == "2"
    promoted = client.get_model_version("cvm-uplift", "2").tags
    assert promoted["previous_champion"] == "1"
    assert any(k.endswith(".promoted") and "better offers" in v for k, v in promoted.items())
    assert json.loads(promoted["gate_metrics"])["challenger"] == {"uplift_qini": 0.018}

    assert main(["rollback", "--family", "uplift", "--reason", "test"]) == 0
    assert "uplift: @champion moved back from v2 to v1" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cvm-uplift", "champion").version) == "1"


def test_promote_without_family_includes_uplift_only_with_a_challenger(uplift_registry):
    assert _promotable() == ["segmentation", "churn", "clv", "uplift"]
    uplift_registry.delete_registered_model_alias("cvm-uplift", "challenger")
    assert _promotable() == ["segmentation", "churn", "clv"]


def test_promote_without_family_on_a_registry_without_uplift(trained_store):
    assert _promotable() == ["segmentation", "churn", "clv"]
