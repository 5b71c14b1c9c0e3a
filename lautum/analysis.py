"""From run records to what the book shows: tables, hyperparameter selection, paired differences, verdicts.

One pipeline, the same for every experiment, made of pure functions (pandas in, pandas out):

1. :func:`tidy` turns records (:func:`lautum.records.load_records`) into a table, one row per run;
2. :func:`select_on_validation` picks a hyperparameter on the validation metric, and
   :func:`apply_selection` keeps the rows at the picked values;
3. :func:`paired` computes paired differences (same seed) between two methods;
4. a verdict rule turns a set of paired differences into a :class:`Verdict`;
5. :func:`summary` writes mean ± CI tables for readers, :func:`provenance_label` says where the numbers come from.

Intervals and means come from :mod:`lautum.stats` (:func:`~lautum.stats.mean_ci`,
:func:`~lautum.stats.summarize`). Accuracies are fractions; the ``scale`` arguments
(default 100) only change how numbers are written.

Verdict rules
-------------
Each claim of a paper is tested on the paired differences :math:`d_i = a_i - b_i`
over :math:`n` seeds, with mean :math:`\\bar d`, sample standard deviation :math:`s`
and the two-sided Student-t interval at level :math:`1-\\alpha`,
:math:`\\bar d \\pm t_{1-\\alpha/2,\\,n-1}\\, s/\\sqrt n`.

**R1 superiority** (:func:`superiority`), for "A beats B (by more than a margin m)":
*reproduced* if the interval lies above :math:`m`; *not reproduced* if its upper end
is below :math:`m` (the data contradict the claim); otherwise *inconclusive*.

**R2 equivalence** (:func:`equivalence`), for "A is no better than B" / "no difference"
claims, with a declared margin :math:`m > 0`: the two one-sided tests (TOST) at level
:math:`\\alpha`; *equivalent* if both reject (the :math:`1-2\\alpha` interval lies
inside :math:`(-m, m)`); *not equivalent* if the :math:`1-\\alpha` interval lies
entirely outside :math:`[-m, m]`; otherwise *inconclusive*. A difference whose
interval merely contains 0 is never evidence of equivalence.

**R2b non-superiority** (:func:`non_superiority`), for "A is no better than B" claims
(one-sided: A may be worse), with a declared margin :math:`m > 0`: the upper one-sided
test of TOST at level :math:`\\alpha`; *reproduced* if it rejects
:math:`H_0: \\mu \\ge m` (the upper end of the :math:`1-2\\alpha` interval, i.e. the
one-sided :math:`1-\\alpha` upper bound, lies below :math:`m`); *not reproduced* if the
:math:`1-\\alpha` interval lies entirely above :math:`m`; otherwise *inconclusive*. As
for R2, an interval that reaches 0 is never evidence for the claim.

**R3 Holm family** (:func:`superiority_family`), for several secondary claims of one
paper: R1's one-sided t tests, with Holm–Bonferroni step-down adjustment
(:func:`holm`) over the claims; *reproduced* only where Holm rejects "A does not beat
B", *not reproduced* only where Holm rejects "A beats B".

**R4 every** (:func:`all_of`), for a claim made for every target (or every k): the
claim's verdicts in each cell combine into *reproduced* (*equivalent*) if all are,
*not reproduced* (*not equivalent*) if one is, otherwise *inconclusive*. R1 and R2b
verdicts (both *reproduced* / *not reproduced*) combine with each other, not with R2's.

**R5 inconclusive**: whatever the rules do not decide (including fewer than two
seeds) is *inconclusive*, stated with the design's detectable effect
(:func:`detectable_effect`): the smallest true mean difference that a two-sided
paired t test at :math:`\\alpha = 1 - \\text{level}` detects with 80% power, given
the observed :math:`s` and :math:`n`, from the noncentral t distribution.

Hyperparameters (**R0**, :func:`select_on_validation`) are chosen on the validation
metric only: the value with the best mean over seeds; a value at which any seed
diverged is not eligible; ties within :data:`TIE_TOLERANCE` go to the smaller value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as distributions

from lautum.stats import MeanCI, mean_ci
from lautum.stats import summarize as summarize_groups

__all__ = ["TIE_TOLERANCE", "POWER", "tidy", "select_on_validation", "apply_selection", "paired", "Verdict",
           "detectable_effect", "superiority", "equivalence", "non_superiority", "holm", "superiority_family",
           "all_of", "verdicts", "summary", "provenance_label"]

#: Two mean validation metrics closer than this are a tie (float noise of averaging over seeds).
TIE_TOLERANCE = 1e-12
#: The power at which :func:`detectable_effect` states the detectable effect.
POWER = 0.80

_RUN_COLUMNS = ("experiment", "method", "seed", "profile")
_SUPERIORITY = "superiority"
_EQUIVALENCE = "equivalence"
_NON_SUPERIORITY = "non-superiority"


# -- 1. the tidy table -------------------------------------------------------------------------------------------
def _union(dicts: Iterable[dict]) -> list[str]:
    """The keys of all ``dicts``, sorted (as in the record files, written with sorted keys)."""
    return sorted({key for d in dicts for key in d})


def _is_diverged(metrics: dict[str, Any]) -> bool:
    """``metrics["diverged"]`` is truthy, or an accuracy/loss metric (name ending in acc/loss) is not finite."""
    if metrics.get("diverged"):
        return True
    return any(name.endswith(("acc", "loss")) and isinstance(value, (int, float)) and not math.isfinite(value)
               for name, value in metrics.items())


def tidy(records: Sequence[dict], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per run: what the run was, what it measured, whether it diverged, which commit made it.

    Parameters
    ----------
    records : list of dict
        Run records as returned by :func:`lautum.records.load_records`.
    metrics : list of str, optional
        The metrics to keep as columns (default: every metric of any record; a
        record lacking one gets NaN).

    Returns
    -------
    pandas.DataFrame
        Columns ``experiment, method, seed, profile``, then every ``params`` key (a
        record without one gets a missing value; keys sorted by name), the metrics
        (as chosen, or sorted by name), ``elapsed_s``, ``diverged`` and
        ``git_commit``. ``diverged`` is true when the record's
        ``metrics["diverged"]`` is truthy or a metric whose name ends in ``acc`` or
        ``loss`` is not finite. Rows are sorted by experiment, profile, method, the
        params (in column order) and seed, so the same records give the same table
        in whatever order they come (columns and rows).

    Examples
    --------
    >>> recs = [{"experiment": "x", "method": "m", "seed": s, "profile": "quick", "params": {"k": 5},
    ...          "metrics": {"acc": acc}, "elapsed_s": 1.0, "provenance": {"git_commit": "abc"}}
    ...         for s, acc in ((1, float("nan")), (0, 0.5))]
    >>> tidy(recs)[["seed", "k", "acc", "diverged"]].to_dict("records")
    [{'seed': 0, 'k': 5, 'acc': 0.5, 'diverged': False}, {'seed': 1, 'k': 5, 'acc': nan, 'diverged': True}]
    """
    params = _union(r.get("params", {}) for r in records)
    chosen = list(metrics) if metrics is not None else [m for m in _union(r["metrics"] for r in records)
                                                        if m != "diverged"]
    clash = set(chosen) & {*_RUN_COLUMNS, *params, "elapsed_s", "git_commit"}
    if clash:
        raise ValueError(f"metric names {sorted(clash)} clash with run or params columns")
    rows = []
    for r in records:
        row = {key: r[key] for key in _RUN_COLUMNS}
        row.update({p: r.get("params", {}).get(p) for p in params})
        row.update({m: r["metrics"].get(m, math.nan) for m in chosen})
        row.update(elapsed_s=r["elapsed_s"], diverged=_is_diverged(r["metrics"]),
                   git_commit=r["provenance"].get("git_commit"))
        rows.append(row)
    columns = [*_RUN_COLUMNS, *params, *chosen, "elapsed_s", "diverged", "git_commit"]
    table = pd.DataFrame(rows, columns=columns)
    order = ["experiment", "profile", "method", *params, "seed"]
    return table.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)


