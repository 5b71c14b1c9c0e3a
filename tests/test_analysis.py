"""The analysis layer: tidy table, selection on validation, paired differences, verdict rules, labels.

Independent references: closed forms, scipy.stats (ttest_rel, ttest_1samp, t, nct) and
hand computations (statsmodels is not installed).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lautum import analysis as A


# -- helpers -----------------------------------------------------------------------------------------------------
def _record(method="m", seed=0, params=None, metrics=None, commit="1a2b3c4d5e6f7a8b", **prov):
    provenance = {"device": "cpu", "device_name": "AMD EPYC", "torch": "2.14.1", "git_commit": commit,
                  "date": "2026-12-05T10:00:00+0000", "torch_threads": 1, "cpu_capability": "AVX2", **prov}
    return {"experiment": "x", "method": method, "seed": seed, "profile": "medium",
            "params": {"k": 5} if params is None else params,
            "metrics": {"target_val_acc": 0.5, "target_test_acc": 0.5} if metrics is None else metrics,
            "elapsed_s": 1.5, "provenance": provenance, "config": {}}


def _grid(rng, methods=("a", "b"), lams=(0.01, 0.1, 1.0), seeds=range(6)):
    rows = [{"method": m, "k": 5, "lam": lam, "seed": s, "diverged": False,
             "target_val_acc": 0.6 + 0.1 * (lam == 0.1) + 0.01 * rng.standard_normal(),
             "target_test_acc": 0.6 + 0.01 * rng.standard_normal()}
            for m in methods for lam in lams for s in seeds]
    return pd.DataFrame(rows)


# -- tidy --------------------------------------------------------------------------------------------------------
def test_tidy_columns_divergence_and_stable_order():
    recs = [
        _record("b", 1, {"k": 5, "lam": 0.1}),
        _record("a", 0, {"k": 20}, metrics={"target_val_acc": 0.7, "final_train_loss": float("inf")}),
        _record("a", 1, {"k": 5}, metrics={"target_val_acc": 0.8, "diverged": True}),
        _record("a", 0, {"k": 5}, metrics={"target_val_acc": 0.9, "diverged": False, "note": None},
                commit=None),
    ]
    t = A.tidy(recs)
    assert list(t.columns) == ["experiment", "method", "seed", "profile", "k", "lam", "final_train_loss", "note",
                               "target_test_acc", "target_val_acc", "elapsed_s", "diverged", "git_commit"]
    assert list(zip(t.method, t.k, t.seed, strict=True)) == [("a", 5, 0), ("a", 5, 1), ("a", 20, 0), ("b", 5, 1)]
    assert t.diverged.tolist() == [False, True, True, False]
    assert t.lam.isna().tolist() == [True, True, True, False]
    assert math.isnan(t.loc[0, "target_test_acc"])  # a metric the record lacks
    assert pd.isna(t.loc[0, "git_commit"]) and t.loc[1, "git_commit"] == "1a2b3c4d5e6f7a8b"
    shuffled = A.tidy([recs[i] for i in (2, 0, 3, 1)])
    pd.testing.assert_frame_equal(t, shuffled)


def test_tidy_chosen_metrics_and_name_clash():
    t = A.tidy([_record(metrics={"target_val_acc": 0.5, "target_test_acc": float("nan")})],
               metrics=["target_val_acc", "absent"])
    assert list(t.columns)[4:] == ["k", "target_val_acc", "absent", "elapsed_s", "diverged", "git_commit"]
    assert bool(t.loc[0, "diverged"])  # judged on every metric, not only the chosen ones
    with pytest.raises(ValueError, match="clash"):
        A.tidy([_record(metrics={"k": 1.0})])


def test_tidy_reads_records_from_disk(tmp_path):
    from lautum.records import load_records, write_record

    for seed in (1, 0):
        write_record(tmp_path / f"r{seed}.json", _record(seed=seed))
    t = A.tidy(load_records(tmp_path))
    assert t.seed.tolist() == [0, 1] and not t.diverged.any()


# -- selection ---------------------------------------------------------------------------------------------------
def test_select_best_mean_ties_and_edges():
    t = pd.DataFrame({"method": "m", "seed": [0, 1] * 4, "lam": np.repeat([0.001, 0.01, 0.1, 1.0], 2),
                      "target_val_acc": [0.5, 0.7, 0.8, 0.6, 0.7, 0.7, 0.6, 0.6]})
    # means 0.6, 0.7, 0.7 (0.1+ε: a float-noise tie), 0.6
    s = A.select_on_validation(t, "lam", by=["method"])
    assert s.loc[0, "lam"] == 0.01 and not s.loc[0, "on_grid_edge"] and s.loc[0, "n_eligible"] == 4
    assert s.loc[0, "mean_target_val_acc"] == pytest.approx(0.7)
    assert A.select_on_validation(t, "lam", by=["method"], tie="larger").loc[0, "lam"] == 0.1
    low = A.select_on_validation(t, "lam", by=["method"], higher_is_better=False)
    assert low.loc[0, "lam"] == 0.001 and low.loc[0, "on_grid_edge"]
    with pytest.raises(ValueError):
        A.select_on_validation(t, "lam", by=["method"], tie="random")


def test_select_excludes_diverged_values_and_flags_empty_groups():
    t = pd.DataFrame({"method": ["m"] * 4 + ["n"] * 2, "seed": [0, 1, 0, 1, 0, 1],
                      "lam": [0.1, 0.1, 1.0, 1.0, 0.1, 0.1],
                      "target_val_acc": [0.5, 0.5, 0.9, 0.9, float("nan"), 0.8],
                      "diverged": [False, False, False, True, True, False]})
    s = A.select_on_validation(t, "lam", by=["method"]).set_index("method")
    assert s.loc["m", "lam"] == 0.1 and s.loc["m", "n_eligible"] == 1  # λ=1 has a diverged seed
    assert s.loc["m", "on_grid_edge"]
    assert s.loc["n", "none_eligible"] and math.isnan(s.loc["n", "lam"]) and s.loc["n", "n"] == 0
    kept = A.apply_selection(t, s.reset_index(), "lam", by=["method"])
    assert kept.method.tolist() == ["m", "m"] and kept.lam.tolist() == [0.1, 0.1]


def test_selection_on_tuning_seeds_applied_to_evaluation_seeds():
    rng = np.random.default_rng(0)
    t = _grid(rng)
    t.loc[(t.lam == 1.0) & (t.seed < 3), "target_val_acc"] += 1.0  # best on tuning seeds only
    t = pd.concat([t, pd.DataFrame({"method": "base", "k": 5, "lam": np.nan, "seed": range(6), "diverged": False,
                                    "target_val_acc": 0.5, "target_test_acc": 0.5})], ignore_index=True)
    s = A.select_on_validation(t, "lam", by=("method", "k"), seeds=[0, 1, 2])
    assert s.method.tolist() == ["a", "b"] and (s.lam == 1.0).all() and (s.n == 3).all() and s.on_grid_edge.all()
    ev = A.apply_selection(t, s, "lam", by=("method", "k"), seeds=[3, 4, 5])
    assert sorted(set(ev.seed)) == [3, 4, 5]
    assert ev.groupby("method").size().to_dict() == {"a": 3, "b": 3, "base": 3}
    assert ev[ev.method != "base"].lam.eq(1.0).all()
    assert list(ev.index) == sorted(ev.index)  # the table's order is kept
    all_seeds = A.select_on_validation(t, "lam", by=("method", "k"))
    assert (all_seeds.lam == 1.0).all() and (all_seeds.n == 6).all()


# -- paired differences ------------------------------------------------------------------------------------------
def test_paired_matches_scipy_ttest_rel():
    rng = np.random.default_rng(1)
    xa, xb = 0.7 + 0.03 * rng.standard_normal(8), 0.68 + 0.03 * rng.standard_normal(8)
    t = pd.DataFrame({"method": ["a"] * 8 + ["b"] * 8, "seed": list(range(8)) * 2, "k": 5,
                      "acc": np.concatenate([xa, xb])})
    d = A.paired(t.sample(frac=1, random_state=0), "a", "b", "acc", by=["k"], level=0.9).iloc[0]
    ref = stats.ttest_rel(xa, xb)
    ci = ref.confidence_interval(0.9)
    assert d["mean"] == pytest.approx(np.mean(xa - xb), abs=1e-15)
    assert (d["low"], d["high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert d["sd"] == pytest.approx(np.std(xa - xb, ddof=1))
    assert d["ci"] == pytest.approx(stats.t.ppf(0.95, 7) * d["sd"] / math.sqrt(8))
    assert d["n"] == 8 and d["seeds"] == tuple(range(8)) and d["n_unpaired"] == 0
    assert d["diffs"] == pytest.approx(tuple(xa - xb))


def test_paired_missing_and_diverged_pairs_are_left_out_and_counted():
    t = pd.DataFrame({"method": ["a"] * 4 + ["b"] * 4, "seed": [0, 1, 2, 3, 0, 1, 2, 5],
                      "acc": [0.7, 0.8, float("nan"), 0.6, 0.6, 0.6, 0.5, 0.5]})
    d = A.paired(t, "a", "b", "acc").iloc[0]
    assert d["seeds"] == (0, 1) and d["n"] == 2 and d["n_unpaired"] == 3  # seed 2 diverged, 3 and 5 unmatched
    assert d["mean"] == pytest.approx(0.15)
    lone = A.paired(t[t.seed == 3], "a", "b", "acc").iloc[0]
    assert lone["n"] == 0 and math.isnan(lone["mean"]) and lone["n_unpaired"] == 1
    assert A.paired(t, "c", "d", "acc").empty


def test_paired_refuses_ambiguous_pairs():
    t = pd.DataFrame({"method": ["a", "a", "b"], "seed": [0, 0, 0], "lam": [0.1, 1.0, None], "acc": [1., 2., 3.]})
    with pytest.raises(ValueError, match="share a seed"):
        A.paired(t, "a", "b", "acc")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=10),
       st.floats(0.5, 0.99))
def test_paired_interval_is_antisymmetric(pairs, level):
    n = len(pairs)
    t = pd.DataFrame({"method": ["a"] * n + ["b"] * n, "seed": list(range(n)) * 2,
                      "acc": [p[0] for p in pairs] + [p[1] for p in pairs]})
    ab, ba = A.paired(t, "a", "b", "acc", level=level).iloc[0], A.paired(t, "b", "a", "acc", level=level).iloc[0]
    assert ab["mean"] == pytest.approx(-ba["mean"], abs=1e-12)
    assert ab["low"] == pytest.approx(-ba["high"], abs=1e-12)
    assert ab["high"] == pytest.approx(-ba["low"], abs=1e-12)
    assert ab["n"] == ba["n"] == n


# -- detectable effect -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 5, 8, 20])
def test_detectable_effect_has_80_percent_power(n):
    sd = 0.02
    delta = A.detectable_effect(sd, n)
    nc, df, crit = delta * math.sqrt(n) / sd, n - 1, stats.t.ppf(0.975, n - 1)
    power = stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc)
    assert power == pytest.approx(0.80, abs=1e-6)
    # the textbook approximation (t_{1-α/2} + t_{power}) s/√n: close, except for very few seeds
    approx = (crit + stats.t.ppf(0.8, df)) * sd / math.sqrt(n)
    assert approx == pytest.approx(delta, rel=0.003 if n >= 8 else 0.15)


def test_detectable_effect_edge_cases():
    assert math.isnan(A.detectable_effect(1.0, 1)) and math.isnan(A.detectable_effect(float("nan"), 5))
    assert A.detectable_effect(0.0, 5) == 0.0
    assert A.detectable_effect(2.0, 8) == pytest.approx(2 * A.detectable_effect(1.0, 8))


# -- superiority -------------------------------------------------------------------------------------------------
def test_superiority_three_outcomes_and_scipy():
    rng = np.random.default_rng(2)
    up = 0.03 + 0.01 * rng.standard_normal(8)
    v = A.superiority(up, a="lautum", b="supervised")
    ref = stats.ttest_1samp(up, 0.0, alternative="greater")
    ci = stats.ttest_1samp(up, 0.0).confidence_interval(0.95)
    assert v.verdict == "reproduced" and v.rule == "superiority"
    assert (v.low, v.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert v.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert A.superiority(-up).verdict == "not reproduced"
    noisy = A.superiority(0.003 + 0.02 * rng.standard_normal(8))
    assert noisy.verdict == "inconclusive" and noisy.low < 0 < noisy.high
    assert noisy.detectable_effect == pytest.approx(A.detectable_effect(noisy.sd, 8))
    assert "inconclusive. This design detects a true difference of" in noisy.sentence()


def test_superiority_margin():
    d = [0.02, 0.03, 0.01, 0.04, 0.02]  # 95% CI 0.0098 to 0.0382
    assert A.superiority(d, margin=0.005).sentence().startswith("A beats B by 2.4 points, more than 0.5 (95% CI")
    assert A.superiority(d, margin=0.02).verdict == "inconclusive"
    assert A.superiority(d, margin=0.05).verdict == "not reproduced"
    v = A.superiority(d, margin=0.02)
    assert v.p_value == pytest.approx(stats.ttest_1samp(d, 0.02, alternative="greater").pvalue)
    assert v.detectable_effect == pytest.approx(0.02 + A.detectable_effect(v.sd, 5))


def test_superiority_sentence_and_few_seeds():
    v = A.superiority([0.021 + e for e in (-0.01, 0.01, -0.005, 0.005, 0.0, 0.002, -0.002, 0.0)])
    assert v.sentence().startswith("A beats B by 2.1 points (95% CI ")
    assert v.sentence().endswith(", n = 8 seeds): reproduced.")
    one = A.superiority([0.05])
    assert one.verdict == "inconclusive" and one.n == 1 and math.isnan(one.detectable_effect)
    assert "n = 1 seed, no interval" in one.sentence()
    assert A.superiority([]).verdict == "inconclusive"
    with pytest.raises(ValueError, match="finite"):
        A.superiority([0.1, float("nan")])


# -- equivalence (TOST) ------------------------------------------------------------------------------------------
def _tost_by_hand(d, margin, alpha=0.05):
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    return max(lower, upper)


def test_equivalence_three_outcomes():
    rng = np.random.default_rng(3)
    small = 0.002 * rng.standard_normal(10)
    v = A.equivalence(small, margin=0.01)
    assert v.verdict == "equivalent" and v.level == pytest.approx(0.90)
    assert v.p_value == pytest.approx(_tost_by_hand(small, 0.01), rel=1e-9) and v.p_value < 0.05
    ci90 = stats.ttest_1samp(small, 0.0).confidence_interval(0.90)
    assert (v.low, v.high) == pytest.approx((ci90.low, ci90.high), abs=1e-12)
    assert -0.01 < v.low and v.high < 0.01

    wide = 0.004 + 0.02 * rng.standard_normal(5)  # interval contains 0, yet not equivalence evidence
    w = A.equivalence(wide, margin=0.01)
    assert w.verdict == "inconclusive" and w.low < 0 < w.high and w.p_value >= 0.05

    far = 0.05 + 0.005 * rng.standard_normal(6)
    f = A.equivalence(far, margin=0.01)
    assert f.verdict == "not equivalent" and f.interval(0.95)[0] > 0.01
    assert "differ by more than ±1.0 points" in f.sentence() and "(95% CI" in f.sentence()
    assert "equivalent within ±1.0 points" in v.sentence() and "(90% CI" in v.sentence()


def test_equivalence_needs_a_margin():
    with pytest.raises(TypeError):
        A.equivalence([0.1, 0.2])  # no default margin
    for margin in (0.0, -0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="margin"):
            A.equivalence([0.1, 0.2], margin=margin)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=3, max_size=12))
def test_equivalence_with_a_huge_margin_says_equivalent(diffs):
    assert A.equivalence(diffs, margin=1e6).verdict == "equivalent"


# -- non-superiority (the upper test of TOST) ---------------------------------------------------------------------
def test_non_superiority_reproduced_against_scipy():
    rng = np.random.default_rng(11)
    d = 0.002 + 0.004 * rng.standard_normal(8)  # A about as good as B: no better by 1 point
    v = A.non_superiority(d, margin=0.01, a="l1sp", b="l2sp")
    upper = stats.ttest_1samp(d, 0.01, alternative="less")  # H0: mu >= m
    bound = stats.ttest_1samp(d, 0.0, alternative="less").confidence_interval(0.95).high  # one-sided 95% bound
    ci90 = stats.ttest_1samp(d, 0.0).confidence_interval(0.90)
    assert v.rule == "non-superiority" and v.verdict == "reproduced"
    assert v.p_value == pytest.approx(upper.pvalue, rel=1e-9) and v.p_value < 0.05
    assert v.level == pytest.approx(0.90) and (v.low, v.high) == pytest.approx((ci90.low, ci90.high), abs=1e-12)
    assert v.high == pytest.approx(bound, abs=1e-12) and v.high < 0.01
    assert v.sentence().startswith("l1sp is no better than l2sp by more than 1.0 points: l1sp − l2sp = ")
    assert "(90% CI " in v.sentence() and v.sentence().endswith("n = 8 seeds): reproduced.")


def test_non_superiority_not_reproduced_against_scipy():
    rng = np.random.default_rng(12)
    d = 0.04 + 0.005 * rng.standard_normal(6)  # A beats B by about 4 points
    v = A.non_superiority(d, margin=0.01)
    ci95 = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert v.verdict == "not reproduced" and v.interval(0.95)[0] == pytest.approx(ci95.low, abs=1e-12)
    assert ci95.low > 0.01
    assert v.p_value == pytest.approx(stats.ttest_1samp(d, 0.01, alternative="less").pvalue, rel=1e-9)
    assert "A beats B by more than 1.0 points" in v.sentence() and "(95% CI " in v.sentence()


def test_non_superiority_inconclusive_never_decided_by_the_interval_reaching_zero():
    rng = np.random.default_rng(13)
    d = 0.003 + 0.02 * rng.standard_normal(5)  # interval contains 0, yet is no evidence that A is no better
    v = A.non_superiority(d, margin=0.01)
    ci95 = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert ci95.low < 0 < ci95.high and v.high > 0.01 and ci95.low < 0.01
    assert v.verdict == "inconclusive"
    assert v.p_value == pytest.approx(stats.ttest_1samp(d, 0.01, alternative="less").pvalue, rel=1e-9)
    assert v.p_value >= 0.05
    assert v.detectable_effect == pytest.approx(0.01 + A.detectable_effect(v.sd, 5))
    assert "This design detects a true difference of" in v.sentence()
    assert A.non_superiority([0.001], margin=0.01).verdict == "inconclusive"
    for margin in (0.0, -0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="margin"):
            A.non_superiority(d, margin=margin)


def test_all_of_mixes_superiority_and_non_superiority_only():
    yes = A.superiority([0.02, 0.03, 0.025])
    no_better = A.non_superiority([0.001, -0.001, 0.0], margin=0.01)
    better = A.non_superiority([0.05, 0.051, 0.049], margin=0.01)
    assert A.all_of([no_better, no_better]) == "reproduced"
    assert A.all_of([yes, no_better]) == "reproduced"
    assert A.all_of([yes, better]) == "not reproduced"
    with pytest.raises(ValueError):
        A.all_of([no_better, A.equivalence([0.001, -0.001, 0.0], margin=0.01)])


# -- Holm --------------------------------------------------------------------------------------------------------
def test_holm_textbook_example():
    h = A.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06
    assert h.p_holm.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert h.reject.tolist() == [True, False, False, True]
    # step-down by hand: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2 stops
    assert A.holm([0.01, 0.04, 0.03, 0.005], alpha=0.07).reject.tolist() == [True, True, True, True]


def test_holm_caps_at_one_and_treats_nan_as_one():
    h = A.holm([0.5, float("nan"), 0.01])
    assert h.p_holm.tolist() == pytest.approx([1.0, 1.0, 0.03])
    assert h.reject.tolist() == [False, False, True]
    assert A.holm([]).empty


def test_superiority_family_by_hand():
    rng = np.random.default_rng(4)
    family = [0.03 + 0.01 * rng.standard_normal(6), 0.012 + 0.01 * rng.standard_normal(6),
              -0.03 + 0.01 * rng.standard_normal(6), 0.002 + 0.01 * rng.standard_normal(6)]
    names = [("mi", "supervised"), ("mi", "te"), ("mi", "mkmmd"), ("mi", "lautum")]
    vs = A.superiority_family(family, names)
    p = np.array([stats.ttest_1samp(d, 0, alternative="greater").pvalue for d in family])
    q = np.array([stats.ttest_1samp(d, 0, alternative="less").pvalue for d in family])

    def holm_by_hand(ps, alpha):
        order, m = np.argsort(ps), len(ps)
        adjusted, running = np.empty(m), 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * ps[i]))
            adjusted[i] = running
        return adjusted, adjusted <= alpha

    p_adj, yes = holm_by_hand(p, 0.025)
    _, no = holm_by_hand(q, 0.025)
    expected = ["reproduced" if y else "not reproduced" if n else "inconclusive" for y, n in zip(yes, no, strict=True)]
    assert [v.verdict for v in vs] == expected
    assert expected[0] == "reproduced" and expected[2] == "not reproduced"
    assert [v.p_holm for v in vs] == pytest.approx(p_adj)
    assert all(v.family_size == 4 for v in vs) and "over 4 tests" in vs[0].sentence()
    assert vs[1].a == "mi" and vs[1].b == "te"
    with pytest.raises(ValueError):
        A.superiority_family(family, names[:2])


def test_family_of_one_says_what_superiority_says():
    rng = np.random.default_rng(5)
    for shift in np.linspace(-0.02, 0.02, 9):
        d = shift + 0.01 * rng.standard_normal(5)
        assert A.superiority_family([d], [("a", "b")])[0].verdict == A.superiority(d).verdict


# -- combining cells and tables of verdicts ----------------------------------------------------------------------
def test_all_of():
    yes, no = A.superiority([0.02, 0.03, 0.025]), A.superiority([-0.02, -0.03, -0.025])
    maybe = A.superiority([0.1, -0.1, 0.0])
    assert A.all_of([yes, yes]) == "reproduced"
    assert A.all_of([yes, maybe]) == "inconclusive"
    assert A.all_of([yes, maybe, no]) == "not reproduced"
    assert A.all_of([]) == "inconclusive"
    eq = A.equivalence([0.001, -0.001, 0.0], margin=0.05)
    assert A.all_of([eq, eq]) == "equivalent"
    with pytest.raises(ValueError):
        A.all_of([yes, eq])


def test_verdicts_table():
    rng = np.random.default_rng(6)
    rows = [{"method": m, "target": tgt, "seed": s, "acc": 0.6 + (0.05 if m == "l2sp" and tgt == "a" else 0.0)
             + 0.005 * rng.standard_normal()} for m in ("l2sp", "l2") for tgt in ("a", "b") for s in range(5)]
    d = A.paired(pd.DataFrame(rows), "l2sp", "l2", "acc", by=["target"])
    v = A.verdicts(d, A.superiority)
    assert v.verdict.tolist() == ["reproduced", "inconclusive"]
    assert v.sentence.iloc[0].startswith("l2sp beats l2 by ")
    e = A.verdicts(d, A.equivalence, margin=0.02)
    assert e.verdict.tolist() == ["not equivalent", "equivalent"]
    assert list(e.columns[-4:]) == ["verdict", "detectable_effect", "p_value", "sentence"]


# -- summary -----------------------------------------------------------------------------------------------------
def test_summary_formats_mean_and_interval():
    t = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3 + ["c"], "k": [5, 5, 20, 5, 20, 20, 5],
                      "acc": [0.80, 0.82, 0.84, 0.70, 0.71, 0.72, 0.5]})
    s = A.summary(t, by=["method"], metric="acc")
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert s.loc["a", "acc (mean ± 95% CI)"] == f"82.0 ± {100 * half:.1f}"
    assert s.loc["c", "acc (mean ± 95% CI)"] == "50.0 (n = 1)" and s.loc["c", "seeds"] == 1
    assert s.index.name == "method" and list(s.columns) == ["acc (mean ± 95% CI)", "seeds"]
    wide = A.summary(t, by=["method", "k"], metric="acc", columns="k", digits=2)
    assert wide.loc["a", 5] == "81.00 ± 12.71" and wide.loc["b", 20] == "71.50 ± 6.35"
    assert isinstance(A.summary(t, by=["method", "k"], metric="acc").index, pd.MultiIndex)
    with pytest.raises(ValueError):
        A.summary(t, by=["method"], metric="acc", columns="method")


# -- provenance label --------------------------------------------------------------------------------------------
def test_provenance_label_one_setting():
    label = A.provenance_label([_record(seed=s) for s in range(168)])
    assert label == "medium profile, 168 runs, CPU (AVX2 kernels), torch 2.14.1, 2026-12-05, commit 1a2b3c4"


def test_provenance_label_lists_disagreements():
    recs = [_record(commit="aaaaaaa111"), _record(commit="bbbbbbb222-dirty", date="2026-12-07T01:00:00+0000"),
            _record(commit="ccccccc333", cpu_capability=None), _record(commit=None)]
    recs[2]["provenance"].pop("cpu_capability")
    recs[3]["provenance"].update(device="cuda:0", device_name="NVIDIA H100", torch="2.15.0")
    label = A.provenance_label(recs)
    assert "4 runs" in label
    assert "3 devices: CPU (AVX2 kernels), CPU (kernels not recorded), GPU (NVIDIA H100)" in label
    assert "2 torch versions: 2.14.1, 2.15.0" in label
    assert "2026-12-05 to 2026-12-07" in label
    assert label.endswith("4 commits: aaaaaaa, bbbbbbb-dirty, ccccccc, unknown")
    assert A.provenance_label([]) == "no records"
