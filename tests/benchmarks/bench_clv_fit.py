"""CLV fit benchmark in time units: BG/NBD and Pareto/NBD on 1 M synthetic customers with
day-level and week-level ages, against the 10 s target for Pareto/NBD on day-level data.

The per-customer summaries are drawn in-process from known parameters (a few seconds), not
through ``cvm generate``. Run: ``python -m tests.benchmarks.bench_clv_fit [--customers N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from models.clv import BGNBD, ParetoNBD
from training.synthetic import simulate_bgnbd_summary

TARGET_SECONDS = 10.0
# Pareto/NBD truth per week: purchase rates Gamma(r, alpha), dropout rates Gamma(s, beta).
PARETO_TRUE = {"r": 0.75, "alpha": 8.0, "s": 0.8, "beta": 20.0}


def simulate_pareto_summary(n: int, *, seed: int = 0) -> pd.DataFrame:
    """(frequency, recency, T) in whole days from a Pareto/NBD process (ages 1-2 years)."""
    rng = np.random.default_rng(seed)
    weekly = PARETO_TRUE
    lam = rng.gamma(weekly["r"], 1.0 / weekly["alpha"], n) / 7  # per day
    mu = rng.gamma(weekly["s"], 1.0 / weekly["beta"], n) / 7
    age = rng.integers(365, 731, n).astype(float)
    active = np.minimum(rng.exponential(1.0 / mu), age)
    x = rng.poisson(lam * active)
    # The last of x uniform purchase times on [0, active] is active·U^(1/x).
    last = np.where(x > 0, active * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"frequency": x.astype(float), "recency": np.floor(last), "T": age})


def timed(model: type, frame: pd.DataFrame, unit: float) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    fitted = model().fit(frame["frequency"], frame["recency"] / unit, frame["T"] / unit)
    return time.perf_counter() - start, fitted.params_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    start = time.perf_counter()
    data = {
        "BG/NBD": simulate_bgnbd_summary(args.customers, seed=1),
        "Pareto/NBD": simulate_pareto_summary(args.customers, seed=2),
    }
    print(f"simulated {args.customers:,} customers twice in {time.perf_counter() - start:.1f}s")
    rows = []
    for source, frame in data.items():
        distinct = len(frame[["frequency", "recency", "T"]].drop_duplicates())
        for name, model in (("BG/NBD", BGNBD), ("Pareto/NBD", ParetoNBD)):
            for unit, label in ((1.0, "days"), (7.0, "weeks")):
                seconds, params = timed(model, frame, unit)
                shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
                rows.append((source, name, label, distinct, seconds, shown))
    print(f"{'data from':<11} {'model':<11} {'unit':<6} {'distinct':>9} {'seconds':>8}  params")
    for source, name, label, distinct, seconds, shown in rows:
        print(f"{source:<11} {name:<11} {label:<6} {distinct:>9,} {seconds:>8.2f}  {shown}")
    worst = max(s for _, name, label, _, s, _ in rows if name == "Pareto/NBD" and label == "days")
    verdict = "meets" if worst <= TARGET_SECONDS else "MISSES"
    print(
        f"Pareto/NBD on day-level data: {worst:.2f}s, {verdict} the {TARGET_SECONDS:.0f} s target"
    )


if __name__ == "__main__":
    main()