# -- 2. hyperparameter selection on validation -------------------------------------------------------------------
def select_on_validation(table: pd.DataFrame, param: str, by: Sequence[str], metric: str = "target_val_acc",
                         higher_is_better: bool = True, tie: str = "smaller",
                         seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Per group of ``by``, the value of ``param`` with the best mean validation metric over seeds.

    With :math:`\\bar v(\\theta) = \\frac{1}{n_\\theta}\\sum_{s} v_s(\\theta)` the mean
    of ``metric`` over the seeds run at value :math:`\\theta`, the selection is

    .. math:: \\hat\\theta = \\operatorname{arg\\,max}_{\\theta \\in E}\\ \\bar v(\\theta)

    (arg min when ``higher_is_better`` is false), over the eligible values :math:`E`:
    those at which no seed diverged (``diverged`` column true, or ``metric`` not
    finite). Values whose means are within :data:`TIE_TOLERANCE` of the best tie, and
    the tie goes to the smaller value (``tie="smaller"``) or the larger. A group with
    no eligible value gets no selection and is flagged (``none_eligible``).

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`tidy` table. Rows without a value of ``param`` (a method that has no
        such hyperparameter) take no part.
    param : str
        The hyperparameter column, e.g. ``"lam"`` or ``"alpha"``.
    by : list of str
        The groups, each with its own selection, e.g. ``["method", "k"]``.
    metric : str, default "target_val_acc"
        The validation metric (never a test metric).
    higher_is_better : bool, default True
    tie : {"smaller", "larger"}
    seeds : list of int, optional
        Only these seeds are used (tuning seeds, disjoint from the evaluation seeds).

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, ``param`` (NaN when none eligible),
        ``mean_<metric>``, ``n`` (seeds at the selected value), ``n_eligible``
        (eligible values), ``on_grid_edge`` (the selected value is the smallest or
        largest value tried in the group, so the grid may need extending) and
        ``none_eligible``.

    Examples
    --------
    >>> t = pd.DataFrame({"method": "m", "seed": [0, 1, 0, 1, 0, 1], "lam": [0.1, 0.1, 1.0, 1.0, 10.0, 10.0],
    ...                   "val": [0.6, 0.8, 0.7, 0.7, 0.9, float("nan")]})
    >>> s = select_on_validation(t, "lam", by=["method"], metric="val")
    >>> s[["method", "lam", "mean_val", "n", "n_eligible", "on_grid_edge"]].to_dict("records")
    [{'method': 'm', 'lam': 0.1, 'mean_val': 0.7, 'n': 2, 'n_eligible': 2, 'on_grid_edge': True}]
    """
    if tie not in ("smaller", "larger"):
        raise ValueError(f"tie must be 'smaller' or 'larger', got {tie!r}")
    by = list(by)
    used = table[table[param].notna()]
    if seeds is not None:
        used = used[used["seed"].isin(list(seeds))]
    value = used[metric].astype(float)
    failed = ~np.isfinite(value)
    if "diverged" in used:
        failed |= used["diverged"].eq(True)  # a missing flag is not a divergence
    per_value = (used.assign(_value=value, _failed=failed)
                 .groupby(by + [param], sort=True, dropna=False)
                 .agg(mean=("_value", "mean"), n=("_value", "size"), failed=("_failed", "any"))
                 .reset_index())
    mean_column = f"mean_{metric}"
    rows = []
    for key, group in per_value.groupby(by, sort=True, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        eligible = group[~group["failed"]]
        if eligible.empty:
            rows.append({**row, param: math.nan, mean_column: math.nan, "n": 0, "n_eligible": 0,
                         "on_grid_edge": False, "none_eligible": True})
            continue
        score = eligible["mean"] if higher_is_better else -eligible["mean"]
        best = eligible[score >= score.max() - TIE_TOLERANCE].sort_values(param)
        chosen = best.iloc[0 if tie == "smaller" else -1]
        rows.append({**row, param: chosen[param], mean_column: float(chosen["mean"]), "n": int(chosen["n"]),
                     "n_eligible": len(eligible),
                     "on_grid_edge": chosen[param] in (group[param].min(), group[param].max()),
                     "none_eligible": False})
    return pd.DataFrame(rows, columns=[*by, param, mean_column, "n", "n_eligible", "on_grid_edge", "none_eligible"])


def apply_selection(table: pd.DataFrame, selection: pd.DataFrame, param: str, by: Sequence[str],
                    seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """The rows of ``table`` at the selected values of ``param`` (optionally only ``seeds``).

    A row is kept when its ``by`` values and ``param`` match a selected row of
    ``selection`` (:func:`select_on_validation`), or when it has no value of
    ``param`` (a method without that hyperparameter, e.g. supervised transfer has no
    λ). Groups without a selection (``none_eligible``, or absent) are left out.
    ``seeds`` restricts the rows to the evaluation seeds; the table's order is kept.

    Examples
    --------
    >>> t = pd.DataFrame({"method": ["m", "m", "m", "m", "base"], "seed": [0, 1, 0, 1, 0],
    ...                   "lam": [0.1, 0.1, 1.0, 1.0, None], "val": [0.6, 0.7, 0.9, 0.8, 0.5]})
    >>> s = select_on_validation(t, "lam", by=["method"], metric="val", seeds=[0])
    >>> apply_selection(t, s, "lam", by=["method"], seeds=[1])[["method", "seed", "lam"]].to_dict("records")
    [{'method': 'm', 'seed': 1, 'lam': 1.0}]
    """
    by = list(by)
    chosen = selection.loc[~selection["none_eligible"].astype(bool), by + [param]]
    match = table[by + [param]].merge(chosen, on=by + [param], how="left", indicator=True)["_merge"]
    keep = match.eq("both").to_numpy() | table[param].isna().to_numpy()
    if seeds is not None:
        keep &= table["seed"].isin(list(seeds)).to_numpy()
    return table[keep]


# -- 3. paired differences ---------------------------------------------------------------------------------------
def _by_pair(rows: pd.DataFrame, pair_on: str, metric: str, what: str) -> pd.Series:
    if rows[pair_on].duplicated().any():
        raise ValueError(f"several runs of {what} share a {pair_on}: select one per {pair_on} first "
                         "(e.g. apply_selection), or add the distinguishing column to `by`")
    return rows.set_index(pair_on)[metric].astype(float)


def paired(table: pd.DataFrame, a: str, b: str, metric: str, column: str = "method", pair_on: str = "seed",
           by: Sequence[str] = (), level: float = 0.95) -> pd.DataFrame:
    """Paired differences ``a - b`` of ``metric`` per group of ``by``, with their Student-t interval.

    For the pairs :math:`i = 1..n` (runs of ``a`` and ``b`` with the same ``pair_on``
    value, e.g. the same seed, hence the same source model and split),
    :math:`d_i = x^{a}_i - x^{b}_i` and

    .. math:: \\bar d \\pm t_{1-(1-\\ell)/2,\\,n-1}\\,\\frac{s_d}{\\sqrt n}

    (:func:`lautum.stats.mean_ci`). A seed present for only one of the two, or whose
    difference is not finite (a diverged run has no accuracy), is left out and
    counted in ``n_unpaired``; the selection rule already excludes hyperparameter
    values with a diverged seed. Two runs of one side with the same ``pair_on`` in one
    group are an error (the pairing would be ambiguous).

    Parameters
    ----------
    table : pandas.DataFrame
    a, b : str
        The values of ``column`` to compare (``a - b``).
    metric : str
    column : str, default "method"
    pair_on : str, default "seed"
    by : list of str, default ()
        One row per group (e.g. ``["target", "k"]``).
    level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``a``, ``b``, ``mean``, ``low``, ``high``, ``ci``
        (half-width), ``sd`` (of the differences), ``n`` (pairs), ``seeds`` and
        ``diffs`` (tuples, in ``pair_on`` order: what the verdict rules read) and
        ``n_unpaired``. A group where one side has runs but no pair forms has
        ``n = 0`` and NaN statistics.

    Examples
    --------
    >>> t = pd.DataFrame({"method": ["x"] * 3 + ["y"] * 2, "seed": [0, 1, 2, 0, 1],
    ...                   "acc": [0.6, 0.8, 0.9, 0.5, 0.6]})
    >>> d = paired(t, "x", "y", "acc").iloc[0]
    >>> round(float(d["mean"]), 6), round(float(d["sd"]), 6), d["seeds"], int(d["n_unpaired"])
    (0.15, 0.070711, (0, 1), 1)
    """
    by = list(by)
    groups = table.groupby(by, sort=True, dropna=False) if by else [((), table)]
    rows = []
    for key, group in groups:
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        xa = _by_pair(group[group[column] == a], pair_on, metric, f"{a!r} in {row}")
        xb = _by_pair(group[group[column] == b], pair_on, metric, f"{b!r} in {row}")
        if xa.empty and xb.empty:
            continue
        diffs = xa.sub(xb).sort_index()  # outer alignment: a seed missing on one side gives NaN
        used = diffs[np.isfinite(diffs)]
        r = mean_ci(used.tolist(), level) if len(used) else MeanCI(math.nan, math.nan, 0, math.nan)
        rows.append({**row, "a": a, "b": b, "mean": r.mean, "low": r.low, "high": r.high, "ci": r.half_width,
                     "sd": r.std, "n": r.n, "seeds": tuple(used.index.tolist()), "diffs": tuple(used.tolist()),
                     "n_unpaired": len(diffs) - len(used)})
    return pd.DataFrame(rows, columns=[*by, "a", "b", "mean", "low", "high", "ci", "sd", "n", "seeds", "diffs",
                                       "n_unpaired"])


# -- 4. verdicts -------------------------------------------------------------------------------------------------
def _t_interval(mean: float, sd: float, n: int, level: float) -> tuple[float, float]:
    if n < 2:
        return math.nan, math.nan
    half = float(distributions.t.ppf(1 - (1 - level) / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


@dataclass(frozen=True)
class Verdict:
    """The outcome of one verdict rule on one set of paired differences ``a - b``.

    Attributes
    ----------
    rule : str
        ``"superiority"``, ``"equivalence"`` or ``"non-superiority"``.
    verdict : str
        ``"reproduced"``, ``"not reproduced"`` or ``"inconclusive"`` (superiority,
        non-superiority); ``"equivalent"``, ``"not equivalent"`` or ``"inconclusive"``
        (equivalence).
    effect : float
        The mean paired difference.
    low, high, level : float
        The interval the rule reads and its coverage (superiority: ``level``;
        equivalence and non-superiority: the TOST interval, coverage :math:`1-2\\alpha`).
    sd : float
        Standard deviation of the differences.
    n : int
        Number of pairs (seeds).
    margin : float
    detectable_effect : float
        The smallest true mean difference this design detects with 80% power
        (:func:`detectable_effect`); for superiority and non-superiority, counted from 0
        and beyond the margin (margin + the design's detectable shift).
    p_value : float
        Superiority: one-sided p of "A does not beat B by more than the margin";
        equivalence: the larger of the two TOST p-values; non-superiority: the upper
        TOST p-value, one-sided p of "A beats B by the margin or more".
    a, b : str
        Names of the compared methods, for :meth:`sentence`.
    p_holm : float
        Holm-adjusted ``p_value`` within a family of claims (NaN outside one).
    family_size : int
        Number of claims the Holm adjustment ran over (1 outside a family).
    """

    rule: str
    verdict: str
    effect: float
    low: float
    high: float
    level: float
    sd: float
    n: int
    margin: float
    detectable_effect: float
    p_value: float
    a: str = "A"
    b: str = "B"
    p_holm: float = math.nan
    family_size: int = 1

    def interval(self, level: float) -> tuple[float, float]:
        """The two-sided t-interval of the mean difference at ``level`` (NaN when ``n < 2``)."""
        return _t_interval(self.effect, self.sd, self.n, level)

    def sentence(self, scale: float = 100.0, unit: str = "points", digits: int = 1) -> str:
        """The verdict in words, e.g. ``"A beats B by 2.1 points (95% CI 0.4 to 3.8, n = 8 seeds): reproduced."``.

        Values are multiplied by ``scale`` (100: accuracy fractions as points).
        """
        def num(x: float) -> str:
            return f"{x * scale:.{digits}f}"

        def signed(x: float) -> str:
            return f"{x * scale:+.{digits}f}"

        shown_level = self.level
        low, high = self.low, self.high
        if (self.rule, self.verdict) in ((_EQUIVALENCE, "not equivalent"), (_NON_SUPERIORITY, "not reproduced")):
            shown_level = (1 + self.level) / 2  # the 1 - alpha interval decides these two
            low, high = self.interval(shown_level)
        if self.n >= 2:
            evidence = f"{100 * shown_level:g}% CI {num(low)} to {num(high)}, n = {self.n} seeds"
        else:
            evidence = f"n = {self.n} seed{'' if self.n == 1 else 's'}, no interval"
        if self.family_size > 1:
            evidence += f", Holm-adjusted p for the claim = {self.p_holm:.3g} over {self.family_size} tests"
        difference = f"{self.a} − {self.b} = {signed(self.effect)} {unit}"
        if self.rule == _SUPERIORITY:
            beyond = f" by more than {num(self.margin)} {unit}" if self.margin else ""
            above = f", more than {num(self.margin)}" if self.margin else ""
            head = {"reproduced": f"{self.a} beats {self.b} by {num(self.effect)} {unit}{above}",
                    "not reproduced": f"{self.a} does not beat {self.b}{beyond}: {difference}",
                    "inconclusive": f"{self.a} beats {self.b}{beyond}? {difference}"}[self.verdict]
        elif self.rule == _NON_SUPERIORITY:
            beyond = f"by more than {num(self.margin)} {unit}"
            head = {"reproduced": f"{self.a} is no better than {self.b} {beyond}: {difference}",
                    "not reproduced": f"{self.a} beats {self.b} {beyond}: {difference}",
                    "inconclusive": f"{self.a} no better than {self.b} {beyond}? {difference}"}[self.verdict]
        else:
            within = f"±{num(self.margin)} {unit}"
            head = {"equivalent": f"{self.a} and {self.b} are equivalent within {within}: {difference}",
                    "not equivalent": f"{self.a} and {self.b} differ by more than {within}: {difference}",
                    "inconclusive": f"{self.a} and {self.b} equivalent within {within}? {difference}"}[self.verdict]
        text = f"{head} ({evidence}): {self.verdict}."
        if self.verdict == "inconclusive":
            adjusted = " before the Holm adjustment (a lower bound)" if self.family_size > 1 else ""
            text += (f" This design detects a true difference of {num(self.detectable_effect)} {unit} "
                     f"with {POWER:.0%} power{adjusted}." if math.isfinite(self.detectable_effect)
                     else " Too few seeds to estimate what this design can detect.")
        return text


def detectable_effect(sd: float, n: int, level: float = 0.95, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t test detects with probability ``power``.

    The test at :math:`\\alpha = 1-\\ell` rejects when :math:`|T| > c`,
    :math:`c = t_{1-\\alpha/2,\\,n-1}`. Under a true difference :math:`\\delta`,
    :math:`T` is noncentral t with :math:`n-1` degrees of freedom and noncentrality
    :math:`\\lambda = \\delta\\sqrt n / s`, so the power is

    .. math:: \\pi(\\lambda) = P(T_{n-1,\\lambda} > c) + P(T_{n-1,\\lambda} < -c),

    and the detectable effect is :math:`\\delta^* = \\lambda^* s/\\sqrt n` with
    :math:`\\pi(\\lambda^*) = \\text{power}` (solved numerically: exact, not the
    approximation :math:`\\lambda^* \\approx c + t_{\\text{power},\\,n-1}`, which is
    14% too small at n = 2, 1% at n = 5, within 0.3% from n = 8 on). ``sd`` is the
    observed standard deviation of the paired differences, taken as the true one. NaN
    when ``n < 2`` or ``sd`` is not finite.

    Examples
    --------
    With 8 seeds and sd 1 the approximation gives (2.365 + 0.896)/√8 = 1.153; exactly:

    >>> round(detectable_effect(1.0, 8), 3)
    1.156
    """
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df = n - 1
    critical = float(distributions.t.ppf(1 - (1 - level) / 2, df))

    def shortfall(nc: float) -> float:
        # P(T < -c | nc) as P(T > c | -nc): scipy's nct.cdf returns NaN for some tiny lower tails
        return float(distributions.nct.sf(critical, df, nc) + distributions.nct.sf(critical, df, -nc)) - power

    upper = critical + float(distributions.t.ppf(power, df))
    while shortfall(upper) < 0:
        upper *= 2
    return optimize.brentq(shortfall, 0.0, upper, xtol=1e-12) * sd / math.sqrt(n)


def _moments(diffs: Sequence[float]) -> tuple[np.ndarray, float, float, int]:
    d = np.asarray(list(diffs), dtype=float)
    if not np.isfinite(d).all():
        raise ValueError("paired differences must be finite (paired() leaves out diverged pairs)")
    n = len(d)
    return d, float(d.mean()) if n else math.nan, float(d.std(ddof=1)) if n >= 2 else math.nan, n


def _t_statistic(mean: float, null: float, sd: float, n: int) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(mean - null) / np.float64(sd / math.sqrt(n))) if n >= 2 else math.nan


def superiority(diffs: Sequence[float], margin: float = 0.0, level: float = 0.95, *, a: str = "A",
                b: str = "B") -> Verdict:
    """Rule R1, "A beats B by more than ``margin``", from paired differences ``a - b``.

    With the t-interval :math:`[L, U] = \\bar d \\pm t_{1-\\alpha/2,\\,n-1}\\,s/\\sqrt n`
    at level :math:`1-\\alpha`:

    .. math::

        \\text{reproduced} \\iff L > m, \\qquad \\text{not reproduced} \\iff U < m,

    otherwise (including :math:`n < 2`) inconclusive. ``p_value`` is the one-sided
    p of :math:`H_0: \\mu \\le m`, :math:`P(T_{n-1} > (\\bar d - m)\\sqrt n / s)`;
    reproduced is the same as ``p_value`` < α/2.

    Examples
    --------
    Mean 0.024, s = √(520e-6/4) = 0.011402, t_{0.975,4} = 2.7764: 0.024 ± 0.014158.

    >>> v = superiority([0.02, 0.03, 0.01, 0.04, 0.02])
    >>> v.verdict, round(v.low, 4), round(v.high, 4), v.n
    ('reproduced', 0.0098, 0.0382, 5)
    >>> v.sentence()
    'A beats B by 2.4 points (95% CI 1.0 to 3.8, n = 5 seeds): reproduced.'
    """
    _, mean, sd, n = _moments(diffs)
    low, high = _t_interval(mean, sd, n, level)
    t_stat = _t_statistic(mean, margin, sd, n)
    p_value = float(distributions.t.sf(t_stat, n - 1)) if n >= 2 else math.nan
    verdict = ("reproduced" if low > margin else "not reproduced" if high < margin else "inconclusive")
    return Verdict(_SUPERIORITY, verdict, mean, low, high, level, sd, n, margin,
                   margin + detectable_effect(sd, n, level), p_value, a, b)


def equivalence(diffs: Sequence[float], margin: float, level: float = 0.95, *, a: str = "A",
                b: str = "B") -> Verdict:
    """Rule R2, "A and B do not differ by more than ``margin``" (TOST), from paired differences ``a - b``.

    With :math:`\\alpha = 1-\\ell`, :math:`\\text{se} = s/\\sqrt n`, the two one-sided tests

    .. math::

        p_- = P\\!\\left(T_{n-1} > \\frac{\\bar d + m}{\\text{se}}\\right)\\ (H_0: \\mu \\le -m), \\qquad
        p_+ = P\\!\\left(T_{n-1} < \\frac{\\bar d - m}{\\text{se}}\\right)\\ (H_0: \\mu \\ge m);

    *equivalent* if both are below α (the :math:`1-2\\alpha` interval lies inside
    :math:`(-m, m)`); *not equivalent* if the :math:`1-\\alpha` interval lies entirely
    outside :math:`[-m, m]`; otherwise (including :math:`n < 2`) *inconclusive*. The
    margin must be declared (before looking at the data): there is no default.

    Examples
    --------
    Mean 0, s = 0.0015811, t_{0.95,4} = 2.1318: the 90% interval is ±0.0015074, inside ±0.01
    but not inside ±0.001.

    >>> v = equivalence([0.001, -0.002, 0.0, 0.002, -0.001], margin=0.01)
    >>> v.verdict, v.level, round(v.high, 5)
    ('equivalent', 0.9, 0.00151)
    >>> equivalence([0.001, -0.002, 0.0, 0.002, -0.001], margin=0.001).verdict
    'inconclusive'
    """
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"an equivalence margin must be declared, finite and > 0; got {margin}")
    if not 0.5 < level < 1:
        raise ValueError(f"level must be in (0.5, 1) for a 1 - 2 alpha TOST interval, got {level}")
    _, mean, sd, n = _moments(diffs)
    alpha = 1 - level
    low, high = _t_interval(mean, sd, n, 1 - 2 * alpha)
    outer_low, outer_high = _t_interval(mean, sd, n, level)
    if n >= 2:
        p_value = max(float(distributions.t.sf(_t_statistic(mean, -margin, sd, n), n - 1)),
                      float(distributions.t.cdf(_t_statistic(mean, margin, sd, n), n - 1)))
    else:
        p_value = math.nan
    verdict = ("equivalent" if p_value < alpha
               else "not equivalent" if outer_low > margin or outer_high < -margin else "inconclusive")
    return Verdict(_EQUIVALENCE, verdict, mean, low, high, 1 - 2 * alpha, sd, n, margin,
                   detectable_effect(sd, n, level), p_value, a, b)


