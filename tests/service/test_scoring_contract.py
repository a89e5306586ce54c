"""The scoring contract a caller can rely on: the as_of used, repeated purchases dropped as in
batch scoring (one shared rule), each version's signature in /v1/models, and API docs that
need no internet."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
import pytest

from models.clv import CLV_INPUT_COLUMNS
from models.exceptions import InvalidInputError
from models.features import repeated_rows
from service.model_store import LoadedModel
from service.scoring import STALE_DAYS, model_as_of
from tests.conftest import purchases

CDNOW_LIKE = [  # three purchases in 1997, as in the CDNOW log
    {"timestamp": "1997-01-12", "amount": 29.33},
    {"timestamp": "1997-02-03", "amount": 15.36},
    {"timestamp": "1997-03-30", "amount": 57.11},
]


def _served(client) -> dict[str, LoadedModel]:
    return client.app.state.store.snapshot()


# --- as_of ------------------------------------------------------------------------------------


def test_a_default_as_of_long_after_the_latest_purchase_is_warned_about(client):
    body = {"customers": [{"customer_id": "A", "transactions": CDNOW_LIKE}]}
    answer = client.post("/v1/customers/score", json=body)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    today = datetime.now(UTC).date()
    assert doc["as_of"] == str(today)  # the old default is kept
    (warning,) = doc["warnings"]
    days = (today - date(1997, 3, 30)).days
    assert warning.startswith(f"as_of was not given, so today ({today}, UTC) was used")
    assert f"the latest purchase sent is {days:,} days before it" in warning
    assert '"as_of": "model"' in warning
    # the same customers with a date: no warning
    dated = client.post("/v1/customers/score", json={"as_of": "1997-06-30", **body}).json()
    assert dated["warnings"] == []
    # every customer-view route carries the warning
    for route in ("/v1/churn", "/v1/segments"):
        assert len(client.post(route, json=body).json()["warnings"]) == 1


def test_a_recent_purchase_and_a_default_as_of_need_no_warning(client):
    recent = datetime.now(UTC).date() - timedelta(days=STALE_DAYS - 1)
    purchase = {"timestamp": str(recent), "amount": 10.0}
    body = {"customers": [{"customer_id": "A", "transactions": [purchase]}]}
    assert client.post("/v1/customers/score", json=body).json()["warnings"] == []
    summary = {"frequency": 2, "recency": 100, "T": 100 + STALE_DAYS + 1, "monetary_value": 5.0}
    stale = {"customers": [{"customer_id": "B", "summary": summary}]}  # last purchase: T - recency
    assert len(client.post("/v1/customers/score", json=stale).json()["warnings"]) == 1


def test_as_of_model_scores_as_of_the_models_data_date(client, demo_data):
    transactions, _, _ = demo_data
    cid = transactions["customer_id"].iloc[0]
    customer = {"customer_id": cid, "transactions": purchases(transactions, cid)}
    served = _served(client)
    registered = max(m.registered_at for m in served.values() if m.registered_at)
    elapsed = (datetime.now(UTC).date() - datetime.fromtimestamp(registered, UTC).date()).days
    expected = date(2025, 12, 31) + timedelta(days=elapsed)  # trained as of 2025-12-31
    by_model = client.post(
        "/v1/customers/score", json={"as_of": "model", "customers": [customer]}
    ).json()
    by_date = client.post(
        "/v1/customers/score", json={"as_of": str(expected), "customers": [customer]}
    ).json()
    assert by_model["as_of"] == str(expected) and by_model["warnings"] == []
    assert by_model["customers"] == by_date["customers"]


def _loaded(as_of: str | None, registered: datetime | None) -> LoadedModel:
    return LoadedModel(
        family="clv",
        name="cvm-clv",
        version="1",
        alias="champion",
        run_id=None,
        estimator=None,
        params={"as_of": as_of} if as_of else {},
        registered_at=registered.timestamp() if registered else None,
    )


def test_model_as_of_adds_the_days_since_registration_to_the_data_date():
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    ten_days_ago = now - timedelta(days=10)
    assert model_as_of({"clv": _loaded("1998-06-30", ten_days_ago)}, now) == date(1998, 7, 10)
    assert model_as_of({"clv": _loaded("1998-06-30", None)}, now) == date(1998, 6, 30)
    both = {"clv": _loaded("1998-06-30", now), "churn": _loaded("1998-09-30", now)}
    assert model_as_of(both, now) == date(1998, 9, 30)  # the latest family
    with pytest.raises(InvalidInputError, match="record no data date"):
        model_as_of({"clv": _loaded(None, now)}, now)


def test_as_of_takes_model_or_a_date_and_names_the_field_otherwise(client):
    body = {"as_of": "models", "customers": [{"customer_id": "A", "transactions": CDNOW_LIKE}]}
    answer = client.post("/v1/customers/score", json=body)
    assert answer.status_code == 422
    assert [d["path"] for d in answer.json()["error"]["details"]] == ["as_of"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ScoreRequest"]
    kinds = schema["properties"]["as_of"]["anyOf"]
    assert {"type": "string", "enum": ["model"]} in kinds


# --- repeated purchases: one rule in batch and online ------------------------------------------


def test_repeated_rows_flags_exact_repeats_only():
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "a"],
            "timestamp": pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-01", "2024-01-01"]),
            "amount": [10.0, 10.0, 11.0, 10.0, 10.0],
            "cost": [np.nan, np.nan, np.nan, np.nan, 5.0],
        }
    )
    # row 1 repeats row 0 (missing costs equal); 2 differs in amount, 3 in customer, 4 in cost
    assert repeated_rows(frame).tolist() == [False, True, False, False, False]
    assert repeated_rows(frame.iloc[:0]).tolist() == []


def _with_repeats(transactions: pd.DataFrame, cid: str) -> pd.DataFrame:
    """The customer's purchases with its first two repeated once more (exact copies)."""
    rows = transactions[transactions["customer_id"] == cid]
    return pd.concat([rows, rows.iloc[:2]]).sort_values("timestamp", kind="stable")


