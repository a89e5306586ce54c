"""Promotion gate, rollback and alias history on a registry of its own."""

import time
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training import registry, tracking
from training.cli import main


class Doubled(mlflow.pyfunc.PythonModel):
    """A tiny pyfunc that loads and scores: promotion loads the challenger first."""

    def predict(self, context, model_input, params=None):
        return model_input * 2


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A pyfunc model folder that loads, and a copy whose pickled model is garbage."""
    folder = tmp_path_factory.mktemp("pyfunc")
    good, broken = folder / "good", folder / "broken"
    example = pd.DataFrame({"x": [1.0, 2.0]})
    for path in (good, broken):
        mlflow.pyfunc.save_model(
            path, python_model=Doubled(), input_example=example, pip_requirements=[]
        )
    (broken / "python_model.pkl").write_bytes(b"not a model")
    return {"good": good, "broken": broken}


@pytest.fixture
def store(tmp_path, monkeypatch, model_dirs):
    uri = f"sqlite:///{tmp_path}/registry.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CVM_HOME", str(tmp_path))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("cvm-churn")
    for _ in range(2):
        client.create_model_version("cvm-churn", source=str(model_dirs["good"]))
    client.set_registered_model_alias("cvm-churn", "champion", "1")
    client.set_registered_model_alias("cvm-churn", "challenger", "2")
    yield client
    monkeypatch.undo()
    tracking.setup()  # MLflow's process-wide URI back to the session's store


def compare(champion_auc, challenger_auc, champion_version="1"):
    registry.save_comparison(
        "churn",
        "2",
        champion_version,
        {"churn_roc_auc": champion_auc, "churn_brier": 0.10},
        {"churn_roc_auc": challenger_auc, "churn_brier": 0.10},
    )


def test_worse_challenger_is_refused_and_the_metric_named(store, capsys):
    compare(0.82, 0.70)
    assert main(["promote", "--family", "churn"]) == 3
    captured = capsys.readouterr()
    assert "refused" in captured.out
    assert "churn_roc_auc 0.7000 vs champion 0.8200 (WORSE" in captured.err
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "1"


def test_tolerance_is_configurable(store):
    compare(0.82, 0.815)
    assert main(["promote", "--family", "churn", "--tolerance", "churn_roc_auc=0"]) == 3
    assert main(["promote", "--family", "churn", "--tolerance", "churn_roc_auc=0.01"]) == 0


def test_relative_tolerance_and_a_clear_error_for_a_bad_one(store, capsys):
    compare(0.82, 0.815)  # 0.005 worse: 0.61 % of the champion's AUC
    assert main(["promote", "--family", "churn", "--tolerance", "churn_roc_auc=0.5%"]) == 3
    assert "needs ≥ champion - 0.5% = 0.0041)" in capsys.readouterr().err
    assert main(["promote", "--family", "churn", "--tolerance", "churn_roc_auc=abc"]) == 2
    assert "METRIC=PERCENT% (of the champion's value" in capsys.readouterr().err
    assert main(["promote", "--family", "churn", "--tolerance", "churn_roc_auc=1%"]) == 0


def _second_family(store, as_of):
    """cvm-clv v1 as champion, trained on data as of ``as_of``."""
    store.create_registered_model("cvm-clv")
    store.create_model_version(
        "cvm-clv", source=str(store.get_model_version("cvm-churn", "1").source)
    )
    store.set_registered_model_alias("cvm-clv", "champion", "1")
    store.set_model_version_tag("cvm-clv", "1", "as_of", as_of)


def test_exit_codes_tell_all_some_and_none_apart(store, capsys):
    """0: every family promoted; 4: some; 3: none (cron can tell a partial promotion)."""
    _second_family(store, "2025-12-31")
    store.set_model_version_tag("cvm-churn", "2", "as_of", "2026-03-31")
    compare(0.80, 0.60)
    assert main(["promote"]) == 3  # churn refused, clv and segmentation have no challenger
    capsys.readouterr()
    compare(0.80, 0.83)
    assert main(["promote"]) == 4  # churn promoted, the others not
    captured = capsys.readouterr()
    assert "churn: promoted v2 to @champion (was v1)" in captured.out
    assert "promoted 1 of 3 families (exit 4)" in captured.err
    assert (
        "warning: the served champions were trained on data as of different dates "
        "(churn 2026-03-31, clv 2025-12-31)" in captured.err
    )
    store.set_registered_model_alias("cvm-churn", "challenger", "1")
    registry.save_comparison(
        "churn",
        "1",
        "2",
        {"churn_roc_auc": 0.8, "churn_brier": 0.1},
        {"churn_roc_auc": 0.8, "churn_brier": 0.1},
    )
    assert main(["promote", "--family", "churn"]) == 0  # every family asked for
    assert "different dates" not in capsys.readouterr().err  # churn v1 has no as_of tag


def test_promotion_records_history_and_rollback_restores(store):
    compare(0.80, 0.83)
    assert main(["promote", "--family", "churn", "--reason", "better AUC"]) == 0
    new = store.get_model_version("cvm-churn", "2")
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "2"
    assert new.tags["previous_champion"] == "1"
    events = [v for k, v in new.tags.items() if k.startswith("event.") and k.endswith(".promoted")]
    assert len(events) == 1 and "better AUC" in events[0] and " by " in events[0]
    with pytest.raises(MlflowException):  # the challenger alias is gone
        store.get_model_version_by_alias("cvm-churn", "challenger")
    assert main(["rollback", "--family", "churn", "--reason", "incident 42"]) == 0
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "1"
    rolled = store.get_model_version("cvm-churn", "2").tags
    assert any(k.endswith(".rolled_back") and "incident 42" in v for k, v in rolled.items())


def test_stale_comparison_and_forced_promotion(store, capsys):
    compare(0.80, 0.60, champion_version="7")
    assert main(["promote", "--family", "churn"]) == 3
    assert "compared with v7" in capsys.readouterr().err
    compare(0.80, 0.60)
    assert main(["promote", "--family", "churn", "--force"]) == 0
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "2"


def test_rollback_without_history_is_a_clear_error(store, capsys):
    assert main(["rollback", "--family", "churn"]) == 2
    assert "no previous champion" in capsys.readouterr().err


def _history(client, version):
    """The version's alias events, oldest first: [(action, text)]."""
    tags = client.get_model_version("cvm-churn", version).tags
    return [(k.rsplit(".", 1)[1], v) for k, v in sorted(tags.items()) if k.startswith("event.")]