def non_superiority(diffs: Sequence[float], margin: float, level: float = 0.95, *, a: str = "A",
                    b: str = "B") -> Verdict:
    """Rule R2b, "A is no better than B by more than ``margin``", from paired differences ``a - b``.

    The upper one-sided test of TOST: with :math:`\\alpha = 1-\\ell` and
    :math:`\\text{se} = s/\\sqrt n`,

    .. math::

        p_+ = P\\!\\left(T_{n-1} < \\frac{\\bar d - m}{\\text{se}}\\right)\\ (H_0: \\mu \\ge m);

    *reproduced* if :math:`p_+ < \\alpha`, i.e. the upper end of the :math:`1-2\\alpha`
    interval (the one-sided :math:`1-\\alpha` upper bound) lies below :math:`m`; *not
    reproduced* if the whole :math:`1-\\alpha` interval lies above :math:`m`; otherwise
    (including :math:`n < 2`) *inconclusive*, with the detectable effect
    :math:`m + \\delta^*` (:func:`detectable_effect`): the true advantage of A that this
    design shows as *not reproduced* with 80% power. The margin must be declared: there
    is no default, and a margin of 0 is refused (that claim is "B beats A", rule R1).

    Examples
    --------
    Mean 0.002, s = 0.0015811, t_{0.95,4} = 2.1318: the 90% interval's upper end is
    0.002 + 0.0015074 = 0.0035 < 0.01 (reproduced); a mean of 0.03 with the same spread
    has its 95% interval (±0.0019632) above 0.01 (not reproduced).

    >>> d = [0.003, 0.0, 0.002, 0.004, 0.001]
    >>> v = non_superiority(d, margin=0.01)
    >>> v.verdict, v.level, round(v.high, 5)
    ('reproduced', 0.9, 0.00351)
    >>> non_superiority([x + 0.028 for x in d], margin=0.01).verdict
    'not reproduced'
    >>> non_superiority(d, margin=0.003).verdict
    'inconclusive'
    """
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"a non-superiority margin must be declared, finite and > 0; got {margin}")
    if not 0.5 < level < 1:
        raise ValueError(f"level must be in (0.5, 1) for a 1 - 2 alpha interval, got {level}")
    _, mean, sd, n = _moments(diffs)
    alpha = 1 - level
    low, high = _t_interval(mean, sd, n, 1 - 2 * alpha)
    outer_low, _ = _t_interval(mean, sd, n, level)
    p_value = float(distributions.t.cdf(_t_statistic(mean, margin, sd, n), n - 1)) if n >= 2 else math.nan
    verdict = "reproduced" if p_value < alpha else "not reproduced" if outer_low > margin else "inconclusive"
    return Verdict(_NON_SUPERIORITY, verdict, mean, low, high, 1 - 2 * alpha, sd, n, margin,
                   margin + detectable_effect(sd, n, level), p_value, a, b)


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> pd.DataFrame:
    """Holm–Bonferroni step-down adjustment of ``m`` p-values (family-wise error ≤ ``alpha``).

    With the p-values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`,

    .. math:: \\tilde p_{(i)} = \\min\\Big(1, \\max_{j \\le i}\\, (m - j + 1)\\, p_{(j)}\\Big),

    and hypothesis :math:`(i)` is rejected when :math:`\\tilde p_{(i)} \\le \\alpha`
    (equivalently: step down while :math:`p_{(i)} \\le \\alpha/(m-i+1)`). A NaN
    p-value (no test possible) counts as 1.

    Returns
    -------
    pandas.DataFrame
        ``p``, ``p_holm`` and ``reject``, in the input order.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).to_dict("list")
    {'p': [0.01, 0.04, 0.03, 0.005], 'p_holm': [0.03, 0.06, 0.06, 0.02], 'reject': [True, False, False, True]}
    """
    p = np.asarray(list(pvalues), dtype=float)
    m = len(p)
    order = np.argsort(np.nan_to_num(p, nan=1.0), kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * np.nan_to_num(p[order], nan=1.0))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    return pd.DataFrame({"p": p, "p_holm": adjusted, "reject": adjusted <= alpha})