def test_cvm_score_and_the_api_give_the_same_clv_for_a_customer_with_repeats(
    client, demo_data, tmp_path
):
    from training.cli import main

    transactions, _, _ = demo_data
    ids = transactions["customer_id"].drop_duplicates().iloc[:25].tolist()
    cid = next(c for c in ids if (transactions["customer_id"] == c).sum() >= 3)
    others = transactions[
        transactions["customer_id"].isin(ids) & (transactions["customer_id"] != cid)
    ]
    repeated = _with_repeats(transactions, cid)
    csv = tmp_path / "tx.csv"
    pd.concat([others, repeated]).to_csv(csv, index=False)
    customer = {"customer_id": cid, "transactions": purchases(repeated, cid, "cost", "channel")}

    clv = {}
    for keep in (False, True):
        out = tmp_path / f"scored_{keep}.csv"
        flag = ["--keep-duplicates"] if keep else []
        args = ["score", "--transactions", str(csv), "--as-of", "2025-12-31", "--out", str(out)]
        assert main([*args, *flag, "--quiet"]) == 0
        batch = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id").loc[cid]
        body = {"as_of": "2025-12-31", "keep_duplicates": keep, "customers": [customer]}
        answer = client.post("/v1/customers/score", json=body)
        assert answer.status_code == 200, answer.text
        online = answer.json()
        assert online["customers"][0]["clv"]["clv"] == pytest.approx(batch["clv"], rel=1e-9)
        clv[keep] = batch["clv"]
        (warning,) = online["warnings"]
        if keep:
            assert warning.startswith("2 purchase(s) identical to an earlier one")
            assert f"kept as asked (keep_duplicates): {cid} (2)." in warning
        else:
            assert f"were dropped, as training drops them: {cid} (2)." in warning
            assert '"keep_duplicates": true' in warning and "--keep-duplicates" in warning
    assert clv[True] != pytest.approx(clv[False], rel=1e-6)  # the repeats do count when kept
    # dropped, the repeats change nothing: the same CLV as the customer without them
    plain = {"customer_id": cid, "transactions": purchases(transactions, cid, "cost", "channel")}
    answer = client.post("/v1/customers/score", json={"as_of": "2025-12-31", "customers": [plain]})
    assert answer.json()["customers"][0]["clv"]["clv"] == pytest.approx(clv[False], rel=1e-9)
    assert answer.json()["warnings"] == []


def test_every_data_command_takes_keep_duplicates():
    from training.cli import build_parser

    parser = build_parser()
    for command in ("train", "retrain", "score", "risk"):
        args = parser.parse_args(
            [command, "--transactions", "t.csv", "--keep-duplicates"]
            + (["--out", "x.csv"] if command == "score" else [])
        )
        assert args.keep_duplicates is True, command
    args = parser.parse_args(["report", "churn", "--transactions", "t.csv", "--keep-duplicates"])
    assert args.keep_duplicates is True