def _at_the_start_of_a_second():
    time.sleep(1.02 - time.time() % 1)
    return int(time.time())


def test_events_in_the_same_second_are_all_kept(store):
    second = _at_the_start_of_a_second()
    registry.record_event(store, "cvm-churn", "1", "promoted", "first try", actor="ops")
    registry.record_event(store, "cvm-churn", "1", "promoted", "second try", actor="ops")
    assert int(time.time()) == second  # both within one second: keys by the second collided
    assert _history(store, "1") == [
        ("promoted", "promoted by ops: first try"),
        ("promoted", "promoted by ops: second try"),
    ]


def test_promote_rollback_promote_rollback_keeps_every_event(store):
    compare(0.80, 0.83)
    _at_the_start_of_a_second()
    started = time.perf_counter()
    for round_ in ("1", "2"):
        registry.promote("churn", reason=f"round {round_}", actor="ops")
        registry.rollback("churn", reason=f"undo {round_}", actor="ops")
        store.set_registered_model_alias("cvm-churn", "challenger", "2")
        compare(0.80, 0.83)
    elapsed = time.perf_counter() - started
    assert _history(store, "2") == [
        ("promoted", "promoted by ops: round 1"),
        ("rolled_back", "rolled_back by ops: undo 1"),
        ("promoted", "promoted by ops: round 2"),
        ("rolled_back", "rolled_back by ops: undo 2"),
    ], elapsed
    assert _history(store, "1") == [
        ("retired", "retired by ops: replaced by v2"),
        ("restored", "restored by ops: undo 1"),
        ("retired", "retired by ops: replaced by v2"),
        ("restored", "restored by ops: undo 2"),
    ], elapsed


def test_a_challenger_that_does_not_load_is_not_promoted_even_forced(store, model_dirs, capsys):
    compare(0.80, 0.83)
    store.create_model_version("cvm-churn", source=str(model_dirs["broken"]))
    store.set_registered_model_alias("cvm-churn", "challenger", "3")
    assert main(["promote", "--family", "churn", "--force"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(
        "churn: cvm-churn v3 was not promoted: it does not load and score its input example ("
    )
    assert "). @champion stays on v1. Register a version that loads (cvm retrain)" in err
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "1"
    assert "previous_champion" not in store.get_model_version("cvm-churn", "3").tags

    assert main(["promote", "--family", "churn", "--force", "--skip-load-check"]) == 0
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "3"


def test_promotion_scores_the_input_example_of_the_challenger(store, monkeypatch, capsys):
    compare(0.80, 0.83)
    monkeypatch.setattr(Doubled, "predict", lambda self, context, model_input, params=None: [1])
    assert main(["promote", "--family", "churn"]) == 3
    assert "(ValueError: it scored 1 rows for 2)" in capsys.readouterr().err
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "1"


def test_a_challenger_saved_in_a_format_this_code_cannot_read_is_not_promoted(store, capsys):
    """It would load here (the pyfunc unpickles), then be refused by every service replica."""
    compare(0.80, 0.83)
    store.set_model_version_tag("cvm-churn", "2", "cvm_model_format", "999")
    assert main(["promote", "--family", "churn"]) == 3
    err = capsys.readouterr().err
    assert "cvm-churn v2 was not promoted: it does not load and score its input example " in err
    assert "(ValueError: cvm-churn v2 was saved in model format 999; this service reads" in err
    assert str(store.get_model_version_by_alias("cvm-churn", "champion").version) == "1"
