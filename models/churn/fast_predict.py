"""Small-batch prediction for fitted scikit-learn parts, identical to their own results.

A served request usually holds one or a few rows. scikit-learn's estimators are built for
large batches: a ``HistGradientBoostingClassifier`` makes one Python call per tree (about
20 µs each), and a fitted ``Pipeline`` validates its input at every step. The classes here
read the fitted state once and predict with a handful of numpy operations:

- :class:`CompiledForest`: the trees of a binary ``HistGradientBoostingClassifier`` as flat
  node arrays, walked level by level for all trees and rows at once; leaf values are summed
  tree by tree in the booster's order (``np.add.accumulate``), so the raw score equals
  ``decision_function`` bit for bit.
- :class:`CompiledLogistic`: the ``encoded_logistic_pipeline`` of
  :mod:`models.churn.evaluation` (median imputation with indicators, standard scaling, one-hot
  codes, logistic regression) as array arithmetic and lookup tables, building the same
  design matrix and taking the same matrix product as the pipeline.

Both are checked against the estimators they were compiled from (tests/models/
test_fast_predict.py) on random rows with missing values and every category.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CompiledBins", "CompiledForest", "CompiledLogistic", "SMALL_BATCH"]

# Up to this many rows the compiled forest beats the booster's per-tree loop; above it the
# booster's own Cython predictor (the same numbers) is faster.
SMALL_BATCH = 64


class CompiledForest:
    """The trees of a fitted binary ``HistGradientBoostingClassifier`` as flat arrays.

    :meth:`decision_function` takes the same matrix the booster takes and returns the same
    raw log-odds, bit for bit.
    """

    def __init__(self, booster: Any):
        predictors = booster._predictors
        if any(len(trees) != 1 for trees in predictors):
            raise ValueError("only binary classifiers (one tree per iteration) are compiled")
        known, f_idx_map = booster._bin_mapper.make_known_categories_bitsets()
        trees = [trees[0] for trees in predictors]
        sizes = np.array([len(t.nodes) for t in trees], dtype=np.intp)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate([t.nodes for t in trees]) if trees else None
        self.n_trees = len(trees)
        self.baseline = float(np.asarray(booster._baseline_prediction).ravel()[0])
        if nodes is None:
            self.max_depth = 0
            return
        # With categorical features the booster first reorders its input (categorical columns
        # first) and maps category values to ordinal codes (unseen → missing): fold both in.
        column_of, ordinal_codes = _input_mapping(booster)
        shift = np.repeat(offsets, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        here = np.arange(len(nodes), dtype=np.intp)
        # leaves point to themselves, so a walk of max_depth steps ends on every leaf
        self.left = np.where(leaf, here, nodes["left"].astype(np.intp) + shift)
        self.right = np.where(leaf, here, nodes["right"].astype(np.intp) + shift)
        self.feature = column_of[np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)]
        self.threshold = nodes["num_threshold"].astype(float)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.value = nodes["value"].astype(float)
        self.roots = offsets
        self.max_depth = int(nodes["depth"].max())
        self.is_categorical = nodes["is_categorical"].astype(bool) & ~leaf
        self.has_categorical = bool(self.is_categorical.any())
        if self.has_categorical:
            # per categorical split, where each category code 0..255 goes: left when in the
            # split's left set, right when a known category, else as a missing value
            cat_nodes = np.flatnonzero(self.is_categorical)
            table = np.zeros((len(cat_nodes), 256), dtype=bool)  # one row per such split
            codes = np.arange(256)
            unknown = np.zeros(256, dtype=bool)
            raw_left = np.concatenate([t.raw_left_cat_bitsets for t in trees])
            bitset_shift = np.repeat(
                np.concatenate(
                    [[0], np.cumsum([len(t.raw_left_cat_bitsets) for t in trees])[:-1]]
                ).astype(np.intp),
                sizes,
            )
            for row, node in enumerate(cat_nodes):
                feature = nodes["feature_idx"][node]
                mapped, not_mapped = codes, unknown
                if ordinal_codes is not None:  # the booster's ordinal code of each input code
                    mapped, not_mapped = ordinal_codes[feature]
                bitset = raw_left[nodes["bitset_idx"][node] + bitset_shift[node]]
                in_left = _in_bitset(bitset, mapped)
                is_known = _in_bitset(known[f_idx_map[feature]], mapped)
                side = np.where(in_left, True, np.where(is_known, False, self.missing_left[node]))
                table[row] = np.where(not_mapped, self.missing_left[node], side)
            self.cat_left = table
            self.cat_nodes = cat_nodes
            self.cat_rows = np.arange(len(cat_nodes))
            self.cat_missing_left = self.missing_left[cat_nodes]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Raw log-odds of each row of ``X`` (the booster's input matrix).

        Every split of every tree is decided at once for each row (one gather of the split
        features and a few comparisons), giving each node its next node; the walk from the
        roots is then ``max_depth`` gathers.
        """
        X = np.asarray(X, dtype=float)
        n = X.shape[0]
        if self.n_trees == 0:
            return np.full(n, self.baseline)
        x = X[:, self.feature]  # (rows, nodes)
        go_left = x <= self.threshold  # NaN compares False; decided below
        if self.has_categorical:
            xc = x[:, self.cat_nodes]
            code = np.minimum(np.where(xc >= 0, xc, 0), 255).astype(np.intp)
            side = self.cat_left[self.cat_rows, code]
            go_left[:, self.cat_nodes] = np.where(xc < 0, self.cat_missing_left, side)
        go_left = np.where(np.isnan(x), self.missing_left, go_left)
        size = len(self.value)
        shift = (np.arange(n, dtype=np.intp) * size)[:, None]
        child = (np.where(go_left, self.left, self.right) + shift).ravel()
        node = self.roots + shift
        for _ in range(self.max_depth):
            node = child[node]
        leaves = self.value[node - shift]
        total = np.empty((n, self.n_trees + 1))
        total[:, 0] = self.baseline
        total[:, 1:] = leaves
        return np.add.accumulate(total, axis=1)[:, -1]


