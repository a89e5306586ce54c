"""Marketing's view: one customer's labels in one call, and the label catalogue."""

from models.customer_view import segment_frame
from models.features import summarize
from tests.conftest import purchases

SCHEMES = {"rfm", "value_matrix", "behaviour", "lifecycle", "nine_grid"}


def test_one_customer_labels_in_one_call(client, demo_data, trained_store):
    transactions, _, _ = demo_data
    cid = transactions["customer_id"].iloc[0]
    payload = {
        "as_of": "2025-12-31",
        "customers": [
            {
                "customer_id": cid,
                "transactions": purchases(transactions, cid, "cost"),
            }
        ],
    }
    response = client.post("/v1/segments", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "1"
    (customer,) = body["customers"]
    assert set(customer["segments"]) == SCHEMES
    for entry in customer["segments"].values():
        assert entry["name"] and entry["description"] and entry["actions"]
    models = trained_store["result"].models
    expected = segment_frame(models, summarize(transactions, "2025-12-31").loc[[cid]]).iloc[0]
    assert customer["segments"]["rfm"]["label"] == expected["rfm_segment"]
    assert customer["segments"]["value_matrix"]["label"] == expected["value_type"]
    assert customer["segments"]["nine_grid"]["label"] == expected["nine_grid"]
    assert customer["segments"]["behaviour"]["label"] == str(expected["cluster"])


def test_catalogue_lists_every_scheme_with_training_sizes(client, trained_store):
    body = client.get("/v1/segments").json()
    schemes = body["schemes"]
    assert set(schemes) >= SCHEMES
    model = trained_store["result"].models["segmentation"]
    n_customers = trained_store["result"].metrics["n_customers"]
    for scheme in SCHEMES:
        sizes = {str(entry["label"]): entry["size"] for entry in schemes[scheme]["labels"]}
        assert sum(sizes.values()) == n_customers, scheme
        assert sizes == {str(k): v for k, v in model.segment_sizes_[scheme].items()}
    gold = next(e for e in schemes["value_matrix"]["labels"] if e["label"] == "gold")
    assert gold["name"] == "Gold" and gold["actions"]
