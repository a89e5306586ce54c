"""CLV fitting benchmark (``make bench``): wall time of our BG/NBD fit, and the ratio against
``lifetimes`` 0.11.3 measured in the same run, on the CDNOW sample and on synthetic sets of
1 M and 10 M customers; and Pareto/NBD on CDNOW, with the log-likelihood each library's
optimum reaches (higher is the better fit).

``lifetimes`` is run in its own virtual environment (``LIFETIMES_PYTHON``, default
``.bench-venv/bin/python``; ``make bench`` creates it) because it is not a dependency of the
product. Where it is missing the ratio is reported as unavailable. lifetimes is only timed on
CDNOW and 1 M (its fit on 10 M would take far longer than this benchmark should run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.clv import BGNBD, ParetoNBD
from training.synthetic import simulate_bgnbd_summary

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT / "tests" / "data" / "clv" / "cdnow_sample_summary.csv"
LIFETIMES_PYTHON = os.environ.get("LIFETIMES_PYTHON", str(ROOT / ".bench-venv" / "bin" / "python"))
TRUE = {"r": 0.75, "alpha": 8.0, "a": 0.8, "b": 2.5}

LIFETIMES_SCRIPT = """
import sys, time, json
import pandas as pd
from lifetimes import BetaGeoFitter, ParetoNBDFitter
d = pd.read_parquet(sys.argv[1]) if sys.argv[1].endswith('.parquet') else pd.read_csv(sys.argv[1])
Fitter = ParetoNBDFitter if sys.argv[3] == 'pareto' else BetaGeoFitter
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    m = Fitter().fit(d['frequency'], d['recency'], d['T'])
    times.append(time.perf_counter() - t)
print(json.dumps({"seconds": min(times), "params": {k: float(v) for k, v in m.params_.items()}}))
"""


MODELS = {"bgnbd": BGNBD, "pareto": ParetoNBD}


def ours(frame: pd.DataFrame, repeats: int, model: str = "bgnbd") -> tuple[float, Any]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fitted = MODELS[model]().fit(frame["frequency"], frame["recency"], frame["T"])
        times.append(time.perf_counter() - start)
    return min(times), fitted


def log_likelihood(model: str, params: dict[str, float], frame: pd.DataFrame) -> float:
    """Total log-likelihood of ``params`` on ``frame``, by our implementation."""
    at = MODELS[model]()
    at.params_ = dict(params)
    rows = at.log_likelihood_rows(frame["frequency"], frame["recency"], frame["T"])
    return float(np.sum(rows))


def lifetimes(
    path: Path, repeats: int, timeout: float, model: str = "bgnbd"
) -> tuple[float, dict[str, float]] | str:
    if not Path(LIFETIMES_PYTHON).exists():
        return f"lifetimes unavailable ({LIFETIMES_PYTHON} missing; run `make bench` to create it)"
    try:
        out = subprocess.run(
            [LIFETIMES_PYTHON, "-c", LIFETIMES_SCRIPT, str(path), str(repeats), model],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"lifetimes did not finish within {timeout:.0f} s"
    if out.returncode != 0:
        return "lifetimes failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["params"]


def fmt(params: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in params.items())


def main() -> int:
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cdnow = pd.read_csv(CDNOW).rename(columns={"x": "frequency", "t_x": "recency"})
        cases = [
            ("CDNOW sample (2,357)", cdnow, 20, True, "bgnbd"),
            ("CDNOW, Pareto/NBD", cdnow, 3, True, "pareto"),
        ]
        for n in (1_000_000, 10_000_000):
            start = time.perf_counter()
            frame = simulate_bgnbd_summary(n, seed=1, **TRUE)
            frame[["recency", "T"]] = frame[["recency", "T"]] / 7.0  # weeks, as the parameters
            print(f"simulated {n:,} customers in {time.perf_counter() - start:.1f}s")
            cases.append((f"synthetic {n:,}", frame, 1, n <= 1_000_000, "bgnbd"))
        for label, frame, repeats, compare, model in cases:
            seconds, fitted = ours(frame, repeats, model)
            line: dict[str, Any] = {
                "data": label,
                "ours_s": seconds,
                "ours_params": fmt(fitted.params_),
                "ours_loglik": log_likelihood(model, fitted.params_, frame),
            }
            if compare:
                path = Path(tmp) / "data.csv"  # lifetimes' env has no parquet engine
                frame[["frequency", "recency", "T"]].to_csv(path, index=False)
                other = lifetimes(path, min(repeats, 5), timeout=1800, model=model)
                if isinstance(other, str):
                    line["lifetimes"] = other
                else:
                    line["lifetimes_s"] = other[0]
                    line["speedup"] = other[0] / seconds
                    line["lifetimes_params"] = fmt(other[1])
                    line["lifetimes_loglik"] = log_likelihood(model, other[1], frame)
            rows.append(line)
            print(json.dumps(line))
    print()
    print(
        f"{'data':<26} {'ours (s)':>10} {'lifetimes (s)':>14} {'ratio':>8} "
        f"{'our log-lik':>13} {'theirs':>13}"
    )
    for line in rows:
        theirs = f"{line['lifetimes_s']:.3f}" if "lifetimes_s" in line else "n/a"
        ratio = f"{line['speedup']:.1f}x" if "speedup" in line else "n/a"
        their_ll = f"{line['lifetimes_loglik']:.2f}" if "lifetimes_loglik" in line else "n/a"
        print(
            f"{line['data']:<26} {line['ours_s']:>10.3f} {theirs:>14} {ratio:>8} "
            f"{line['ours_loglik']:>13.2f} {their_ll:>13}"
        )
    print(f"true synthetic parameters: {fmt(TRUE)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