def superiority_family(diffs: Sequence[Sequence[float]], names: Sequence[tuple[str, str]], margin: float = 0.0,
                       alpha: float = 0.05) -> list[Verdict]:
    """Rule R3: several superiority claims of one paper, Holm-adjusted.

    Each claim ``(a, b)`` gets :func:`superiority` at level :math:`1-\\alpha` and its
    one-sided p-values for and against the claim,
    :math:`p = P(T_{n-1} > t)` and :math:`p' = P(T_{n-1} < t)` with
    :math:`t = (\\bar d - m)\\sqrt n/s`. :func:`holm` runs over the claims at
    :math:`\\alpha/2` (the error rate of one side of the :math:`1-\\alpha` interval that
    R1 reads, so a family of one claim says what R1 says): *reproduced* where Holm
    rejects on :math:`p`, *not reproduced* where it rejects on :math:`p'`, otherwise
    *inconclusive*.

    Parameters
    ----------
    diffs : list of sequences of float
        The paired differences ``a - b`` of each claim (e.g. :func:`paired`'s ``diffs``).
    names : list of (str, str)
        ``(a, b)`` of each claim.
    margin : float, default 0
    alpha : float, default 0.05

    Examples
    --------
    t = 4.707 and 1.177 on 4 degrees of freedom: one-sided p = 0.00463 and 0.1523;
    Holm multiplies the smaller by 2 (0.0093 < 0.025: reproduced) and the larger by 1.

    >>> vs = superiority_family([[0.02, 0.03, 0.01, 0.04, 0.02], [0.01, -0.01, 0.02, 0.0, 0.01]],
    ...                         [("A", "B"), ("A", "C")])
    >>> [(v.verdict, round(v.p_holm, 4)) for v in vs]
    [('reproduced', 0.0093), ('inconclusive', 0.1523)]
    """
    if len(diffs) != len(names):
        raise ValueError(f"{len(diffs)} sets of differences for {len(names)} claims")
    single = [superiority(d, margin, 1 - alpha, a=a, b=b) for d, (a, b) in zip(diffs, names, strict=True)]
    against = [float(distributions.t.cdf(_t_statistic(v.effect, margin, v.sd, v.n), v.n - 1)) if v.n >= 2
               else math.nan for v in single]
    for_claim, against_claim = holm([v.p_value for v in single], alpha / 2), holm(against, alpha / 2)
    return [replace(v, verdict="reproduced" if for_claim["reject"].iloc[i]
                    else "not reproduced" if against_claim["reject"].iloc[i] else "inconclusive",
                    p_holm=float(for_claim["p_holm"].iloc[i]), family_size=len(single))
            for i, v in enumerate(single)]


