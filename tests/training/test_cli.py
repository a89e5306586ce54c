"""The ``cvm`` command as a user runs it: real processes, exit codes, one-line errors."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def cvm(*args, home: Path, timeout=300, env_extra: dict[str, str] | None = None):
    env = {**os.environ, "CVM_HOME": str(home), **(env_extra or {})}
    env.pop("MLFLOW_TRACKING_URI", None)  # the store under CVM_HOME
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_train_on_cdnow_csv_without_customer_table_registers_all_three(
    tmp_path, cdnow_transactions
):
    csv = tmp_path / "cdnow.csv"
    cdnow_transactions.assign(
        timestamp=cdnow_transactions["timestamp"].dt.strftime("%Y-%m-%d")
    ).to_csv(csv, index=False)
    home = tmp_path / "home"
    result = cvm("train", "--transactions", str(csv), "--keep-duplicates", home=home)
    assert result.returncode == 0, result.stderr
    assert "read 6,919, kept 6,919" in result.stderr
    assert "21 identical repeats kept (--keep-duplicates)" in result.stderr
    assert "using the last purchase date, 1998-06-30" in result.stderr
    for name in ("cvm-segmentation", "cvm-churn", "cvm-clv"):
        assert f"registered {name} version 1 as @champion" in result.stdout
    assert "  churn: churn_roc_auc 0." in result.stdout  # the key metrics, one line a family
    assert "(--verbose: every metric)" in result.stdout
    assert "[" in result.stderr and "] CLV: chose " in result.stderr  # stamped progress lines
    assert (home / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("customer_id,timestamp\n1,2024-01-01\n", "missing required column 'amount'"),
        ("customer_id,timestamp,amount\n1,2024-01-01,5\n2,2024-13-01,6\n", "column 'timestamp'"),
    ],
)
def test_bad_csv_gives_one_line_error_and_nonzero_exit(tmp_path, content, expected):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    result = cvm("train", "--transactions", str(csv), home=tmp_path / "home", timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "bad.csv" in lines[0] and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_generate_writes_demo_files(tmp_path):
    result = cvm(
        "generate",
        "--customers",
        "300",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "demo"),
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    transactions = pd.read_csv(tmp_path / "demo" / "transactions.csv")
    customers = pd.read_csv(tmp_path / "demo" / "customers.csv")
    assert customers["customer_id"].nunique() == 300
    assert {"customer_id", "timestamp", "amount", "cost", "channel"} <= set(transactions.columns)
    assert (tmp_path / "demo" / "truth.json").exists()


def test_train_demo_if_missing_trains_once(tmp_path):
    home = tmp_path / "home"
    first = cvm("train", "--demo", "--demo-customers", "1500", "--if-missing", "--quiet", home=home)
    assert first.returncode == 0, first.stderr
    assert "registered cvm-clv version 1 as @champion" in first.stdout
    assert first.stderr == ""  # --quiet: no progress, no counts (nothing was quarantined)
    second = cvm("train", "--demo", "--if-missing", home=home)
    assert second.returncode == 0
    assert "nothing to train" in second.stderr


def test_serve_on_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cvm("serve", "--host", "127.0.0.1", "--port", str(port), home=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: cannot serve on 127.0.0.1:{port}: Address already in use (choose another with --port)"
    )


@pytest.mark.parametrize(
    ("setting", "value"), [("CVM_API_KEYS", ","), ("CVM_ADMIN_KEYS", " , "), ("CVM_API_KEYS", " ")]
)
def test_serve_with_a_key_setting_holding_no_key_is_a_one_line_error(tmp_path, setting, value):
    with socket.socket() as probe:  # a free port: without the check the server would start
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    keys = {"CVM_API_KEYS": "a-scoring-key", "CVM_ADMIN_KEYS": "an-admin-key", setting: value}
    result = cvm("serve", "--port", str(port), home=tmp_path, timeout=60, env_extra=keys)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {setting} is set but holds no key (only commas and spaces): list the keys "
        f"separated by commas, or unset {setting}"
    )