# --- /v1/models: each version's signature ------------------------------------------------------


def test_models_show_each_versions_input_signature(client, trained_store):
    models = {m["family"]: m for m in client.get("/v1/models").json()["models"]}
    clv = models["clv"]["signature"]
    assert [c["name"] for c in clv] == CLV_INPUT_COLUMNS
    assert {c["type"] for c in clv} == {"double"}  # integers registered as doubles
    churn = trained_store["result"].models["churn"]
    assert [c["name"] for c in models["churn"]["signature"]] == list(churn.feature_names_in_)
    types = {c["name"]: c["type"] for c in models["churn"]["signature"]}
    assert types["region"] == "string" and types["days_since_last"] == "double"
    assert len(models["segmentation"]["signature"]) > len(CLV_INPUT_COLUMNS)


# --- /docs without a CDN --------------------------------------------------------------------------

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_only_local_assets(client, page):
    html = client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    urls = [a or b for a, b in URL.findall(html.text)]
    assert urls, html.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "http://" not in html.text and "https://" not in html.text
    assets = [u for u in urls if u.startswith("/docs-assets/")]
    assert len(assets) >= 2
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 1000, url  # the real file, not an error page
    assert client.get("/openapi.json").status_code == 200


# --- cvm features: the invocation rows for a transactions file ----------------------------------


@pytest.fixture(scope="module")
def demo_files(demo_data, tmp_path_factory):
    """60 demo customers' transactions and customer table as CSV files."""
    from training import synthetic

    transactions, customers, truth = demo_data
    ids = customers["customer_id"].iloc[:60]
    folder = tmp_path_factory.mktemp("features")
    return synthetic.write(
        folder,
        transactions[transactions["customer_id"].isin(ids)],
        customers[customers["customer_id"].isin(ids)],
        truth,
    )


def _features(files, tmp_path, family, out, *extra):
    from training.cli import main

    path = tmp_path / out
    args = ["features", "--family", family, "--transactions", str(files["transactions"])]
    args += ["--customers", str(files["customers"]), "--as-of", "2025-12-31", "--out", str(path)]
    assert main([*args, *extra]) == 0
    return path


def test_cvm_features_writes_churn_rows_the_invocations_route_scores(
    client, demo_files, trained_store, tmp_path
):
    from models.churn.features import churn_features
    from training.data import load_customers, load_transactions

    path = _features(demo_files, tmp_path, "churn", "customers.ndjson")
    lines = path.read_bytes().splitlines()
    churn = trained_store["result"].models["churn"]
    assert list(orjson.loads(lines[0])) == list(churn.feature_names_in_)  # the signature
    answer = client.post(
        "/v1/models/cvm-churn/invocations",
        content=path.read_bytes(),
        headers={"content-type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    got = [orjson.loads(line)["churn_probability"] for line in answer.content.splitlines()]
    # the same numbers as the model on the training feature function's output
    tx, _ = load_transactions(demo_files["transactions"], as_of="2025-12-31")
    customers, _ = load_customers(demo_files["customers"])
    features = churn_features(tx, pd.Timestamp("2025-12-31"), customers)
    want = churn.predict_proba(features[list(churn.feature_names_in_)])[:, 1]
    assert len(got) == len(want) == 60
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize(("family", "out"), [("clv", "clv.csv"), ("segmentation", "seg.parquet")])
def test_cvm_features_csv_and_parquet_match_the_signature(
    client, demo_files, tmp_path, family, out
):
    path = _features(demo_files, tmp_path, family, out)
    frame = pd.read_parquet(path) if out.endswith(".parquet") else pd.read_csv(path)
    models = {m["family"]: m for m in client.get("/v1/models").json()["models"]}
    assert list(frame.columns) == [c["name"] for c in models[family]["signature"]]
    assert len(frame) == 60
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
    answer = client.post(f"/v1/models/cvm-{family}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 60
    with_ids = pd.read_csv(_features(demo_files, tmp_path, "clv", "ids.csv", "--with-ids"))
    assert with_ids.columns[0] == "customer_id" and with_ids["customer_id"].is_monotonic_increasing


def test_cvm_features_refuses_an_unknown_output_format(demo_files, tmp_path, capsys):
    from training.cli import main

    args = ["features", "--family", "clv", "--transactions", str(demo_files["transactions"])]
    assert main([*args, "--out", str(tmp_path / "x.xlsx")]) == 2
    assert "use a .csv, .parquet or .ndjson file name" in capsys.readouterr().err
