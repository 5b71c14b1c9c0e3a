"""The lautum-paper report: the frozen claims protocol, row filters, λ selection and the claims' verdict table.

Synthetic records only (no training): the grid comes from the experiment's own specs,
the metrics are chosen so that each verdict rule's outcome is known by hand.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lautum import analysis as A
from lautum.experiments import lautum_paper as lp
from lautum.reports import lautum_paper as R

# The grid of tests/test_lautum_paper.py's tiny run: every method, k = 2, seeds 0-1, a two-point λ sweep and one
# ablation (only the layout matters here: nothing runs).
TINY = dict(target="usps", ks=(2,), seeds=(0, 1), pool_k=3, sweep_k=3, sweep_methods=("lautum",),
            sweep_multipliers=(1.0, 10.0), sweep_seeds=(1,), ablations=("noise_scale=10",), ablation_seeds=(1,),
            device="cpu")


def _record(method, seed, params, val=0.5, test=0.5, diverged=False, **metrics):
    return {"experiment": lp.NAME, "method": method, "seed": seed, "profile": "quick", "params": dict(params),
            "metrics": {"target_val_acc": val, "target_test_acc": test, "diverged": diverged,
                        "phase1_L": 1.0 + seed, "phase2_L": 2.0, "source_test_acc": 0.9, **metrics},
            "elapsed_s": 1.0, "config_hash": "0123456789ab",
            "provenance": {"git_commit": "1a2b3c4d5e6f", "device": "cpu", "cpu_capability": "AVX2",
                           "torch": "2.14.1", "date": "2026-12-05T10:00:00+0000"}}


def _grid_records(cfg):
    """One record per run of ``cfg``'s grid, test accuracy varying with method and seed."""
    return [_record(s.method, s.seed, s.params, test=0.5 + 0.01 * s.seed + 0.001 * lp.METHODS.index(s.method))
            for s in lp.specs(cfg)]


def _main(accuracies, ks=(5,)):
    """A main-grid table from ``{method: [accuracy per seed]}`` (the same at every k unless a dict per k)."""
    rows = []
    for k in ks:
        per_method = accuracies[k] if k in accuracies else accuracies
        for method, accs in per_method.items():
            rows += [{"method": method, "k": k, "seed": s, "target_test_acc": a} for s, a in enumerate(accs)]
    return pd.DataFrame(rows)


# -- the protocol -----------------------------------------------------------------------------------------------
def test_protocol_names_one_primary_claim_and_six_secondaries():
    p = R.PROTOCOL
    assert (p.primary.id, p.primary.text, p.primary.a, p.primary.b) == (
        "C1", "Lautum beats supervised transfer", "lautum", "supervised")
    assert [c.id for c in p.secondaries] == ["C2", "C3", "C4", "C5", "C6", "C7"]
    assert all(c.rule == "superiority" and c.margin == 0 and c.source for c in p.claims)
    assert {c.a for c in p.claims} | {c.b for c in p.claims} <= set(lp.METHODS)
    assert not p.preregistered and "not pre-registered" in p.status
    assert R.CLAIMS == p.claims
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.primary.margin = 0.01
    with pytest.raises(ValueError, match="exactly one"):
        R.Protocol(claims=(R.Claim("A", "x", "lautum", "mi", "s"),))
    with pytest.raises(ValueError, match="unique"):
        R.Protocol(claims=(R.Claim("A", "x", "lautum", "mi", "s", primary=True), R.Claim("A", "y", "mi", "mkmmd", "s")))


# -- tidy table and row filters (moved from test_lautum_paper.py, on synthetic records of the same grid) --------
def test_tidy_has_the_experiment_columns_even_without_such_records():
    t = R.tidy([_record("supervised", 0, {"k": 5})])
    assert {"lam", "noise_scale", "ridge", "layer", "diverged", "git_commit"} <= set(t.columns)
    assert t["lam"].isna().all() and t["layer"].isna().all()


