"""Behaviour clusters: K-means on standardised behaviour features, K by silhouette.

As in banks' mobile-app segmentation: behaviour features per customer, K-means for
K = ``k_min`` .. ``k_max`` (2..10), K chosen by the highest mean silhouette coefficient
(computed on a fixed random sample of ``sample_size`` customers when there are more, since the
exact silhouette is quadratic in the number of customers; one pass over that sample's pairwise
distances scores every K). With more than ``fit_sample_size`` customers the K search runs on
a fixed random sample of that many (the silhouette sample is part of it) and every customer
then joins the nearest centre of the chosen K, so the cost of the search does not grow with
the data. Count, money and day features are
log-scaled (sign · log(1 + |x|)) before standardising, so that a few very large customers do
not pull the centroids (K-means is sensitive to outliers); missing values
are imputed with the training median.

Every cluster gets a profile (size, share and mean of each feature in original units) and a
readable name generated from its most distinctive traits: the features on which the
cluster's centroid lies at least ``trait_threshold`` standard deviations from the centroid of
the other customers, the largest first, e.g. "Frequent, recently active customers". The traits are the playbook's labels of the ``behaviour``
scheme (:data:`BEHAVIOUR_TRAITS`), so each cluster gets a description and actions (see
:func:`models.playbook.describe_cluster`).

Stable ids across retrains: fit with ``reference=<the champion model>`` (or call
``align_to(champion)`` after fitting) and the new clusters are matched one-to-one to the
champion's by the Hungarian algorithm on centroid distances, measured in the champion's
standardised space; matched clusters keep the champion's id, new clusters get ids never used
before, and the champion's unmatched ids retire (``alignment_`` records which). Without a
reference, ids are 0..K−1 by decreasing size.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans

from models.exceptions import InvalidInputError
from models.segments.base import check_fitted, check_not_empty, require_columns, values

DEFAULT_BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "n_purchases",
    "avg_order_value",
    "days_since_last",
    "tenure_days",
    "n_channels",
    "activity_trend",
)
# K is searched on a random sample of this many customers when there are more; every customer
# then joins the nearest centre of the chosen K (Lloyd iterations on all customers from these
# centres can drift to a worse local optimum: silhouette 0.264 instead of 0.303 on the 1 M
# synthetic set). On 1,000,000 synthetic customers the search took about 10 s on 50,000
# customers and 150 s on all (which chose K = 3, silhouette 0.282; the sample: K = 2, 0.303).
FIT_SAMPLE_SIZE = 50_000
# Skewed non-negative (or signed money) columns of the summary that are log-scaled.
LOG_SCALED: frozenset[str] = frozenset(
    {
        "frequency",
        "n_purchases",
        "n_transactions",
        "total_revenue",
        "avg_order_value",
        "monetary_value",
        "total_profit",
        "profit_per_purchase",
        "days_since_last",
        "tenure_days",
        "recency",
        "T",
        "purchases_recent",
        "purchases_earlier",
        "spend_recent",
        "spend_earlier",
    }
)
# feature → (trait when low, trait when high); the trait keys are playbook labels.
FEATURE_TRAITS: dict[str, tuple[str, str]] = {
    "n_purchases": ("occasional", "frequent"),
    "frequency": ("occasional", "frequent"),
    "n_transactions": ("occasional", "frequent"),
    "avg_order_value": ("small_basket", "big_basket"),
    "monetary_value": ("small_basket", "big_basket"),
    "total_revenue": ("low_spending", "high_spending"),
    "days_since_last": ("recently_active", "lapsing"),
    "tenure_days": ("new", "long_standing"),
    "T": ("new", "long_standing"),
    "n_channels": ("single_channel", "multi_channel"),
    "activity_trend": ("slowing", "growing"),
    "spend_trend": ("spending_less", "spending_more"),
    "margin_rate": ("low_margin", "high_margin"),
}
TYPICAL = "typical"
BEHAVIOUR_TRAITS: tuple[str, ...] = (
    *dict.fromkeys(t for pair in FEATURE_TRAITS.values() for t in pair),
    TYPICAL,
)
_WORDS = {
    "small_basket": "small-basket",
    "big_basket": "big-basket",
    "low_spending": "low-spending",
    "high_spending": "high-spending",
    "long_standing": "long-standing",
    "single_channel": "single-channel",
    "multi_channel": "multi-channel",
    "low_margin": "low-margin",
    "high_margin": "high-margin",
}


def _trait(feature: str, high: bool) -> str:
    pair = FEATURE_TRAITS.get(feature)
    if pair is None:
        return f"{'high' if high else 'low'}_{feature}"
    return pair[int(high)]


def _word(trait: str) -> str:
    return _WORDS.get(trait, trait.replace("_", " "))


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _silhouette_scores(
    z: np.ndarray, labelings: dict[int, np.ndarray], chunk: int = 512
) -> dict[int, float]:
    """Mean silhouette coefficient of each labelling of the rows of ``z``, as
    ``sklearn.metrics.silhouette_score`` computes it (labellings with fewer than two clusters,
    or as many clusters as rows, are left out), from one pass over the pairwise distances:
    each chunk of rows' distances to all rows is multiplied by the one-hot matrix of every
    labelling at once, which gives each row's summed distance to each cluster."""
    n = len(z)
    usable = {k: lab for k, lab in labelings.items() if 2 <= len(np.unique(lab)) <= n - 1}
    if not usable:
        return {}
    codes, offsets, total = [], [], 0
    for lab in usable.values():
        kinds, inverse = np.unique(lab, return_inverse=True)
        codes.append(inverse + total)
        offsets.append((total, len(kinds)))
        total += len(kinds)
    onehot = np.zeros((n, total))
    for code in codes:
        onehot[np.arange(n), code] = 1.0
    sums = np.empty((n, total))
    squares = np.einsum("ij,ij->i", z, z)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d2 = squares[start:stop, None] + squares[None, :] - 2.0 * (z[start:stop] @ z.T)
        distances = np.sqrt(np.maximum(d2, 0.0))
        distances[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sums[start:stop] = distances @ onehot
    rows = np.arange(n)
    out = {}
    for k, code, (offset, width) in zip(usable, codes, offsets, strict=True):
        block = sums[:, offset : offset + width]
        own = code - offset
        sizes = onehot[:, offset : offset + width].sum(axis=0)
        own_size = sizes[own]
        intra = block[rows, own] / np.maximum(own_size - 1, 1)
        means = block / sizes
        means[rows, own] = np.inf
        inter = means.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = (inter - intra) / np.maximum(intra, inter)
        score = np.where(own_size > 1, np.nan_to_num(score), 0.0)
        out[k] = float(score.mean())
    return out


def _nearest(z: np.ndarray, centers: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Index of the nearest centre of each row (in chunks of rows: bounded memory)."""
    return np.concatenate(
        [cdist(z[i : i + chunk], centers).argmin(axis=1) for i in range(0, len(z), chunk)]
    )


def _reference_state(model: Any) -> dict[str, Any]:
    """The plain-data centroid reference of a fitted model (or such a dict itself)."""
    if isinstance(model, dict):
        return model
    check_fitted(model, "centers_")
    return model.centroid_reference()


class BehaviourClusters(BaseEstimator):
    """K-means behaviour clusters with K chosen by silhouette and ids stable across retrains.

    - ``k_min``, ``k_max``: the K searched (inclusive; capped at customers − 1).
    - ``features``: columns of the per-customer table; ``None`` =
      :data:`DEFAULT_BEHAVIOUR_FEATURES`. Columns all-missing or constant at fit time are
      dropped (e.g. ``n_channels`` without channel data).
    - ``log_features``: columns log-scaled before standardising; ``None`` = the features in
      :data:`LOG_SCALED`.
    - ``sample_size``: customers in the silhouette sample when there are more.
    - ``n_init``, ``random_state``: K-means restarts and seed (fits are reproducible).
    - ``fit_sample_size``: customers the K search runs on when there are more (every
      customer then joins the nearest centre found on that sample).
    - ``reference``: a fitted champion (or its :meth:`centroid_reference`) whose ids the
      new clusters take. ``sklearn.base.clone`` would clone a model given here unfitted; pass
      ``champion.centroid_reference()`` or call :meth:`align_to` when cloning.
    - ``trait_threshold``, ``max_traits``: how far (standard deviations) a centroid must be
      from the rest of the population for a trait, and how many traits a name uses.

    Fitted: ``n_clusters_``, ``labels_`` (training ids), ``cluster_ids_``, ``centers_``
    (standardised, one row per id of ``cluster_ids_``), ``silhouette_scores_`` ({K: mean
    silhouette}, for the curve), ``silhouette_`` (of the chosen K), ``search_size_``
    (customers the K search ran on), ``profiles_``
    (DataFrame by id: ``name``, ``traits``, ``size``, ``share`` and feature means in original
    units), ``names_`` and ``traits_`` (by id), ``segment_sizes_`` (id → customers),
    ``features_``, ``alignment_`` (None without reference).
    """

    scheme = "behaviour"
    label_column = "cluster"

    def __init__(
        self,
        k_min: int = 2,
        k_max: int = 10,
        features: list[str] | tuple[str, ...] | None = None,
        log_features: list[str] | tuple[str, ...] | None = None,
        sample_size: int = 10_000,
        n_init: int = 4,
        fit_sample_size: int = FIT_SAMPLE_SIZE,
        random_state: int = 0,
        reference: Any = None,
        trait_threshold: float = 0.5,
        max_traits: int = 2,
    ):
        self.k_min = k_min
        self.k_max = k_max
        self.features = features
        self.log_features = log_features
        self.sample_size = sample_size
        self.n_init = n_init
        self.fit_sample_size = fit_sample_size
        self.random_state = random_state
        self.reference = reference
        self.trait_threshold = trait_threshold
        self.max_traits = max_traits

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("fit_sample_size", FIT_SAMPLE_SIZE)  # models saved before it

    # --- features -------------------------------------------------------------------------
    def _raw(self, table: pd.DataFrame, features: list[str]) -> np.ndarray:
        require_columns(table, features)
        return np.column_stack([values(table, c) for c in features])

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        """Impute, log-scale, before standardising."""
        x = np.where(np.isfinite(raw), raw, self.medians_)
        return np.where(self.log_mask_, _signed_log(x), x)

    def standardised(self, table: pd.DataFrame) -> pd.DataFrame:
        """The standardised feature matrix the clusters live in (columns ``features_``)."""
        check_fitted(self, "centers_")
        z = (self._scaled(self._raw(table, self.features_)) - self.mean_) / self.scale_
        return pd.DataFrame(z, index=table.index, columns=self.features_)

    # --- fitting --------------------------------------------------------------------------
    def fit(self, table: pd.DataFrame, y: Any = None) -> BehaviourClusters:
        """Search K, fit the clusters, profile and name them (aligned to ``reference``)."""
        check_not_empty(table, self)
        if not 2 <= self.k_min <= self.k_max:
            raise InvalidInputError("need 2 <= k_min <= k_max", field="k_min")
        if self.sample_size < 2:
            raise InvalidInputError("sample_size must be >= 2", field="sample_size")
        if self.fit_sample_size < self.k_min + 1:
            raise InvalidInputError(
                "fit_sample_size must be larger than k_min", field="fit_sample_size"
            )
        wanted = list(DEFAULT_BEHAVIOUR_FEATURES if self.features is None else self.features)
        if not wanted:
            raise InvalidInputError("features must name at least one column", field="features")
        raw = self._raw(table, wanted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            spread = np.nanstd(raw, axis=0)
        keep = [j for j in range(len(wanted)) if spread[j] > 0]
        if not keep:
            raise InvalidInputError(
                f"no usable behaviour feature among {wanted}: all missing or constant",
                field="features",
            )
        self.features_ = [wanted[j] for j in keep]
        raw = raw[:, keep]
        logged = set(LOG_SCALED if self.log_features is None else self.log_features)
        self.log_mask_ = np.array([c in logged for c in self.features_])
        self.medians_ = np.nanmedian(raw, axis=0)
        scaled = self._scaled(raw)
        self.mean_ = scaled.mean(axis=0)
        self.scale_ = np.where(scaled.std(axis=0) > 0, scaled.std(axis=0), 1.0)
        z = (scaled - self.mean_) / self.scale_

        n = len(z)
        k_max = min(self.k_max, n - 1, self.fit_sample_size - 1)
        if k_max < self.k_min:
            raise InvalidInputError(
                f"need at least {self.k_min + 1} customers to compare {self.k_min} clusters"
            )
        # Search K on a fixed random sample of ``fit_sample_size`` customers; the silhouette
        # sample is the first ``sample_size`` of them (sklearn's silhouette_score sample).
        order = np.random.RandomState(self.random_state).permutation(n)
        if n > self.fit_sample_size:
            sampled = np.sort(order[: self.fit_sample_size])
            probe = order[: min(self.sample_size, self.fit_sample_size)]
            probe_at = np.searchsorted(sampled, probe)
            search: np.ndarray | None = sampled
            z_search = z[sampled]
        else:
            search, z_search = None, z
            probe = order[: self.sample_size] if n > self.sample_size else np.arange(n)
            probe_at = probe
        self.search_size_ = len(z_search)
        fits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for k in range(self.k_min, k_max + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fewer distinct points than k
                km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
                labels = km.fit_predict(z_search)
            if len(np.unique(labels)) == k:  # else degenerate: fewer than k distinct clusters
                fits[k] = (labels, km.cluster_centers_)
        self.silhouette_scores_: dict[int, float] = _silhouette_scores(
            z[probe], {k: labels[probe_at] for k, (labels, _) in fits.items()}
        )
        if not self.silhouette_scores_:
            raise InvalidInputError("the behaviour features do not separate any clusters")
        self.n_clusters_ = max(
            self.silhouette_scores_, key=lambda k: (self.silhouette_scores_[k], -k)
        )
        self.silhouette_ = self.silhouette_scores_[self.n_clusters_]
        labels, centers = fits[self.n_clusters_]
        if search is not None:  # every customer joins the nearest of the sample's centres
            labels = _nearest(z, centers)

        # Initial ids 0..K-1 by decreasing size (ties by the centre's coordinates).
        counts = np.bincount(labels, minlength=len(centers))
        order = np.lexsort((*centers.T[::-1], -counts))
        self.centers_ = centers[order]
        self.cluster_ids_ = np.arange(len(order))
        self.next_id_ = len(order)
        position = np.empty(len(order), dtype=int)
        position[order] = np.arange(len(order))
        positions = position[labels]
        self.labels_ = self.cluster_ids_[positions]
        means = pd.DataFrame(raw, columns=self.features_).groupby(positions).mean()
        self._profile(means.reindex(range(len(order))), np.bincount(positions))
        self.alignment_: dict[str, Any] | None = None
        if self.reference is not None:
            self.align_to(self.reference)
        return self

    def _profile(self, means: pd.DataFrame, counts: np.ndarray) -> None:
        """Names, traits and profiles by id from per-position feature means and sizes."""
        k = len(self.cluster_ids_)
        total = max(int(counts.sum()), 1)
        ranked: list[list[str]] = []
        n_traits: list[int] = []
        for i in range(k):
            # Contrast with the rest of the population: the standardised centroid of the
            # others is −n·c/(N − n), so centroid − rest = c · N/(N − n).
            z = self.centers_[i] * total / max(total - int(counts[i]), 1)
            order = np.argsort(-np.abs(z), kind="stable")
            ranked.append([_trait(self.features_[j], bool(z[j] > 0)) for j in order])
            strong = int((np.abs(z) >= self.trait_threshold).sum())
            n_traits.append(min(strong, self.max_traits))
        names = [self._name(ranked[i][: n_traits[i]]) for i in range(k)]
        for _ in range(len(self.features_)):  # lengthen clashing names with further traits
            clashing = [i for i in range(k) if names.count(names[i]) > 1]
            if not clashing:
                break
            for i in clashing:
                n_traits[i] = min(n_traits[i] + 1, len(ranked[i]))
                names[i] = self._name(ranked[i][: n_traits[i]])
        ids = [int(c) for c in self.cluster_ids_]
        for i in range(k):
            if names.count(names[i]) > 1:
                names[i] = f"{names[i]} (cluster {ids[i]})"
        self.traits_ = {ids[i]: ranked[i][: n_traits[i]] or [TYPICAL] for i in range(k)}
        self.names_ = dict(zip(ids, names, strict=True))
        profiles = pd.DataFrame(
            {
                "name": names,
                "traits": ["|".join(self.traits_[c]) for c in ids],
                "size": counts.astype(int),
                "share": counts / max(counts.sum(), 1),
            },
            index=pd.Index(ids, name="cluster"),
        )
        profiles = profiles.join(means.set_axis(profiles.index, axis=0))
        self.profiles_ = profiles.sort_index()
        self.segment_sizes_ = dict(
            zip(self.profiles_.index.tolist(), self.profiles_["size"].tolist(), strict=True)
        )

    @staticmethod
    def _name(traits: list[str]) -> str:
        if not traits:
            return "Typical customers"
        text = ", ".join(_word(t) for t in traits)
        return f"{text[0].upper()}{text[1:]} customers"

    # --- stable ids -----------------------------------------------------------------------
    def centroid_reference(self) -> dict[str, Any]:
        """What a later model needs to take over this model's ids (plain, picklable data)."""
        check_fitted(self, "centers_")
        return {
            "features": list(self.features_),
            "mean": self.mean_.copy(),
            "scale": self.scale_.copy(),
            "centers": self.centers_.copy(),
            "cluster_ids": self.cluster_ids_.copy(),
            "next_id": int(self.next_id_),
        }

    def align_to(self, previous: Any) -> BehaviourClusters:
        """Renumber the clusters to match ``previous`` (a fitted model or its reference).

        Hungarian matching (``scipy.optimize.linear_sum_assignment``) on the Euclidean
        distances between centroids in the previous model's standardised space. Returns self.
        """
        check_fitted(self, "centers_")
        ref = _reference_state(previous)
        if list(ref["features"]) != list(self.features_):
            raise InvalidInputError(
                f"cannot align clusters on features {self.features_} to a model on "
                f"{list(ref['features'])}",
                field="reference",
            )
        # Own centroids → the shared (log-scaled) units → the previous standardised space.
        centers = (self.centers_ * self.scale_ + self.mean_ - ref["mean"]) / ref["scale"]
        cost = cdist(centers, ref["centers"])
        rows, cols = linear_sum_assignment(cost)
        new_ids = np.full(len(centers), -1, dtype=int)
        new_ids[rows] = np.asarray(ref["cluster_ids"])[cols]
        next_id = max(int(ref["next_id"]), int(np.max(ref["cluster_ids"])) + 1)
        fresh = []
        for i in np.flatnonzero(new_ids < 0):  # more clusters than before: unused ids
            new_ids[i] = next_id
            fresh.append(next_id)
            next_id += 1
        old_to_new = dict(zip(self.cluster_ids_.tolist(), new_ids.tolist(), strict=True))
        positions = {c: i for i, c in enumerate(self.cluster_ids_.tolist())}
        means = self.profiles_[self.features_].rename(index=positions).sort_index()
        counts = self.profiles_["size"].rename(index=positions).sort_index().to_numpy()
        self.labels_ = np.array([old_to_new[c] for c in self.labels_.tolist()], dtype=int)
        self.cluster_ids_ = new_ids
        self.next_id_ = next_id
        self._profile(means, counts)
        matched = {int(new_ids[r]): float(cost[r, c]) for r, c in zip(rows, cols, strict=True)}
        self.alignment_ = {
            "matched": matched,
            "new": fresh,
            "retired": sorted(set(map(int, ref["cluster_ids"])) - set(matched)),
        }
        return self

    # --- prediction -----------------------------------------------------------------------
    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Columns ``cluster`` (stable integer id) and ``cluster_name`` (generated name)."""
        z = self.standardised(table).to_numpy()
        nearest = cdist(z, self.centers_).argmin(axis=1) if len(z) else np.empty(0, dtype=int)
        ids = self.cluster_ids_[nearest]
        names = np.array([self.names_[c] for c in self.cluster_ids_.tolist()], dtype=object)
        return pd.DataFrame(
            {
                "cluster": ids.astype(np.int64),
                "cluster_name": pd.array(names[nearest], dtype="str"),
            },
            index=table.index,
        )
