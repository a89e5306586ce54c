"""The model store refuses versions saved in another model format, with a clear message."""

import pytest

import models
from service.config import Settings
from service.model_store import ModelStore, check_model_format


def test_format_check_accepts_this_format_and_untagged_versions():
    check_model_format("cvm-churn", 3, {"cvm_model_format": str(models.MODEL_FORMAT)})
    check_model_format("cvm-churn", 3, {})  # registered before the tag existed
    check_model_format("cvm-churn", 3, None)


def test_format_check_names_the_version_and_what_to_do():
    with pytest.raises(ValueError) as error:
        check_model_format("cvm-churn", 3, {"cvm_model_format": "999"})
    message = str(error.value)
    assert "cvm-churn v3 was saved in model format 999" in message
    assert f"this service reads format {models.MODEL_FORMAT}" in message
    assert "cvm retrain" in message


def test_trained_versions_carry_the_format_and_a_newer_service_refuses_them(
    trained_store, monkeypatch
):
    import mlflow

    client = mlflow.MlflowClient(trained_store["uri"], trained_store["uri"])
    for name in ("cvm-segmentation", "cvm-churn", "cvm-clv"):
        version = client.get_model_version_by_alias(name, "champion")
        assert version.tags["cvm_model_format"] == str(models.MODEL_FORMAT)

    saved, reads = models.MODEL_FORMAT, models.MODEL_FORMAT + 1
    monkeypatch.setattr(models, "MODEL_FORMAT", reads)
    store = ModelStore(Settings(mlflow_tracking_uri=trained_store["uri"], reload_interval=0))
    store.refresh()
    assert store.models == {}
    assert set(store.errors) == {"segmentation", "churn", "clv"}
    assert (
        f"saved in model format {saved}; this service reads format {reads}" in store.errors["churn"]
    )