def test_tables_split_main_sweep_and_ablation():
    cfg = lp.make_config("quick", **TINY)
    table = R.tidy(_grid_records(cfg))
    main_t = R.main_table(table, cfg)
    assert len(main_t) == 6 * 2 and set(main_t["k"]) == {2}
    assert main_t[list(lp.ABLATION_KEYS)].isna().all().all()
    sweep = R.sweep_table(table, cfg)
    assert sorted(sweep["multiplier"]) == [1.0, 10.0] and set(sweep["seed"]) == {1}
    abl = R.ablation_table(table, cfg)
    assert sorted(abl["variant"]) == ["default", "noise_scale=10"] and set(abl["seed"]) == {1}
    acc = R.accuracy_table(main_t)
    assert list(acc.columns) == ["method", "k = 2"] and sorted(acc["method"]) == sorted(lp.METHODS)
    assert acc.set_index("method").loc["supervised", "k = 2"] == "50.5 ± 6.4"  # 50 and 51 %: t_{.975,1} = 12.71


def test_missing_runs_matches_by_run_not_by_hash():
    cfg = lp.make_config("quick", **TINY)
    records = _grid_records(cfg)
    assert R.missing_runs(records, cfg) == []
    assert R.missing_runs(records[1:], cfg) == [lp.specs(cfg)[0].name]


def test_ablation_differences_are_paired_with_the_default_run():
    cfg = lp.make_config("quick", **{**TINY, "ablation_seeds": (0, 1)})
    records = [_record(s.method, s.seed, s.params,
                       test=0.6 + 0.1 * s.seed - (0.05 + 0.01 * s.seed) * ("noise_scale" in dict(s.params)))
               for s in lp.specs(cfg)]
    out = R.ablation_differences(R.tidy(records), cfg).set_index("variant")
    # differences -0.05 and -0.06: mean -5.5 points, half-width t_{.975,1} * sd / sqrt(2) = 12.706 * 0.005
    assert out.loc["noise_scale=10", "difference to default (points)"] == "-5.5 ± 6.4 (n = 2)"
    assert out.loc["default", "difference to default (points)"] == "–"


# -- λ selection (moved from test_lautum_paper.py) ----------------------------------------------------------------
def test_lambda_selection_uses_validation_skips_diverged_and_breaks_ties_low():
    cfg = lp.make_config("quick", sweep_methods=("lautum", "mi"), sweep_multipliers=(0.1, 1.0, 10.0),
                         sweep_seeds=(0, 1), sweep_k=20, lam_mi=0.1)
    rows = [("lautum", 0.01, s, v, t) for s, (v, t) in enumerate([(0.6, 0.9), (0.7, 0.9)])]
    rows += [("lautum", 0.1, s, v, t) for s, (v, t) in enumerate([(0.65, 0.1), (0.65, 0.1)])]
    rows += [("lautum", 1.0, s, v, t) for s, (v, t) in enumerate([(0.99, 0.1), (float("nan"), 0.1)])]
    rows += [("mi", lam, s, 0.5, 0.5) for lam in (1.0, 0.1) for s in (0, 1)]
    rows += [("mi", 0.01, 2, 0.99, 0.5)]  # a seed outside sweep_seeds: not used
    records = [_record(m, s, {"k": 20, "lam": lam}, val=v, test=t) for m, lam, s, v, t in rows]
    sel = R.lambda_selection(R.tidy(records), cfg).set_index("method")
    # lautum: 1.0 diverged once (ineligible); 0.01 and 0.1 tie at 0.65 (float noise): the smaller
    assert sel.loc["lautum", "lam"] == 0.01 and sel.loc["lautum", "n_eligible"] == 2
    assert sel.loc["lautum", "on_grid_edge"] and sel.loc["lautum", "selected_is_default"]
    assert sel.loc["mi", "lam"] == 0.1 and sel.loc["mi", "n"] == 2 and sel.loc["mi", "selected_is_default"]
    shown = R.format_selection(R.lambda_selection(R.tidy(records), cfg)).set_index("method")
    assert shown.loc["lautum", "on the grid's edge"].startswith("yes")
    assert [n.split(":")[0] for n in R.edge_notes(sel.reset_index(), "here")] == ["here", "here"]


