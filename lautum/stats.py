"""Summaries over seeds: mean with a Student-t confidence interval, per group of a results table.

Every table of the book that reports "mean ± CI" goes through :func:`mean_ci` (one
list of values) or :func:`summarize` (a tidy table, grouped). The interval is the
two-sided t-interval of the mean, :math:`\\bar x \\pm t_{1-(1-\\ell)/2,\\,n-1}\\, s/\\sqrt n`,
with :math:`s` the sample standard deviation (``ddof=1``). It assumes the seeds are
independent draws; with ``n = 1`` it is undefined and reported as NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

__all__ = ["MeanCI", "mean_ci", "summarize", "paired_difference", "welch_t"]


class MeanCI(NamedTuple):
    """A mean and the half-width of its confidence interval (``low``/``high`` for convenience)."""

    mean: float
    half_width: float
    n: int
    std: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, scale: float = 1.0, digits: int = 1) -> str:
        """``"82.1 ± 0.9"`` (values multiplied by ``scale``, e.g. 100 for percent)."""
        return f"{self.mean * scale:.{digits}f} ± {self.half_width * scale:.{digits}f}"


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
    """Mean and two-sided Student-t confidence half-width of ``values``.

    Parameters
    ----------
    values : sequence of float
        One value per seed (NaNs are not removed: a NaN gives a NaN mean).
    level : float, default 0.95
        Coverage of the interval.

    Returns
    -------
    MeanCI
        ``(mean, half_width, n, std)``; ``half_width`` is NaN when ``n < 2``.

    Examples
    --------
    For 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.3027, half-width 4.3027/sqrt(3) = 2.4841.

    >>> r = mean_ci([1.0, 2.0, 3.0])
    >>> round(r.mean, 4), round(r.half_width, 4), r.n
    (2.0, 2.4841, 3)
    >>> round(mean_ci([1.0, 2.0, 3.0], level=0.5).half_width, 4)
    0.4714
    >>> math.isnan(mean_ci([5.0]).half_width)
    True
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = sum(xs) / n
    if n < 2:
        return MeanCI(mean, math.nan, n, math.nan)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    t = float(stats.t.ppf(1 - (1 - level) / 2, n - 1))
    return MeanCI(mean, t * std / math.sqrt(n), n, std)


def summarize(table, by: Sequence[str], metric: str, level: float = 0.95):
    """Mean ± t-interval of ``metric`` per group of ``by`` in a tidy table.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run (e.g. :meth:`lautum.sweep.SweepResult.table`).
    by : list of str
        Grouping columns (e.g. ``["target", "method"]``); the seeds are what is averaged over.
    metric : str
        Column to summarise.
    level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        Columns ``by + ["mean", "ci", "low", "high", "std", "n"]`` (``ci`` = half-width).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"method": ["a", "a", "a", "b", "b"], "acc": [1.0, 2.0, 3.0, 4.0, 6.0]})
    >>> s = summarize(t, by=["method"], metric="acc")
    >>> s[["method", "mean", "n"]].to_dict("records")
    [{'method': 'a', 'mean': 2.0, 'n': 3}, {'method': 'b', 'mean': 5.0, 'n': 2}]
    >>> round(float(s.loc[0, "ci"]), 4)
    2.4841
    """
    import pandas as pd

    by = list(by)
    if metric not in table.columns:
        raise KeyError(f"no column {metric!r} in the table; columns are {list(table.columns)}")
    rows = []
    for key, group in table.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        r = mean_ci(group[metric].tolist(), level)
        rows.append({**dict(zip(by, key, strict=True)), "mean": r.mean, "ci": r.half_width, "low": r.low,
                     "high": r.high, "std": r.std, "n": r.n})
    return pd.DataFrame(rows, columns=by + ["mean", "ci", "low", "high", "std", "n"])


def welch_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's two-sample t statistic and two-sided p-value for ``mean(a) - mean(b)``.

    >>> t, p = welch_t([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> t, p
    (0.0, 1.0)
    """
    from scipy import stats

    res = stats.ttest_ind(list(a), list(b), equal_var=False)
    return float(res.statistic), float(res.pvalue)


def paired_difference(table, a: str, b: str, *, metric: str, column: str = "method", pair_on: str = "seed",
                      by: Sequence[str] = (), level: float = 0.95):
    """Mean ± t-interval of ``metric[a] - metric[b]``, paired on ``pair_on`` (e.g. the same seed), per ``by``.

    Runs with the same seed share the source model and the data split, so the
    paired difference removes that variation (a sharper test than comparing two
    unpaired intervals).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"method": ["x"] * 3 + ["y"] * 3, "seed": [0, 1, 2] * 2,
    ...                   "acc": [0.6, 0.7, 0.8, 0.5, 0.6, 0.7]})
    >>> d = paired_difference(t, "x", "y", metric="acc")
    >>> round(float(d.loc[0, "mean"]), 6), round(float(d.loc[0, "ci"]), 6), int(d.loc[0, "n"])
    (0.1, 0.0, 3)
    """
    import pandas as pd

    by = list(by)
    rows = []
    groups = table.groupby(by, sort=True) if by else [((), table)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        xa = group[group[column] == a].set_index(pair_on)[metric]
        xb = group[group[column] == b].set_index(pair_on)[metric]
        common = xa.index.intersection(xb.index)
        if len(common) == 0:
            continue
        r = mean_ci((xa.loc[common] - xb.loc[common]).tolist(), level)
        rows.append({**dict(zip(by, key, strict=True)), "a": a, "b": b, "mean": r.mean, "ci": r.half_width,
                     "low": r.low, "high": r.high, "n": r.n})
    return pd.DataFrame(rows, columns=by + ["a", "b", "mean", "ci", "low", "high", "n"])
