"""Customer migration as a Markov chain: worked examples by hand (counts → matrix → equity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.exceptions import InvalidInputError
from models.migration import (
    GONE,
    NEW,
    CustomerMigration,
    discounted_value,
    per_period_rate,
    state_rewards,
)


def _labels(groups: list[tuple[str | None, str | None, int]]) -> tuple[pd.Series, pd.Series]:
    """Customers c0, c1, ... in (label before, label after, how many) groups; None: no label."""
    before, after, n = {}, {}, 0
    for first, second, count in groups:
        for _ in range(count):
            cid = f"c{n}"
            n += 1
            if first is not None:
                before[cid] = first
            if second is not None:
                after[cid] = second
    return pd.Series(before, dtype=object), pd.Series(after, dtype=object)


@pytest.fixture
def three_states() -> CustomerMigration:
    """The hand example: two segments (high, low) and gone.

    10 customers high at the first date: 6 stay high, 3 go low, 1 leaves (gone);
    10 customers low: 2 go high, 5 stay low, 3 leave;
    4 new customers at the second date: 1 high, 3 low.
    """
    before, after = _labels(
        [
            ("high", "high", 6),
            ("high", "low", 3),
            ("high", None, 1),
            ("low", "high", 2),
            ("low", "low", 5),
            ("low", None, 3),
            (None, "high", 1),
            (None, "low", 3),
        ]
    )
    return CustomerMigration(states=["high", "low"]).fit(before, after)


def test_hand_example_counts_and_matrix(three_states):
    m = three_states
    assert m.states_ == ("high", "low", GONE)
    # counts: rows from (the states, then new customers), columns to
    assert m.counts_.index.tolist() == ["high", "low", GONE, NEW]
    assert m.counts_.to_numpy().tolist() == [[6, 3, 1], [2, 5, 3], [0, 0, 0], [1, 3, 0]]
    # each row over its customers: high 6/10 3/10 1/10, low 2/10 5/10 3/10; nobody was
    # gone at the first date, so gone keeps its customers (absorbing)
    np.testing.assert_allclose(
        m.matrix_.to_numpy(), [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.0, 0.0, 1.0]]
    )
    assert m.unobserved_ == (GONE,)
    # new customers: 1 of 4 to high, 3 of 4 to low
    assert m.entry_.tolist() == [0.25, 0.75, 0.0]
    # 6 + 5 of the 20 labelled customers kept their label
    assert m.kept_share_ == pytest.approx(11 / 20)


def test_hand_example_equity_over_two_periods(three_states):
    """R = (high 100, low 20, gone 0) per customer per period, d = 10 % per period, N = 2.

    t = 0: R                           = (100,  20,   0)
    t = 1: P R = (.6·100 + .3·20,  .2·100 + .5·20,  0)          = (66,   30,   0)
           / 1.1                       = (60,   27.272727, 0)
    t = 2: P² R = P (66, 30, 0) = (.6·66 + .3·30,  .2·66 + .5·30,  0) = (48.6, 28.2, 0)
           / 1.1² = / 1.21             = (40.165289, 23.305785, 0)
    V = sum                            = (200.165289, 70.578512, 0)
    """
    reward = {"high": 100.0, "low": 20.0}
    value = three_states.equity(reward, periods=2, discount_rate=0.10)
    np.testing.assert_allclose(
        value.to_numpy(),
        [100 + 60 + 48.6 / 1.21, 20 + 30 / 1.1 + 28.2 / 1.21, 0.0],
        rtol=1e-12,
    )
    assert value["high"] == pytest.approx(200.165289, abs=1e-6)
    assert value["low"] == pytest.approx(70.578512, abs=1e-6)
    # the base at the second date: high 6 + 2 + 1 = 9, low 3 + 5 + 3 = 11, gone 1 + 3 = 4
    start = {"high": 9, "low": 11, GONE: 4}
    # 9 · 200.165289 + 11 · 70.578512 + 4 · 0 = 1801.487603 + 776.363636 = 2577.851240
    assert three_states.base_equity(start, reward, 2, 0.10) == pytest.approx(2577.851240, abs=1e-6)
    # one period on: high 9·.6 + 11·.2 = 7.6, low 9·.3 + 11·.5 = 8.2, gone 9·.1 + 11·.3 + 4 = 8.2
    after = three_states.distribution(start, periods=2)
    np.testing.assert_allclose(after.loc[1].to_numpy(), [7.6, 8.2, 8.2])
    # two: high 7.6·.6 + 8.2·.2 = 6.2, low 7.6·.3 + 8.2·.5 = 6.38, gone 24 − 12.58 = 11.42
    np.testing.assert_allclose(after.loc[2].to_numpy(), [6.2, 6.38, 11.42])
    assert after.sum(axis=1).tolist() == pytest.approx([24, 24, 24])


def test_no_periods_is_the_current_reward_and_no_discount_adds_up(three_states):
    reward = {"high": 100.0, "low": 20.0}
    assert three_states.equity(reward, 0, 0.10).tolist() == [100.0, 20.0, 0.0]
    # d = 0, N = 1: 100 + 66, 20 + 30
    assert three_states.equity(reward, 1, 0.0).tolist() == pytest.approx([166.0, 50.0, 0.0])


@pytest.fixture
def recency_chain() -> CustomerMigration:
    """Pfeifer & Carraway's recency states: a customer in recency state r buys in the next
    period with probability p_r = .30, .20, .15, .05 (r = 1 … 4) and moves to state 1,
    otherwise to r + 1; state 5 has stopped buying for good. Built from counts: 100
    customers in each of states 1–4 at the first date."""
    before, after = _labels(
        [
            ("r1", "r1", 30),
            ("r1", "r2", 70),
            ("r2", "r1", 20),
            ("r2", "r3", 80),
            ("r3", "r1", 15),
            ("r3", "r4", 85),
            ("r4", "r1", 5),
            ("r4", "r5", 95),
        ]
    )
    return CustomerMigration(states=["r1", "r2", "r3", "r4", "r5"]).fit(before, after)


def test_recency_chain_matrix_and_equity(recency_chain):
    """The example's economics: a purchase nets 40, marketing costs 4 a period in states 1–4
    and nothing in state 5, so R = (40 − 4, −4, −4, −4, 0); d = 20 % a period.

    P R  = (.3·36 + .7·(−4), .2·36 + .8·(−4), .15·36 + .85·(−4), .05·36 + .95·0, 0)
         = (8, 4, 2, 1.8, 0)
    P² R = P (8, 4, 2, 1.8, 0)
         = (.3·8 + .7·4, .2·8 + .8·2, .15·8 + .85·1.8, .05·8 + .95·0, 0)
         = (5.2, 3.2, 2.73, 0.4, 0)
    V (N = 2) = R + P R / 1.2 + P² R / 1.44
         = (36 + 6.666667 + 3.611111, −4 + 3.333333 + 2.222222, −4 + 1.666667 + 1.895833,
            −4 + 1.5 + 0.277778, 0)
         = (46.277778, 1.555556, −0.437500, −2.222222, 0)
    """
    P = recency_chain.matrix_
    assert P.columns.tolist() == ["r1", "r2", "r3", "r4", "r5", GONE]
    assert P[GONE].tolist() == [0, 0, 0, 0, 0, 1]  # nobody left the data: gone is unused
    np.testing.assert_allclose(
        P.iloc[:5, :5].to_numpy(),
        [
            [0.30, 0.70, 0, 0, 0],
            [0.20, 0, 0.80, 0, 0],
            [0.15, 0, 0, 0.85, 0],
            [0.05, 0, 0, 0, 0.95],
            [0, 0, 0, 0, 1],
        ],
    )
    assert recency_chain.unobserved_ == ("r5", GONE)  # nobody there at the first date
    reward = {"r1": 36.0, "r2": -4.0, "r3": -4.0, "r4": -4.0, "r5": 0.0}
    value = recency_chain.equity(reward, periods=2, discount_rate=0.20)
    np.testing.assert_allclose(
        value.to_numpy(), [46.277778, 1.555556, -0.4375, -2.222222, 0, 0], atol=1e-6
    )
    # the long run: the sum converges to (I − P / 1.2)^-1 R, the infinite-horizon value
    infinite = recency_chain.equity(reward, periods=None, discount_rate=0.20)
    np.testing.assert_allclose(
        recency_chain.equity(reward, 300, 0.20).to_numpy(), infinite.to_numpy(), atol=1e-9
    )
    # state 1 solved by hand from V = R + P V / 1.2 (V5 = 0):
    # V4 = −4 + .05 V1 / 1.2; V3 = −4 + (.15 V1 + .85 V4) / 1.2; V2 = −4 + (.2 V1 + .8 V3) / 1.2;
    # V1 = 36 + (.3 V1 + .7 V2) / 1.2  →  V1 = 52.319609
    assert infinite["r1"] == pytest.approx(52.319609, abs=1e-6)
    v1 = infinite["r1"]
    v4 = -4 + 0.05 * v1 / 1.2
    v3 = -4 + (0.15 * v1 + 0.85 * v4) / 1.2
    v2 = -4 + (0.2 * v1 + 0.8 * v3) / 1.2
    assert infinite[["r2", "r3", "r4"]].tolist() == pytest.approx([v2, v3, v4], abs=1e-9)
    assert v1 == pytest.approx(36 + (0.3 * v1 + 0.7 * v2) / 1.2, abs=1e-9)


def test_the_infinite_horizon_of_a_second_recency_chain():
    """p = .5, .2, .1 in states 1–3, state 4 absorbing, a purchase worth 100, no marketing
    cost, d = 10 %: V = (I − P / 1.1)^-1 R = (231.076389, 57.291667, 21.006944, 0)."""
    P = [[0.5, 0.5, 0, 0], [0.2, 0, 0.8, 0], [0.1, 0, 0, 0.9], [0, 0, 0, 1]]
    value = discounted_value(P, [100, 0, 0, 0], None, 0.10)
    np.testing.assert_allclose(value, [231.076389, 57.291667, 21.006944, 0], atol=1e-6)


def test_customers_gone_at_the_first_date_and_labels_out_of_order():
    before, after = _labels([("a", "b", 2), (GONE, GONE, 3), ("b", None, 1)])
    m = CustomerMigration().fit(before, after)  # no order given: the labels sorted
    assert m.states_ == ("a", "b", GONE)
    assert m.counts_.loc[GONE].tolist() == [0, 0, 3]
    assert m.matrix_.loc[GONE].tolist() == [0, 0, 1]
    assert m.unobserved_ == ()
    assert np.isnan(m.entry_).all()  # no new customers
    assert m.kept_share_ == 0.0  # 2 moved a → b, 1 left
    long = m.transitions()
    row = long[(long["from_state"] == "a") & (long["to_state"] == "b")].iloc[0]
    assert (row["customers"], row["probability"]) == (2, 1.0)
    assert long[long["from_state"] == NEW]["probability"].isna().all()


def test_errors_name_the_labels_and_counts():
    before, after = _labels([("a", "b", 2), ("a", "zz", 3)])
    with pytest.raises(
        InvalidInputError, match=r"1 label\(s\) not among the states \(a, b\): 'zz' \(3\)"
    ):
        CustomerMigration(states=["a", "b"]).fit(before, after)
    with pytest.raises(InvalidInputError, match="leave it out"):
        CustomerMigration(states=["a", GONE]).fit(before, after)
    twice = pd.Series(["a", "b"], index=["c1", "c1"])
    with pytest.raises(InvalidInputError, match="1 customer id"):
        CustomerMigration().fit(twice, after)
    m = CustomerMigration().fit(before, after)
    with pytest.raises(InvalidInputError, match="no reward for the state"):
        m.equity({"a": 1.0}, 2, 0.1)
    with pytest.raises(InvalidInputError, match="periods must be a whole number"):
        m.equity({"a": 1.0, "b": 1.0, "zz": 0.0}, -1, 0.1)
    with pytest.raises(InvalidInputError, match="discount rate must be a number >= 0"):
        m.equity({"a": 1.0, "b": 1.0, "zz": 0.0}, 2, -0.5)
    with pytest.raises(InvalidInputError, match="unknown state"):
        m.distribution({"x": 3}, 2)


def test_rewards_by_state_and_the_period_rate():
    labels = pd.Series({"c1": "a", "c2": "a", "c3": "b", "c4": None})
    profit = pd.Series({"c1": 10.0, "c3": 4.0, "c4": 100.0})  # c2 bought nothing: 0
    rewards = state_rewards(labels, profit, ["a", "b", "c", GONE])
    assert rewards.to_dict() == {"a": 5.0, "b": 4.0, "c": 0.0, GONE: 0.0}
    # half a year at 10 % a year: 1.1 ** 0.5 − 1
    assert per_period_rate(0.10, 365.25 / 2) == pytest.approx(0.0488088482, abs=1e-9)