def all_of(results: Sequence[Verdict]) -> str:
    """Rule R4: one verdict for a claim made for every cell (target, k), from its verdict in each.

    Superiority and non-superiority (which may be mixed: both say *reproduced* or *not
    reproduced*): *reproduced* if every cell is, *not reproduced* if one is, else
    *inconclusive*; equivalence likewise with *equivalent* / *not equivalent*. No
    cells: *inconclusive*.

    Examples
    --------
    >>> all_of([superiority([0.02, 0.03, 0.01]), superiority([0.01, -0.01, 0.02])])
    'inconclusive'
    """
    rules = {v.rule for v in results}
    if len(rules) > 1 and rules != {_SUPERIORITY, _NON_SUPERIORITY}:
        raise ValueError(f"cannot combine verdicts of different rules {sorted(rules)}")
    if not results:
        return "inconclusive"
    holds, fails = ("equivalent", "not equivalent") if rules == {_EQUIVALENCE} else ("reproduced", "not reproduced")
    found = {v.verdict for v in results}
    return fails if fails in found else holds if found == {holds} else "inconclusive"


def verdicts(differences: pd.DataFrame, rule: Callable[..., Verdict], scale: float = 100.0, unit: str = "points",
             **rule_arguments: Any) -> pd.DataFrame:
    """Apply a verdict rule to each row of :func:`paired`'s table.

    ``rule`` is :func:`superiority`, :func:`equivalence` or :func:`non_superiority`
    (``rule_arguments``: its ``margin``, ``level``). Returns the table with ``verdict``, ``detectable_effect``,
    ``p_value`` and ``sentence`` (:meth:`Verdict.sentence` with ``scale`` and ``unit``) added.

    Examples
    --------
    >>> t = pd.DataFrame({"method": ["x"] * 3 + ["y"] * 3, "seed": [0, 1, 2] * 2,
    ...                   "acc": [0.62, 0.71, 0.83, 0.50, 0.61, 0.70]})
    >>> verdicts(paired(t, "x", "y", "acc"), superiority)["verdict"].tolist()
    ['reproduced']
    """
    results = [rule(list(r.diffs), a=r.a, b=r.b, **rule_arguments) for r in differences.itertuples()]
    return differences.assign(verdict=[v.verdict for v in results],
                              detectable_effect=[v.detectable_effect for v in results],
                              p_value=[v.p_value for v in results],
                              sentence=[v.sentence(scale, unit) for v in results])


