"""Marketing's view: one customer's labels in one call, and the label catalogue."""

import pytest

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


def _customers(transactions, n=40):
    ids = transactions["customer_id"].drop_duplicates().iloc[:n]
    return [{"customer_id": c, "transactions": purchases(transactions, c, "cost")} for c in ids]


def test_an_audience_is_the_customers_with_the_label_highest_clv_first(client, demo_data):
    transactions, _, _ = demo_data
    customers = _customers(transactions)
    full = client.post(
        "/v1/customers/score", json={"as_of": "2025-12-31", "customers": customers}
    ).json()["customers"]
    labels = [c["segments"]["rfm"]["label"] for c in full]
    label = max(set(labels), key=labels.count)  # the most common RFM segment of the 40
    response = client.post(
        "/v1/segments/audience",
        json={"as_of": "2025-12-31", "scheme": "rfm", "label": label, "customers": customers},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scheme"], body["label"], body["scored"]) == ("rfm", label, 40)
    expected = sorted(
        (c for c in full if c["segments"]["rfm"]["label"] == label),
        key=lambda c: -c["clv"]["clv"],
    )
    assert body["count"] == len(expected) == labels.count(label)
    assert [m["customer_id"] for m in body["customers"]] == [c["customer_id"] for c in expected]
    first, want = body["customers"][0], expected[0]
    assert first["clv"] == want["clv"]["clv"]
    assert first["churn_probability"] == want["churn"]["probability"]
    assert first["value_at_risk"] == want["value_at_risk"]
    assert first["recommended_action"] == want["recommended_action"]


def test_churn_risk_audience_and_a_label_nobody_has(client, demo_data):
    transactions, _, _ = demo_data
    customers = _customers(transactions, 25)
    bands = {}
    for band in ("low", "medium", "high"):
        body = client.post(
            "/v1/segments/audience",
            json={
                "as_of": "2025-12-31",
                "scheme": "churn_risk",
                "label": band,
                "customers": customers,
            },
        ).json()
        bands[band] = {m["customer_id"] for m in body["customers"]}
        assert body["count"] == len(bands[band])
    assert sum(len(v) for v in bands.values()) == 25  # every customer in exactly one band
    assert set().union(*bands.values()) == {c["customer_id"] for c in customers}


def test_audience_errors_name_the_field_and_the_valid_labels(client, demo_data):
    transactions, _, _ = demo_data
    customers = _customers(transactions, 3)
    body = {"as_of": "2025-12-31", "scheme": "rfm", "label": "vip", "customers": customers}
    response = client.post("/v1/segments/audience", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"][0]["path"] == "label"
    assert "rfm has no label 'vip'; its labels are" in error["message"]
    assert "champions" in error["message"]
    response = client.post("/v1/segments/audience", json={**body, "scheme": "zodiac"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "scheme"


def test_an_audience_reads_the_served_versions_once(client, demo_data, monkeypatch):
    """The label check and the scores come from one snapshot: a reload between them cannot
    check the label against one segmentation version and score with another."""
    store = client.app.state.store
    taken = []
    snapshot = store.snapshot
    monkeypatch.setattr(store, "snapshot", lambda: taken.append(1) or snapshot())
    monkeypatch.setattr(store, "get", lambda family: pytest.fail(f"second read of {family}"))
    transactions, _, _ = demo_data
    body = {"as_of": "2025-12-31", "scheme": "rfm", "label": "champions"}
    response = client.post(
        "/v1/segments/audience", json={**body, "customers": _customers(transactions, 5)}
    )
    assert response.status_code == 200, response.text
    assert taken == [1]
