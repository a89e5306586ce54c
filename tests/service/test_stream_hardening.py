"""NDJSON streams against a full disk and a client that goes away (issue: hardening)."""

from __future__ import annotations

import errno
import logging
import tempfile

import orjson

from service import observability, streaming

NDJSON = {"content-type": "application/x-ndjson"}
CLV_LINE = orjson.dumps(
    {
        "frequency": 2.0,
        "recency": 30.0,
        "T": 90.0,
        "monetary_value": 20.0,
        "margin_rate": 0.3,
        "tenure_days": 90.0,
        "total_revenue": 60.0,
    }
)


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


def _scope(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/x-ndjson")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def test_a_client_gone_mid_stream_stops_the_scoring_and_is_logged_as_499(
    client, monkeypatch, caplog
):
    """The client reads the first chunk of predictions and disconnects: the server scores at
    most one more chunk (the one under way), not the remaining 48, and logs a 499."""
    import anyio

    from service import mlflow_scoring

    monkeypatch.setattr(streaming.row_chunks, "__defaults__", (10, streaming.MAX_LINE_BYTES))
    scored: list[int] = []
    score_lines = mlflow_scoring.score_lines

    def counting(lines, *args):
        scored.append(len(lines))
        return score_lines(lines, *args)

    monkeypatch.setattr(mlflow_scoring, "score_lines", counting)
    body = (CLV_LINE + b"\n") * 500

    async def drive() -> list[dict]:
        gone = anyio.Event()
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message.get("body"):  # the first predictions arrived: the client leaves
                gone.set()
            await anyio.sleep(0)  # as a server's send does, it lets other tasks run

        await client.app(_scope("/v1/models/cvm-clv/invocations"), receive, send)
        return sent

    before = observability.ERRORS.labels("499", "client_closed_request")._value.get()
    with caplog.at_level(logging.INFO, logger="cvm.access"):
        sent = anyio.run(drive)
    assert sent[0]["status"] == 200, sent[1]
    assert sum(scored) <= 30, f"{sum(scored)} of 500 rows scored after the client left"
    assert not [m for m in sent if m.get("more_body") is False]  # no end sent to nobody
    access = [r for r in caplog.records if r.name == "cvm.access"]
    assert [r.status for r in access] == [499]
    assert observability.ERRORS.labels("499", "client_closed_request")._value.get() == before + 1