def test_lambda_selection_flags_a_default_that_is_not_the_selection():
    cfg = lp.make_config("quick", sweep_methods=("lautum",), sweep_multipliers=(0.1, 1.0), sweep_seeds=(0,),
                         sweep_k=20)  # default lam_lautum = 0.01 = 0.1 x 0.1
    records = [_record("lautum", 0, {"k": 20, "lam": 0.01}, val=0.6), _record("lautum", 0, {"k": 20, "lam": 0.1},
                                                                              val=0.7)]
    sel = R.lambda_selection(R.tidy(records), cfg)
    assert sel["lam"].tolist() == [0.1] and sel["selected_is_default"].tolist() == [False]


# -- the claims' verdicts ---------------------------------------------------------------------------------------
def test_claim_verdicts_primary_reproduced_secondaries_in_a_family():
    """Moved from test_lautum_paper.py: C1 by R1 alone, C4/C5 by Holm over the secondary claims present."""
    main = _main({"supervised": [0.50, 0.52, 0.49], "lautum": [0.60, 0.61, 0.62], "mi": [0.58, 0.595, 0.60]})
    detail, overall = R.claim_verdicts(main)
    v = detail.set_index("id")
    assert list(v.index) == ["C1", "C4", "C5"]  # the claims whose methods ran
    assert v.loc["C1", "verdict"] == "reproduced" and math.isnan(v.loc["C1", "p_holm"])
    assert v.loc["C4", "verdict"] == "not reproduced"  # MI − Lautum < 0 significantly, after Holm
    assert v.loc["C5", "verdict"] == "reproduced" and v.loc["C5", "family_size"] == 2
    assert math.isclose(v.loc["C1", "diff"], (0.10 + 0.09 + 0.13) / 3)
    assert overall.set_index("id")["verdict"].to_dict() == {"C1": "reproduced", "C4": "not reproduced",
                                                            "C5": "reproduced"}
    # the sentence and detectable effect are analysis.superiority's own
    ref = A.superiority([0.10, 0.09, 0.13], a="lautum", b="supervised")
    assert math.isclose(v.loc["C1", "low"], ref.low) and v.loc["C1", "sentence"] == ref.sentence(100, "points")
    assert math.isclose(v.loc["C1", "detectable_effect"], A.detectable_effect(ref.sd, 3))


def test_primary_claim_inconclusive_with_its_detectable_effect():
    main = _main({"supervised": [0.50, 0.52, 0.49, 0.51], "lautum": [0.52, 0.51, 0.50, 0.53]})
    detail, _ = R.claim_verdicts(main)
    row = detail.iloc[0]
    assert row["verdict"] == "inconclusive" and row["low"] < 0 < row["high"]
    assert row["sentence"].endswith(f"This design detects a true difference of "
                                    f"{100 * row['detectable_effect']:.1f} points with 80% power.")
    # cross-check with scipy: the one-sided paired t test's p-value
    p = stats.ttest_rel([0.52, 0.51, 0.50, 0.53], [0.50, 0.52, 0.49, 0.51], alternative="greater").pvalue
    assert math.isclose(row["p_value"], p, rel_tol=1e-9)


def test_holm_over_the_six_secondaries_can_turn_a_single_test_inconclusive():
    base = np.array([0.50, 0.55, 0.48, 0.60, 0.52, 0.57])
    shifts = {"supervised": [0, 0, 0, 0, 0, 0], "lautum": [0.0, 0.01, -0.01, 0.005, -0.005, 0.0],
              "mi": [0.02, 0.0, 0.015, 0.004, 0.012, 0.006], "temporal-ensembling": [0.01, -0.01, 0, 0.01, -0.005, 0],
              "mkmmd": [-0.01, 0.0, 0.01, 0.0, 0.005, -0.01]}
    main = _main({m: list(base + np.array(s)) for m, s in shifts.items()})
    detail, _ = R.claim_verdicts(main)
    v = detail.set_index("id")
    secondary = v[v["role"] == "secondary"]
    assert len(secondary) == 6 and (secondary["family_size"] == 6).all()
    holm = A.holm(secondary["p_value"].tolist(), alpha=0.025)
    np.testing.assert_allclose(secondary["p_holm"], holm["p_holm"])
    # C5 (MI beats supervised): reproduced by R1 on its own, but not after Holm over six claims
    single = A.superiority(shifts["mi"], a="mi", b="supervised")
    assert single.verdict == "reproduced" and single.p_value < 0.025 < 6 * single.p_value
    assert v.loc["C5", "p_holm"] > 0.025 and v.loc["C5", "verdict"] == "inconclusive"