# -- 5. reader-ready tables --------------------------------------------------------------------------------------
def summary(table: pd.DataFrame, by: Sequence[str], metric: str, level: float = 0.95, scale: float = 100.0,
            digits: int = 1, columns: str | None = None) -> pd.DataFrame:
    """Mean ± t-interval of ``metric`` per group, written for readers (:func:`lautum.stats.summarize`).

    Each cell reads :math:`\\bar x \\pm t_{1-(1-\\ell)/2,\\,n-1}\\,s/\\sqrt n`, times
    ``scale``, e.g. ``"82.1 ± 0.9"`` (``"82.1 (n = 1)"`` for one seed). The ``by``
    columns become the row labels (no meaningless integer index); with ``columns``
    (one of ``by``, e.g. ``"k"``) its values become the columns, one table cell per group.

    Returns
    -------
    pandas.DataFrame
        Without ``columns``: one column ``"<metric> (mean ± 95% CI)"`` and ``seeds``.

    Examples
    --------
    >>> t = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "k": 5, "acc": [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]})
    >>> summary(t, by=["method"], metric="acc")["acc (mean ± 95% CI)"].to_dict()
    {'a': '20.0 ± 24.8', 'b': '40.0 ± 0.0'}
    >>> summary(t, by=["method", "k"], metric="acc", columns="k").loc["b", 5]
    '40.0 ± 0.0'
    """
    by = list(by)
    groups = summarize_groups(table, by=by, metric=metric, level=level)
    cells = [MeanCI(r.mean, r.ci, r.n, r.std).format(scale, digits) if r.n >= 2
             else f"{r.mean * scale:.{digits}f} (n = {r.n})" for r in groups.itertuples()]
    if columns is None:
        label = f"{metric.replace('_', ' ')} (mean ± {100 * level:g}% CI)"
        return pd.DataFrame({label: cells, "seeds": groups["n"].to_numpy()},
                            index=pd.MultiIndex.from_frame(groups[by]) if len(by) > 1 else pd.Index(groups[by[0]]))
    rows = [c for c in by if c != columns]
    if len(rows) == len(by) or not rows:
        raise ValueError(f"columns must be one of by={by}, and not the only one; got {columns!r}")
    return groups.assign(_cell=cells).pivot(index=rows, columns=columns, values="_cell")


