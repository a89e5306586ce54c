"""Every README example runs as written: each ```bash block of README.md that calls curl on
http://127.0.0.1:8000 runs with ``bash -euo pipefail`` against a real server, with only the
address (and the ``<admin key>`` placeholder) replaced.

The server runs on a copy of the session's ``trained_store`` registry (its SQLite file; the
artifacts are read in place, nothing is trained again), so that the README's promotion and
rollback examples can move aliases without touching the store the other tests share. The copy
gets a ``cvm-churn`` v2 @challenger (v1's model, with a holdout comparison against v1) so that
the promotion example answers as the README shows: promoted, v1 → v2.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.server import ROOT, running_server

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
LOCAL = "127.0.0.1:8000"
ADMIN_KEY = "readme-admin-key"
PLACEHOLDERS = {"<admin key>": ADMIN_KEY}
FAMILIES = {"cvm-segmentation": "segmentation", "cvm-churn": "churn", "cvm-clv": "clv"}

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# A curl command with its backslash-continued lines (to count the README's calls anywhere).
CURL_CALL = re.compile(r"\bcurl\b(?:[^\n]*\\\n)*[^\n]*")


@dataclass
class Curl:
    method: str
    path: str
    output: str | None  # -o FILE: the answer goes to a file, not to stdout
    upload: str | None  # -T FILE: the body is read from a file
    expected: str = ""  # the "# {...}" comment after the call: the answer the README shows

    @property
    def shows_error(self) -> bool:
        return self.expected.startswith('{"error"')


@dataclass
class Block:
    index: int  # among the README's fenced blocks
    source: str
    curls: list[Curl] = field(default_factory=list)

    @property
    def id(self) -> str:
        first = self.curls[0]
        return f"block{self.index}-{first.method}-{first.path.strip('/').replace('/', '-')}"

    @property
    def moves_aliases(self) -> bool:
        return any(c.path.startswith("/v1/admin/") for c in self.curls)


def _option(tokens: list[str], *names: str) -> str | None:
    for i, token in enumerate(tokens[:-1]):
        if token in names:
            return tokens[i + 1]
    return None


def _curl(tokens: list[str]) -> Curl | None:
    """The call's method, route and files, or None when it does not call 127.0.0.1:8000."""
    url = next((t for t in tokens if LOCAL in t), None)
    if url is None:
        return None
    data = _option(tokens, "-d", "--data", "--data-raw", "--data-binary")
    method = _option(tokens, "-X", "--request") or ("POST" if data else "GET")
    return Curl(
        method=method.upper(),
        path=urlsplit(url).path or "/",
        output=_option(tokens, "-o", "--output"),
        upload=_option(tokens, "-T", "--upload-file"),
    )


def _commands(source: str) -> list[list[str]]:
    """The block's shell commands as token lists; a comment line is ``["#", text]``."""
    out, current = [], ""
    for line in source.splitlines(keepends=True):
        if not current and line.lstrip().startswith("#"):
            out.append(["#", line.lstrip()[1:].strip()])
            continue
        current += line
        if current.rstrip().endswith("\\"):
            continue
        try:
            tokens = shlex.split(current.replace("\\\n", " "), comments=True)
        except ValueError:  # an open quote: the command goes on (a multi-line JSON body)
            continue
        if tokens:
            out.append(tokens)
        current = ""
    assert not current.strip(), f"unterminated command in README block:\n{source}"
    return out


def readme_blocks(text: str) -> list[Block]:
    """The ```bash blocks with at least one curl call on 127.0.0.1:8000."""
    blocks = []
    for index, match in enumerate(FENCE.finditer(text)):
        if match.group(1).strip() != "bash" or LOCAL not in match.group(2):
            continue
        block = Block(index, match.group(2))
        last: Curl | None = None
        for tokens in _commands(block.source):
            if tokens[0] == "#":
                if last is not None and (last.expected or tokens[1].startswith("{")):
                    last.expected += tokens[1] + "\n"
                continue
            last = _curl(tokens) if tokens[0] == "curl" else None
            if last is not None:
                block.curls.append(last)
        if block.curls:
            blocks.append(block)
    return blocks


BLOCKS = sorted(readme_blocks(README.read_text()), key=lambda b: b.moves_aliases)