def test_overall_verdict_is_all_of_the_ks():
    sup = [0.50, 0.52, 0.49, 0.51]
    clear = [a + d for a, d in zip(sup, [0.10, 0.09, 0.11, 0.10], strict=True)]
    unclear = [a + d for a, d in zip(sup, [0.02, -0.01, 0.00, 0.01], strict=True)]
    worse = [a + d for a, d in zip(sup, [-0.10, -0.09, -0.11, -0.10], strict=True)]

    def overall(per_k):
        main = _main({k: {"supervised": sup, "lautum": acc} for k, acc in per_k.items()}, ks=tuple(per_k))
        detail, summary = R.claim_verdicts(main)
        return detail["verdict"].tolist(), summary["verdict"].iloc[0], summary["sentence"].iloc[0]

    assert overall({5: clear, 20: clear})[:2] == (["reproduced", "reproduced"], "reproduced")
    cells, verdict, sentence = overall({5: clear, 20: unclear})
    assert cells == ["reproduced", "inconclusive"] and verdict == "inconclusive"
    assert sentence.startswith("C1 (primary) Lautum beats supervised transfer: inconclusive")
    assert "k=5: reproduced; k=20: inconclusive" in sentence
    assert overall({5: clear, 20: worse})[1] == "not reproduced"


def test_reader_tables_and_power():
    main = _main({"supervised": [0.50, 0.52, 0.49, 0.51], "lautum": [0.52, 0.51, 0.50, 0.53]}, ks=(5, 20))
    detail, overall = R.claim_verdicts(main)
    shown = R.format_verdicts(detail)
    assert list(shown["k"]) == [5, 20] and shown["A − B (points) [95% CI]"].iloc[0].startswith("+1.0 [")
    assert R.format_overall(overall)["overall verdict (every k)"].tolist() == ["inconclusive"]
    assert list(R.detectable_table(detail).columns) == ["claim", "k = 5", "k = 20"]
    power = R.power_table(detail, "C1")
    n = int(power["seeds for 80% power at the observed difference"].iloc[0])
    sd, effect = detail["sd"].iloc[0], detail["diff"].iloc[0]
    assert A.detectable_effect(sd, n) <= effect < A.detectable_effect(sd, n - 1)
    assert R.seeds_for_power(0.01, 0.0) != R.seeds_for_power(0.01, 0.0)  # NaN: no effect to detect
    diffs = R.format_differences(R.differences_to(main))
    assert diffs["method"].tolist() == ["lautum", "lautum"] and diffs["seeds"].tolist() == [4, 4]


def test_verdicts_in_words_and_narrow_tables():
    clear = [0.50, 0.52, 0.49, 0.51, 0.50]
    main = _main({5: {"supervised": clear, "lautum": [a + 0.05 for a in clear], "mi": [a - 0.001 for a in clear]},
                  20: {"supervised": clear, "lautum": [0.51, 0.50, 0.53, 0.49, 0.50],
                       "mi": [a - 0.001 for a in clear]}}, ks=(5, 20))
    detail, overall = R.claim_verdicts(main)
    text = R.verdict_summary(overall, detail, "these records")
    assert text.startswith('On these records, the primary claim, C1 "Lautum beats supervised transfer", is '
                           "**inconclusive** (A − B: k = 5: +5.0 points")
    counts = R.verdict_counts(overall[overall["role"] == "secondary"])
    assert f"Of the 2 secondary claims, {len(counts['reproduced'])} reproduced" in text
    assert "with 80% power" in text  # some test is inconclusive
    words = R.short_verdicts(overall)
    assert words["C1"] == "inconclusive (k = 5: reproduced; k = 20: inconclusive)"
    assert set(words) == set(overall["id"])
    assert list(R.verdict_table(detail).columns) == ["claim", "k", "A − B (points) [95% CI]", "verdict"]
    assert R.evidence_table(detail)["claim"].tolist() == detail["id"].tolist()
    assert not any("AI summary" in c.source for c in R.CLAIMS)