class CompiledBins:
    """Quantile binning of numeric columns (``searchsorted(edges, x, side="left")``, NaN kept)
    for a few rows at once: every binned column against its padded edges in one comparison.
    The bin of ``x`` is the number of edges below it, which is what ``searchsorted`` returns."""

    def __init__(self, bin_edges: dict[int, np.ndarray | None]):
        binned = [(j, np.asarray(e, dtype=float)) for j, e in bin_edges.items() if e is not None]
        self.columns = np.array([j for j, _ in binned], dtype=np.intp)
        width = max((len(e) for _, e in binned), default=0)
        self.edges = np.full((len(binned), width), np.inf)
        for row, (_, edges) in enumerate(binned):
            self.edges[row, : len(edges)] = edges

    def apply(self, encoded: np.ndarray) -> np.ndarray:
        """``encoded`` with the binned columns replaced by their bin index."""
        out = encoded.copy()
        if len(self.columns):
            x = encoded[:, self.columns]
            bins = (self.edges < x[:, :, None]).sum(axis=2).astype(float)
            out[:, self.columns] = np.where(np.isnan(x), np.nan, bins)
        return out


def _input_mapping(booster: Any) -> tuple[np.ndarray, dict[int, tuple] | None]:
    """The booster's input preprocessing: for each of its internal columns the caller's column,
    and for each internal categorical column the ordinal code of every input code 0..255
    (with a mask of codes it does not know, which it treats as missing)."""
    preprocessor = getattr(booster, "_preprocessor", None)
    n = booster.n_features_in_
    if preprocessor is None:
        return np.arange(n, dtype=np.intp), None
    column_of = np.empty(n, dtype=np.intp)
    ordinal: dict[int, tuple] = {}
    codes = np.arange(256, dtype=float)
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder" and isinstance(transformer, str):
            if np.arange(n)[columns].size:
                raise ValueError("the booster passes remainder columns: not compiled")
            continue
        positions = np.arange(n)[columns]
        out = preprocessor.output_indices_[name]
        column_of[out] = positions
        if name == "encoder":
            for k, internal in enumerate(range(out.start, out.stop)):
                categories = np.asarray(transformer.categories_[k], dtype=float)
                categories = categories[~np.isnan(categories)]
                where = np.searchsorted(categories, codes)
                found = (where < len(categories)) & (
                    categories[np.minimum(where, len(categories) - 1)] == codes
                )
                ordinal[internal] = (np.where(found, where, 0).astype(np.intp), ~found)
        elif name != "numerical":
            raise ValueError(f"unknown booster preprocessing {name!r}: not compiled")
    return column_of, ordinal


