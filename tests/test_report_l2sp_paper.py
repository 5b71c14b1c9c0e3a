"""The L2-SP report: α selected on validation (R0), the frozen claim protocol, claims decided by their rules.

Synthetic tables whose paired differences have an exact mean and standard deviation,
so every verdict can be checked by hand; each rule (superiority, equivalence,
non-superiority) reaches each of its verdicts at least once.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lautum import analysis as A
from lautum.reports import l2sp_paper as R

SEEDS = 8
TENSORS = ("features.0.weight", "features.4.weight", "features.8.weight")


def _pattern(seed: int, n: int = SEEDS) -> np.ndarray:
    """A fixed vector with mean exactly 0 and sample standard deviation exactly 1."""
    x = np.random.default_rng(seed).standard_normal(n)
    x = x - x.mean()
    return x / x.std(ddof=1)


def _table(diffs: dict[str, tuple[float, float]], reldist: tuple[float, float, float] = (0.9, 0.1, 0.01),
           targets=("notmnist", "usps"), methods=tuple(R.METHOD_LABELS)) -> pd.DataFrame:
    """Runs of every method at one α whose paired differences are exactly ``mean ± sd`` per comparison.

    ``diffs`` maps ``"l2sp-l2"``, ``"fisher"`` (l2sp-fisher − l2sp), ``"l2freeze"`` (l2-freeze − l2),
    ``"spfreeze"`` (l2sp-freeze − l2sp), ``"l1sp"``, ``"glsp"`` (− l2sp) to ``(mean, sd)``.
    ``reldist`` is (l2's, l2sp's, sd of their difference) for every tensor.
    """
    rows = []
    for ti, target in enumerate(targets):
        def d(key, salt, ti=ti):
            mean, sd = diffs[key]
            return mean + sd * _pattern(100 * ti + salt)

        common = 0.7 + 0.1 * ti + 0.03 * _pattern(50 + ti)  # shared by all methods at a seed: pairing removes it
        acc = {"l2sp": common}
        acc["l2"] = acc["l2sp"] - d("l2sp-l2", 1)
        acc["l2sp-fisher"] = acc["l2sp"] + d("fisher", 2)
        acc["l2-freeze"] = acc["l2"] + d("l2freeze", 3)
        acc["l2sp-freeze"] = acc["l2sp"] + d("spfreeze", 4)
        acc["l1sp"] = acc["l2sp"] + d("l1sp", 5)
        acc["gl-sp"] = acc["l2sp"] + d("glsp", 6)
        for method in methods:
            for seed in range(SEEDS):
                row = {"target": target, "k": 10, "method": method, "seed": seed, "alpha": 0.1,
                       "target_val_acc": 0.5, "target_test_acc": float(acc[method][seed]), "diverged": False}
                for j, tensor in enumerate(TENSORS):
                    l2_dist, sp_dist, sd = reldist
                    shift = {"l2": l2_dist + sd * _pattern(200 + 10 * ti + j)[seed], "l2sp": sp_dist}.get(method, 0.3)
                    row[f"reldist/{tensor}"] = shift
                rows.append(row)
    return pd.DataFrame(rows)


HOLDS = {"l2sp-l2": (0.04, 0.005), "fisher": (0.0, 0.003), "l2freeze": (0.03, 0.005), "spfreeze": (0.0, 0.003),
         "l1sp": (-0.02, 0.003), "glsp": (0.0, 0.003)}
FAILS = {"l2sp-l2": (-0.04, 0.005), "fisher": (0.05, 0.005), "l2freeze": (-0.03, 0.005), "spfreeze": (0.05, 0.005),
         "l1sp": (0.05, 0.005), "glsp": (0.04, 0.005)}
NOISY = {"l2sp-l2": (0.003, 0.02), "fisher": (0.004, 0.02), "l2freeze": (0.003, 0.02), "spfreeze": (0.008, 0.02),
         "l1sp": (0.008, 0.02), "glsp": (0.008, 0.02)}


def _verdicts(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return R.claim_verdicts(R.selected_runs(table))


def _by_test(detail: pd.DataFrame) -> dict[str, set[str]]:
    return {f"{r.id} {r.comparison}": set(detail.loc[(detail.id == r.id) & (detail.comparison == r.comparison),
                                                    "verdict"]) for r in detail.itertuples()}


# -- α selection (R0) -------------------------------------------------------------------------------------------
def test_select_alpha_uses_validation_mean_prefers_the_smaller_alpha_on_ties_and_shows_the_grid_edge():
    t = pd.DataFrame({"target": "t", "k": 1, "method": ["l2"] * 6 + ["l2sp"] * 6, "seed": [0, 1] * 6,
                      "alpha": [0.01, 0.01, 0.1, 0.1, 1.0, 1.0] * 2, "diverged": False,
                      "target_val_acc": [0.5, 0.7, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7],
                      "target_test_acc": [0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9]})
    sel = R.select_alpha(t)
    assert dict(zip(sel.method, sel.alpha, strict=True)) == {"l2": 0.1, "l2sp": 0.01}  # l2sp: tie -> smaller α
    assert dict(zip(sel.method, sel.on_grid_edge, strict=True)) == {"l2": False, "l2sp": True}
    assert sel["mean_target_val_acc"].tolist() == pytest.approx([0.9, 0.8])
    runs = R.selected_runs(t, sel)
    assert len(runs) == 4 and set(zip(runs.method, runs.alpha, strict=True)) == {("l2", 0.1), ("l2sp", 0.01)}
    assert R.selected_runs(t).equals(runs)  # default selection: R0 on validation, never on test
    oracle = R.select_alpha(t, metric="target_test_acc")  # the exercise's oracle reads the test split
    assert dict(zip(oracle.method, oracle.alpha, strict=True)) == {"l2": 0.01, "l2sp": 1.0}
    shown = R.format_selection(sel)
    assert shown["on the grid's edge"].tolist() == ["no", "yes"] and shown["method"].tolist() == ["L2", "L2-SP"]
    assert shown["mean validation accuracy (%)"].tolist() == ["90.0", "80.0"]
    notes = R.edge_notes(sel, "here")
    assert len(notes) == 1 and "1 of 2 methods (L2-SP α = 0.01)" in notes[0]
    two = R.select_alpha(t[t.alpha < 1])  # two values: every choice is on the edge by construction
    assert two.on_grid_edge.all() and R.edge_notes(two, "here") == [
        "here, t (k = 1): a grid of at most two eligible α values, so every selected α is on its edge; it says "
        "nothing about α beyond the grid."]


def test_select_alpha_skips_an_alpha_at_which_a_seed_diverged():
    t = pd.DataFrame({"target": "t", "k": 1, "method": "l2", "seed": [0, 1, 0, 1], "alpha": [0.1, 0.1, 1.0, 1.0],
                      "target_val_acc": [0.6, 0.6, 0.9, float("nan")], "target_test_acc": 0.5,
                      "diverged": [False, False, False, True]})
    assert R.select_alpha(t)["alpha"].tolist() == [0.1]


# -- the protocol -----------------------------------------------------------------------------------------------
def test_the_protocol_is_frozen_documented_and_declares_rules_and_margins():
    p = R.PROTOCOL
    assert [c.id for c in R.CLAIMS] == ["C1", "C2", "C3", "C4", "C5"]
    assert p.primary.id == "C1" and [c.id for c in p.secondaries] == ["C2", "C3", "C4", "C5"]
    rules = {c.id: [(t.a, t.b, t.rule, t.margin, t.metric) for t in c.tests] for c in R.CLAIMS}
    acc = "target_test_acc"
    assert rules == {
        "C1": [("l2sp", "l2", "superiority", 0.0, acc)],
        "C2": [("l2sp-fisher", "l2sp", "equivalence", 0.01, acc)],
        "C3": [("l2-freeze", "l2", "superiority", 0.0, acc), ("l2sp-freeze", "l2sp", "non-superiority", 0.01, acc)],
        "C4": [("l2", "l2sp", "superiority", 0.0, "reldist/*")],
        "C5": [("l1sp", "l2sp", "non-superiority", 0.01, acc), ("gl-sp", "l2sp", "non-superiority", 0.01, acc)],
    }
    assert all(c.statement and c.source for c in R.CLAIMS)
    assert R.CLAIMS[2].methods == ("l2-freeze", "l2", "l2sp-freeze", "l2sp")
    assert (p.select_param, p.select_by, p.select_metric) == ("alpha", ("target", "k", "method"), "target_val_acc")
    assert not p.preregistered and "not pre-registered" in p.status
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.level = 0.9
    with pytest.raises(dataclasses.FrozenInstanceError):
        R.CLAIMS[1].tests[0].margin = 0.05
    shown = R.protocol_table()
    assert len(shown) == 7 and shown["margin"].tolist() == ["0", "1 point", "0", "1 point", "0", "1 point", "1 point"]


def test_the_protocol_refuses_what_it_cannot_decide():
    with pytest.raises(ValueError, match="margin"):
        R.Comparison("l1sp", "l2sp", "non-superiority")  # a "no better" claim needs a declared margin
    with pytest.raises(ValueError, match="margin"):
        R.Comparison("l2sp-fisher", "l2sp", "equivalence", 0.0)
    with pytest.raises(ValueError, match="rule"):
        R.Comparison("l2sp", "l2", "interval reaches 0")
    claim = R.CLAIMS[0]
    with pytest.raises(ValueError, match="primary"):
        R.Protocol(claims=(dataclasses.replace(claim, primary=False),))
    with pytest.raises(ValueError, match="unique"):
        R.Protocol(claims=(claim, claim))
    with pytest.raises(ValueError, match="does not run"):
        R.Protocol(claims=(dataclasses.replace(claim, tests=(R.Comparison("l2sp", "adam", "superiority"),)),))


# -- verdicts: each rule reaches each verdict --------------------------------------------------------------------
def test_when_the_paper_holds_every_claim_is_reproduced():
    detail, overall = _verdicts(_table(HOLDS))
    assert _by_test(detail) == {"C1 l2sp − l2": {"reproduced"}, "C2 l2sp-fisher − l2sp": {"equivalent"},
                                "C3 l2-freeze − l2": {"reproduced"}, "C3 l2sp-freeze − l2sp": {"reproduced"},
                                "C4 l2 − l2sp": {"reproduced"}, "C5 l1sp − l2sp": {"reproduced"},
                                "C5 gl-sp − l2sp": {"reproduced"}}
    assert dict(zip(overall.id, overall.verdict, strict=True)) == {c.id: "reproduced" for c in R.CLAIMS}
    assert (overall.min_seeds == SEEDS).all() and overall.cells.tolist() == [2, 2, 4, 6, 4]


def test_when_the_paper_fails_every_claim_is_not_reproduced():
    detail, overall = _verdicts(_table(FAILS, reldist=(0.1, 0.9, 0.01)))
    assert _by_test(detail) == {"C1 l2sp − l2": {"not reproduced"}, "C2 l2sp-fisher − l2sp": {"not equivalent"},
                                "C3 l2-freeze − l2": {"not reproduced"}, "C3 l2sp-freeze − l2sp": {"not reproduced"},
                                "C4 l2 − l2sp": {"not reproduced"}, "C5 l1sp − l2sp": {"not reproduced"},
                                "C5 gl-sp − l2sp": {"not reproduced"}}
    assert set(overall.verdict) == {"not reproduced"}
    assert (detail.loc[detail.id != "C1", "p_holm_against"] <= 0.05).all()
    c2 = detail[detail.id == "C2"].iloc[0]
    assert "differ by more than ±1.0 points" in c2.sentence and "(95% CI" in c2.sentence


def test_when_the_runs_are_too_noisy_every_claim_is_inconclusive_with_its_detectable_effect():
    detail, overall = _verdicts(_table(NOISY, reldist=(0.3, 0.3, 0.05)))
    assert set(detail.verdict) == {"inconclusive"} and set(overall.verdict) == {"inconclusive"}
    assert set(detail.rule) == {"superiority", "equivalence", "non-superiority"}
    for r in detail.itertuples():
        assert f"This design detects a true difference of {100 * r.detectable_effect:.1f}" in r.sentence
        base = A.detectable_effect(r.sd, r.n, 0.95)
        assert r.detectable_effect == pytest.approx(base + (r.margin if r.rule != "equivalence" else 0.0))


def test_a_claim_is_reproduced_only_if_every_cell_and_both_halves_are():
    mixed = {**HOLDS, "spfreeze": NOISY["spfreeze"]}  # freezing helps L2 (reproduced), L2-SP half inconclusive
    overall = _verdicts(_table(mixed))[1].set_index("id")["verdict"]
    assert overall["C3"] == "inconclusive" and overall["C1"] == "reproduced"
    worse = {**HOLDS, "glsp": FAILS["glsp"]}  # one of C5's two comparisons fails
    assert _verdicts(_table(worse))[1].set_index("id").loc["C5", "verdict"] == "not reproduced"


def test_the_interval_reaching_zero_is_never_evidence_for_a_no_better_claim():
    # l1sp − l2sp = +0.8 points ± 2: the interval contains 0 yet the claim "no better by 1 point" is not shown
    detail = _verdicts(_table({**HOLDS, "l1sp": (0.008, 0.02)}))[0]
    row = detail[(detail.id == "C5") & (detail.a == "l1sp")].iloc[0]
    lo, hi = stats.t.interval(0.95, SEEDS - 1, loc=row["diff"], scale=row.sd / math.sqrt(SEEDS))
    assert lo < 0 < hi and row.verdict == "inconclusive"


# -- the detail table --------------------------------------------------------------------------------------------
def test_detail_rows_cells_intervals_and_sentences_come_from_the_analysis_rules():
    table = _table(HOLDS)
    detail, _ = _verdicts(table)
    assert len(detail) == 2 + 2 + 4 + 2 * len(TENSORS) + 4
    c4 = detail[detail.id == "C4"]
    assert sorted(set(c4.layer)) == ["conv1", "conv2", "dense"] and set(c4.unit) == {"% of ‖w⁰‖"}
    assert detail.loc[detail.id != "C4", "layer"].isna().all() and (detail.n == SEEDS).all()
    # the primary claim is one analysis.superiority on the paired differences, not adjusted
    c1 = detail[(detail.id == "C1") & (detail.target == "usps")].iloc[0]
    runs = R.selected_runs(table)
    diffs = A.paired(runs[runs.target == "usps"], "l2sp", "l2", "target_test_acc")["diffs"].iloc[0]
    v = A.superiority(list(diffs), a="L2-SP", b="L2")
    assert c1.sentence == v.sentence(100, "points") and math.isnan(c1.p_holm) and c1.family_size == 1
    assert (c1["diff"], c1.low, c1.high) == pytest.approx((v.effect, v.low, v.high))
    assert c1["diff"] == pytest.approx(0.04)
    # the secondaries are one Holm family over every test present (C2 2 + C3 4 + C4 6 + C5 4)
    assert set(detail.loc[detail.id != "C1", "family_size"]) == {16}
    c2 = detail[(detail.id == "C2") & (detail.target == "notmnist")].iloc[0]
    assert c2.level == pytest.approx(0.90) and "Holm-adjusted p" in c2.sentence
    shown = R.format_verdicts(detail)
    assert len(shown) == len(detail) and not shown.astype(str).apply(lambda c: c.str.contains("nan")).any().any()
    assert shown.loc[0, "Holm p, for / against"] == "– (primary)" and shown.loc[0, "interval"] == "95%"
    assert (detail.loc[detail.id != "C1", "p_holm_against"] > 0.05).all() and detail.p_holm_against.iloc[:2].isna().all()
    assert R.format_overall(_verdicts(table)[1])["overall verdict (R4)"].tolist() == ["reproduced"] * 5


def test_tests_whose_methods_did_not_run_are_left_out():
    t = _table(HOLDS, methods=("l2", "l2sp", "l1sp"))
    detail, overall = _verdicts(t)
    assert overall.id.tolist() == ["C1", "C4", "C5"] and set(detail.comparison) == {"l2sp − l2", "l2 − l2sp",
                                                                                    "l1sp − l2sp"}
    assert set(detail.loc[detail.id != "C1", "family_size"]) == {2 * len(TENSORS) + 2}


# -- the secondary Holm family -----------------------------------------------------------------------------------
def test_a_family_of_one_says_what_its_rule_says():
    rng = np.random.default_rng(7)
    for _ in range(30):
        d = list(rng.normal(rng.uniform(-0.03, 0.03), rng.uniform(0.002, 0.03), 6))
        for v in (A.superiority(d), A.equivalence(d, 0.01), A.non_superiority(d, 0.01)):
            assert R.secondary_family([v])[0].verdict == v.verdict


def test_on_superiority_tests_alone_the_family_is_superiority_family():
    rng = np.random.default_rng(8)
    diffs = [list(rng.normal(mu, 0.01, 5)) for mu in (0.03, 0.012, 0.0, -0.015, -0.03)]
    names = [(f"a{i}", "b") for i in range(len(diffs))]
    ours = R.secondary_family([A.superiority(d, a=a, b=b) for d, (a, b) in zip(diffs, names, strict=True)])
    theirs = A.superiority_family(diffs, names)
    assert [v.verdict for v in ours] == [v.verdict for v in theirs]
    assert [v.p_holm for v in ours] == pytest.approx([min(1.0, 2 * v.p_holm) for v in theirs])
    assert {v.verdict for v in ours} >= {"reproduced", "not reproduced"}


def test_holm_can_turn_a_lone_reproduction_into_inconclusive():
    d = [0.0055 + e for e in 0.004 * _pattern(9, 6)]  # upper 90% bound just under 1 point: p ≈ 0.03
    alone = A.non_superiority(d, 0.01)
    assert alone.verdict == "reproduced" and 0.01 < alone.p_value < 0.05
    weak = [A.equivalence([0.004 + e for e in 0.02 * _pattern(i, 6)], 0.01) for i in range(3)]
    family = R.secondary_family([alone, *weak])
    assert family[0].verdict == "inconclusive" and family[0].family_size == 4
    assert family[0].p_holm == pytest.approx(A.holm([alone.p_value] + [v.p_value for v in weak])["p_holm"][0])


# -- descriptive tables ------------------------------------------------------------------------------------------
def test_reader_tables_have_human_headers_and_no_stray_index():
    table = _table(HOLDS)
    runs = R.selected_runs(table)
    acc = R.accuracy_table(runs)
    assert list(acc.columns) == ["method", "notmnist (k = 10), %", "usps (k = 10), %"]
    assert acc["method"].tolist() == list(R.METHOD_LABELS.values()) and acc.index.tolist() == list(range(7))
    assert all(" ± " in c and "(α = 0.1)" in c for c in acc.iloc[:, 1:].to_numpy().ravel())
    dist = R.distance_table(runs)
    assert list(dist.columns) == ["target", "method", "conv1", "conv2", "dense"]
    assert dist.loc[0, "conv1"].startswith("0.900 ± ")
    detail = R.claim_verdicts(runs)[0]
    paper = R.paper_comparison(runs, detail)
    assert len(paper) == len(R.PAPER_TABLE2) + 2 and paper.loc[4, "L2-SP − L2 (points)"].startswith("+4.00 ± ")
    gap = R.oracle_selection_gap(table)
    assert gap["selection"].tolist() == ["validation (rule R0)"] * 2 + ["test split (oracle)"] * 2
    assert (gap["seeds"] == SEEDS).all()
    welch = R.paired_vs_welch(runs, "notmnist")
    assert welch["test"].tolist() == ["paired t (same seeds)", "Welch t (unpaired)"]
    curves = R.alpha_curves(table)
    assert len(curves) == 2 * 7 and (curves["n"] == SEEDS).all()


def test_missing_runs_names_the_runs_of_the_grid_that_have_no_record():
    from lautum.experiments import l2sp_paper as L

    cfg = L.make_config("quick", seeds=(0,), targets=("usps",), methods=("l2", "l2sp"))
    records = [{"method": s.method, "seed": s.seed, "params": dict(s.params)} for s in L.specs(cfg)]
    assert R.missing_runs(records, cfg) == []
    assert R.missing_runs(records[1:], cfg) == [L.specs(cfg)[0].name]


def test_benchmark_sentence_states_the_ratio_the_goal_and_noise():
    def bench(l2sp_ratio, l2_ratio):
        regs = {"l2sp": {"seconds_per_step": 0.011, "ratio": l2sp_ratio, "ratios": [l2sp_ratio] * 5},
                "l2": {"seconds_per_step": 0.01, "ratio": l2_ratio, "ratios": [l2_ratio] * 5}}
        return {"device": "cpu (2 threads)", "batch_size": 64, "image": "1x28x28", "plain_seconds_per_step": 0.01,
                "regularizers": regs, "goal": 1.10}

    met = R.benchmark_sentence(bench(1.05, 1.02))
    assert "a ratio of 1.05 (median over 5 interleaved rounds" in met and "**met**" in met and "below 1" not in met
    noisy = R.benchmark_sentence(bench(1.30, 0.60))
    assert "**not met**" in noisy and "The lowest ratio measured, 0.60, is below 1" in noisy


def test_verdicts_in_words_and_narrow_tables():
    detail, overall = _verdicts(_table(HOLDS))
    text = R.verdict_summary(overall, detail, "these records")
    assert text.startswith('On these records, the primary claim, C1 "L2-SP beats L2 on every target", is '
                           "**reproduced** (L2-SP − L2: ")
    assert "Of the 4 secondary claims, 4 reproduced (C2, C3, C4, C5); 0 not reproduced; 0 inconclusive." in text
    assert R.short_verdicts(overall)["C4"] == "reproduced (6 of 6 tests reproduced)"
    assert list(R.verdict_table(detail).columns) == ["claim", "A − B", "cell", "A − B [interval]", "verdict"]
    assert len(R.evidence_table(detail).columns) <= 7 and len(R.evidence_table(detail)) == len(detail)
    noisy_detail, noisy_overall = _verdicts(_table(FAILS, reldist=(0.1, 0.9, 0.01)))
    assert "**not reproduced**" in R.verdict_summary(noisy_overall, noisy_detail, "these records")