# -- 6. provenance -----------------------------------------------------------------------------------------------
def _one_or_several(values: Iterable[str], one: Callable[[str], str], several: str) -> str:
    distinct = sorted(set(values))
    return one(distinct[0]) if len(distinct) == 1 else f"{len(distinct)} {several}: {', '.join(distinct)}"


def _device(prov: dict[str, Any]) -> str:
    device = str(prov.get("device", "unknown device"))
    if device.startswith("cuda"):
        return f"GPU ({prov.get('device_name') or device})"
    if device == "cpu":
        capability = prov.get("cpu_capability")
        return f"CPU ({capability} kernels)" if capability else "CPU (kernels not recorded)"
    return device


def _commit(commit: str | None) -> str:
    if not commit:
        return "unknown"
    return commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")


def provenance_label(records: Sequence[dict]) -> str:
    """One line saying where a set of records comes from.

    Profile, number of runs, device (CPU with the kernels torch ran, or GPU by name),
    torch version, dates (day, or first to last day) and commit (7 characters,
    ``-dirty`` kept). Where records disagree it lists the distinct values, e.g.
    ``"3 commits: 1a2b3c4, 5d6e7f8, 9a0b1c2-dirty"``; records without
    ``cpu_capability`` say ``"kernels not recorded"``.

    Examples
    --------
    >>> prov = {"device": "cpu", "cpu_capability": "AVX2", "torch": "2.14.1", "date": "2026-12-05T10:00:00+0000",
    ...         "git_commit": "1a2b3c4d5e6f"}
    >>> provenance_label([{"profile": "medium", "provenance": prov}] * 168)
    'medium profile, 168 runs, CPU (AVX2 kernels), torch 2.14.1, 2026-12-05, commit 1a2b3c4'
    """
    if not records:
        return "no records"
    prov = [r.get("provenance", {}) for r in records]
    days = sorted({str(p["date"])[:10] for p in prov if p.get("date")})
    dates = "date not recorded" if not days else days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return ", ".join([
        _one_or_several((r["profile"] for r in records), lambda v: f"{v} profile", "profiles"),
        f"{len(records)} run{'' if len(records) == 1 else 's'}",
        _one_or_several(map(_device, prov), lambda v: v, "devices"),
        _one_or_several((str(p.get("torch", "unknown")) for p in prov), lambda v: f"torch {v}", "torch versions"),
        dates,
        _one_or_several((_commit(p.get("git_commit")) for p in prov), lambda v: f"commit {v}", "commits"),
    ])