def test_every_curl_example_of_the_readme_is_collected():
    """A curl on 127.0.0.1:8000 anywhere in the README (another fence, prose) is one this
    test runs: new examples cannot escape it."""
    text = README.read_text()
    in_readme = [c for c in CURL_CALL.findall(text) if LOCAL in c]
    collected = sum(len(b.curls) for b in BLOCKS)
    assert in_readme, "the README has no curl example on 127.0.0.1:8000 any more"
    assert collected == len(in_readme), (
        f"{len(in_readme)} curl calls on {LOCAL} in README.md, {collected} collected: keep "
        "each example in a ```bash block with the URL on the curl line"
    )
    assert len(BLOCKS) >= 9  # the README's examples as of this test; more are welcome


# --- the server ------------------------------------------------------------------------------


def _copy_store(uri: str, folder: Path) -> str:
    """A copy of the SQLite tracking/registry store (artifacts stay where they are)."""
    assert uri.startswith("sqlite:///"), uri
    copy = folder / "mlflow.db"
    source, target = sqlite3.connect(uri.removeprefix("sqlite:///")), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{copy}"


def _add_churn_challenger(uri: str) -> None:
    """Register v1's churn model again as v2 @challenger, compared with v1 on v1's metrics
    (as ``cvm retrain`` records it): the gate passes, so promotion answers as documented."""
    from mlflow import MlflowClient

    from models.families import FAMILIES as SPEC

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("cvm-churn", "champion")
    assert str(champion.version) == "1" and champion.source and champion.run_id
    tags = {
        k: v
        for k, v in champion.tags.items()
        if not k.startswith("event.") and k != "previous_champion"
    }
    version = client.create_model_version(
        "cvm-churn", champion.source, run_id=champion.run_id, tags=tags
    )
    metrics = client.get_run(champion.run_id).data.metrics
    gated = {r.metric: metrics[r.metric] for r in SPEC["churn"].gate}
    comparison = {"champion_version": "1", "champion": gated, "challenger": gated}
    client.set_model_version_tag(
        "cvm-churn", version.version, "gate_metrics", json.dumps(comparison)
    )
    client.set_registered_model_alias("cvm-churn", "challenger", version.version)


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme-store")
    uri = _copy_store(trained_store["uri"], folder)
    _add_churn_challenger(uri)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "CVM_HOME": str(folder),
        "CVM_ADMIN_KEYS": ADMIN_KEY,  # no scoring key: the scoring examples send none
    }
    env.pop("CVM_API_KEYS", None)
    with running_server(env, folder / "server.log") as base:
        yield base


def _checkout(folder: Path, demo_data: Any) -> None:
    """``folder`` as a checkout after ``make run``: ``.venv/bin/cvm`` (this interpreter
    running the ``cvm`` command of the code under test) and the demo data the models were
    trained on in ``.cvm/demo`` (200 of its customers)."""
    from training import synthetic

    shim = folder / ".venv" / "bin" / "cvm"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m training "$@"\n')
    shim.chmod(0o755)
    transactions, customers, truth = demo_data
    ids = customers["customer_id"].iloc[:200]
    synthetic.write(
        folder / ".cvm" / "demo",
        transactions[transactions["customer_id"].isin(ids)],
        customers[customers["customer_id"].isin(ids)],
        truth,
    )


# --- what the README says the answers are -----------------------------------------------------


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _documents(text: str) -> list[Any]:
    """Every JSON document printed one after the other (curl -s adds no separator)."""
    decoder, at = json.JSONDecoder(), 0
    docs: list[Any] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return docs
        try:
            doc, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not JSON at {at}: {text[at : at + 300]!r}") from exc
        docs.append(doc)


def _check_ready(doc: dict) -> None:
    assert doc["status"] == "ready"
    assert doc["models"] == {"segmentation": "1", "churn": "1", "clv": "1"}


def _check_models(doc: dict) -> None:
    assert {m["name"] for m in doc["models"]} == set(FAMILIES)


def _check_audience(doc: dict) -> None:
    assert (doc["scheme"], doc["label"], doc["scored"]) == ("churn_risk", "high", 3)
    assert doc["count"] == len(doc["customers"])
    # the bands are cut at the demo model's score quantiles (top fifth high, from about 0.97)
    assert [c["customer_id"] for c in doc["customers"]] == ["C0004"]
    clv = [c["clv"] for c in doc["customers"]]
    assert clv == sorted(clv, reverse=True)  # highest CLV first