def _in_bitset(bitset: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Whether each code 0..255 is in a scikit-learn bitset (8 uint32 words)."""
    words = np.asarray(bitset, dtype=np.uint32)
    return ((words[codes // 32] >> (codes % 32).astype(np.uint32)) & 1).astype(bool)


class CompiledLogistic:
    """A fitted ``encoded_logistic_pipeline`` (see :mod:`models.churn.evaluation`) as arrays.

    :meth:`decision_function` builds the pipeline's design matrix (imputed and scaled numeric
    columns with missing indicators, then one-hot blocks) and takes the same product with the
    coefficients, so it equals ``pipeline.decision_function`` bit for bit.
    """

    def __init__(self, pipeline: Any, n_codes: dict[int, int] | None = None):
        """``n_codes``: for each categorical input column, how many codes the encoder makes
        (the tables then cover codes the one-hot step never saw, as all zeros)."""
        columns = pipeline.named_steps["columns"]
        logistic = pipeline.named_steps["logistic"]
        if len(logistic.classes_) != 2:
            raise ValueError("only binary logistic regressions are compiled")
        self.coef_T = logistic.coef_.T
        self.intercept = logistic.intercept_
        self.numeric: list[int] = []
        self.categorical: list[int] = []
        self.tables: list[np.ndarray] = []
        widths = []
        for name, transformer, index in columns.transformers_:
            if name == "numeric":
                imputer, scaler = transformer.steps[0][1], transformer.steps[1][1]
                statistics = imputer.statistics_
                if np.isnan(statistics).any() and not imputer.keep_empty_features:
                    raise ValueError("an all-missing numeric column: not compiled")
                self.numeric = list(index)
                self.fill = statistics.astype(float)
                indicator = imputer.indicator_
                self.indicator = (
                    np.asarray(indicator.features_, dtype=np.intp)
                    if indicator is not None
                    else np.array([], dtype=np.intp)
                )
                self.mean = scaler.mean_ if scaler.with_mean else None
                self.scale = scaler.scale_ if scaler.with_std else None
                widths.append(len(self.fill) + len(self.indicator))
            elif name == "categorical":
                self.categorical = list(index)
                sizes = [(n_codes or {}).get(j, 0) for j in index]
                self.tables = _one_hot_tables(transformer, sizes)
                widths.append(sum(t.shape[1] for t in self.tables))
            elif name != "remainder":
                raise ValueError(f"unknown pipeline part {name!r}: not compiled")
        if self.tables:  # all one-hot tables as blocks of one table (rows: feature, code)
            heights = [t.shape[0] for t in self.tables]
            starts = np.concatenate([[0], np.cumsum(heights)[:-1]])
            self.first_rows = starts.astype(float)
            self.missing_rows = (starts + np.array(heights) - 1).astype(float)
            self.one_hot = np.zeros((sum(heights), sum(t.shape[1] for t in self.tables)))
            column = 0
            for start, table in zip(starts, self.tables, strict=True):
                rows, width = table.shape
                self.one_hot[start : start + rows, column : column + width] = table
                column += width
        if sum(widths) != self.coef_T.shape[0]:
            raise ValueError("the compiled design matrix does not match the coefficients")

    def design(self, encoded: np.ndarray) -> np.ndarray:
        """The pipeline's transformed matrix of ``encoded`` rows."""
        blocks = []
        if self.numeric:
            x = encoded[:, self.numeric]
            missing = np.isnan(x)
            imputed = np.where(missing, self.fill, x)
            block = np.hstack([imputed, missing[:, self.indicator].astype(float)])
            if self.mean is not None:
                block = block - self.mean
            if self.scale is not None:
                block = block / self.scale
            blocks.append(block)
        if self.categorical:
            codes = encoded[:, self.categorical]
            rows = np.where(np.isnan(codes), self.missing_rows, codes + self.first_rows)
            # each feature's row is zero outside its own block: the sum places the blocks
            blocks.append(self.one_hot[rows.astype(np.intp)].sum(axis=1))
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    def decision_function(self, encoded: np.ndarray) -> np.ndarray:
        """The logistic regression's log-odds of ``encoded`` rows."""
        scores = self.design(encoded) @ self.coef_T + self.intercept
        return scores.reshape(-1)


def _one_hot_tables(encoder: Any, min_codes: list[int]) -> list[np.ndarray]:
    """Per categorical feature, the one-hot output of codes ``0 .. k-1`` and of a missing
    value (last row), read off the fitted ``OneHotEncoder`` itself."""
    tables = []
    n_features = len(min_codes)
    sizes = list(encoder._n_features_outs)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for i in range(n_features):
        known = [c for c in encoder.categories_[i] if not _isnan(c)]
        k = max(int(max(known) + 1) if known else 0, min_codes[i])
        probe = np.tile(
            [_first_known(encoder.categories_[f]) for f in range(n_features)], (k + 1, 1)
        )
        probe = probe.astype(float)
        probe[:, i] = np.append(np.arange(k, dtype=float), np.nan)
        out = encoder.transform(probe)
        out = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
        tables.append(np.ascontiguousarray(out[:, starts[i] : starts[i + 1]], dtype=float))
    return tables


def _isnan(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def _first_known(categories: np.ndarray) -> float:
    return float(categories[0])
