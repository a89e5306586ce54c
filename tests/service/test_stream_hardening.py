"""NDJSON streams against a full disk and a client that goes away (issue: hardening)."""

from __future__ import annotations

import errno
import logging
import tempfile

import orjson

from service import observability

NDJSON = {"content-type": "application/x-ndjson"}
CLV_LINE = orjson.dumps({"frequency": 2, "recency": 30.0, "T": 90.0, "monetary_value": 20.0})


def test_a_full_disk_while_spooling_is_507_with_a_clear_message(client, monkeypatch, caplog):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "write", full)
    before = observability.ERRORS.labels("507", "insufficient_storage")._value.get()
    with caplog.at_level(logging.ERROR, logger="cvm.errors"):
        response = client.post(
            "/v1/models/cvm-clv/invocations", content=CLV_LINE + b"\n", headers=NDJSON
        )
    assert response.status_code == 507
    assert response.json() == {
        "error": {
            "code": "insufficient_storage",
            "message": "the server has no disk space left to receive this stream; try again "
            "later, or send the rows in smaller streams",
            "details": [],
        }
    }
    assert observability.ERRORS.labels("507", "insufficient_storage")._value.get() == before + 1
    assert any("No space left on device" in r.getMessage() for r in caplog.records)


def test_other_spool_errors_are_not_called_a_full_disk(client, monkeypatch):
    def broken(self, data):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "write", broken)
    response = client.post(
        "/v1/models/cvm-clv/invocations", content=CLV_LINE + b"\n", headers=NDJSON
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