def _check_promote(doc: dict) -> None:
    assert doc["family"] == "churn" and doc["promoted"] is True
    assert (doc["from_version"], doc["to_version"]) == ("1", "2")
    assert doc["message"] == "promoted v2 to @champion (was v1)"
    assert doc["gate"][0].startswith("churn_roc_auc ") and "(ok: " in doc["gate"][0]
    assert doc["served"]["versions"]["churn"] == "2"  # served before the answer


def _check_rollback(doc: dict) -> None:
    assert doc["family"] == "churn"
    assert (doc["from_version"], doc["to_version"]) == ("2", "1")
    assert doc["served"]["versions"]["churn"] == "1"


def _check_plan(doc: dict) -> None:
    summary = doc["summary"]
    assert summary["assumption_based"] is True  # no uplift model is served
    assert summary["customers"] == 2 and summary["customers_contacted"] == len(doc["contacts"])
    assert [c["customer_id"] for c in doc["contacts"]][:1] == ["C0004"]
    assert summary["expected_spend"] <= 20.0


def _check_churn_report(doc: dict) -> None:
    """The README's batch, worked by hand: January 2 / 2 / lost 1 / new 1, February 2 / 1."""
    total = [p for p in doc["periods"] if p["segment"] == "all"]
    assert [(p["customers_start"], p["customers_end"], p["lost_customers"]) for p in total] == [
        (2, 2, 1),
        (2, 1, 1),
    ]
    assert [p["churn_rate"] for p in total] == [0.5, 1.0]
    assert [p["churn_loss"] for p in total] == [12.5, 20.0]
    assert total[1]["churn_rate_change_pct"] == 100.0
    assert any(p["segment"] == "no_history" for p in doc["periods"])  # D before its purchase


def _check_predictions(doc: dict) -> None:
    assert len(doc["predictions"]) == 1


CHECKS = {
    ("GET", "/health/ready"): _check_ready,
    ("GET", "/v1/models"): _check_models,
    ("POST", "/v1/segments/audience"): _check_audience,
    ("POST", "/v1/admin/promote"): _check_promote,
    ("POST", "/v1/admin/rollback"): _check_rollback,
    ("POST", "/v1/models/cvm-clv/invocations"): _check_predictions,
    ("POST", "/v1/campaigns/plan"): _check_plan,
    ("POST", "/v1/reports/churn"): _check_churn_report,
}


def _check_answer(curl: Curl, doc: Any) -> None:
    assert isinstance(doc, dict), doc
    if curl.shows_error:
        code = re.search(r'"code":\s*"(\w+)"', curl.expected)
        assert "error" in doc, doc
        if code:
            assert doc["error"]["code"] == code.group(1), doc
        message = re.search(r'"message":\s*"([^"]*?)(?: ?\.\.\.)?"', curl.expected)
        if message:
            assert doc["error"]["message"].startswith(message.group(1)), doc
        return
    assert doc.get("error") is None, doc  # {"error": null} is no error (/v1/models)
    # Every field the README shows is in the answer (their values depend on the training).
    shown = set(re.findall(r'"([A-Za-z_]\w*)"\s*:', curl.expected))
    assert shown <= _keys(doc), f"missing {shown - _keys(doc)}"
    check = CHECKS.get((curl.method, curl.path))
    if check:
        check(doc)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_curl_example_runs_as_written(block, server, demo_data, tmp_path):
    host = urlsplit(server).netloc
    script = block.source.replace(LOCAL, host)
    for placeholder, value in PLACEHOLDERS.items():
        script = script.replace(placeholder, value)
    _checkout(tmp_path, demo_data)  # the files a block uploads, it makes itself (cvm features)
    env = {
        **os.environ,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{script}\n{done.stderr}"

    printing = [c for c in block.curls if c.output is None]
    docs = _documents(done.stdout)
    assert len(docs) == len(printing), f"{len(printing)} curl calls, answers:\n{done.stdout}"
    for curl, doc in zip(printing, docs, strict=True):
        _check_answer(curl, doc)

    for curl in block.curls:
        if curl.output is None:
            continue
        lines = (tmp_path / curl.output).read_text().splitlines()
        if curl.upload:  # NDJSON: one answer line per input line
            sent = [x for x in (tmp_path / curl.upload).read_text().splitlines() if x.strip()]
            assert len(lines) == len(sent) > 0, lines[-3:]
        for line in lines:
            answer = json.loads(line)
            assert isinstance(answer, dict) and answer.get("error") is None, line
