"""The Lautum-paper experiment's claims, tables and verdicts (from its run records)."""

from __future__ import annotations

import math

from lautum.experiments.lautum_paper import ABLATION_KEYS, LAMBDA_BASE, Config, default_lambda


# The papers' claims, as (claim, better method, worse method, source of the claim).
CLAIMS = (
    ("Lautum beats supervised transfer", "lautum", "supervised", "ICCVW 2019 [AI summary]"),
    ("Lautum beats Temporal Ensembling", "lautum", "temporal-ensembling", "ICCVW 2019 [AI summary]"),
    ("Lautum beats MK-MMD", "lautum", "mkmmd", "ICCVW 2019 [AI summary]"),
    ("MI beats Lautum", "mi", "lautum", "arXiv 2306.06731 [AI summary]"),
    ("MI beats supervised transfer", "mi", "supervised", "arXiv 2306.06731 [AI summary]"),
    ("MI beats Temporal Ensembling", "mi", "temporal-ensembling", "arXiv 2306.06731 [AI summary]"),
    ("MI beats MK-MMD", "mi", "mkmmd", "arXiv 2306.06731 [AI summary]"),
)


# -- tables for the notebooks (pure functions of the records) ---------------------------------------------------
def records_table(records: list[dict]):
    """The tidy table of a list of records (as :meth:`lautum.sweep.SweepResult.table`)."""
    from lautum.sweep import SweepResult

    return _with_columns(SweepResult(records=list(records)).table())


def _with_columns(table):
    for key in ABLATION_KEYS:
        if key not in table.columns:
            table = table.assign(**{key: None})
    if "lam" not in table.columns:
        table = table.assign(lam=float("nan"))
    return table


def _plain(table):
    table = _with_columns(table)
    mask = table["noise_scale"].isna() & table["ridge"].isna() & table["layer"].isna()
    return table[mask]


def _is_default_lam(table, cfg: Config):
    import numpy as np

    lam = table["method"].map(lambda m: default_lambda(cfg, m))
    both_none = lam.isna() & table["lam"].isna()
    return both_none | np.isclose(table["lam"].astype(float), lam.astype(float), rtol=1e-9, atol=0)


def main_table(table, cfg: Config):
    """Rows of the main grid: default λ, no ablation, k in ``cfg.ks``."""
    t = _plain(table)
    return t[_is_default_lam(t, cfg) & t["k"].isin(cfg.ks) & t["method"].isin(cfg.methods)].copy()


def sweep_table(table, cfg: Config):
    """Rows of the λ sweep (``sweep_k``, no ablation, the sweep's λ values), with ``multiplier``."""
    import numpy as np

    t = _plain(table)
    t = t[(t["k"] == cfg.sweep_k) & t["method"].isin(cfg.sweep_methods) & t["seed"].isin(cfg.sweep_seeds)].copy()
    t["multiplier"] = t["lam"] / t["method"].map(LAMBDA_BASE)
    on_grid = t["multiplier"].map(lambda m: bool(np.isclose(m, cfg.sweep_multipliers, rtol=1e-6).any()))
    return t[on_grid]


def ablation_table(table, cfg: Config):
    """Ablation rows plus the matching default rows (``variant`` = "default" or ``key=value``)."""
    import pandas as pd

    table = _with_columns(table)
    t = table[(table["k"] == cfg.sweep_k) & table["method"].isin(cfg.ablation_methods)
              & table["seed"].isin(cfg.ablation_seeds)]
    t = t[_is_default_lam(t, cfg)].copy()

    def variant(row):
        for key in ABLATION_KEYS:
            if pd.notna(row[key]):
                return f"{key}={row[key]:g}" if isinstance(row[key], float) else f"{key}={row[key]}"
        return "default"

    t["variant"] = t.apply(variant, axis=1) if len(t) else []
    return t


def select_lambda(table, metric: str = "target_val_acc"):
    """Per method, the λ with the highest mean validation accuracy over seeds (ties: the smaller λ).

    Only validation accuracy is used, never test accuracy. A λ at which any run diverged
    (NaN accuracy) is not eligible. Returns a DataFrame with ``method``, ``lam``,
    ``mean`` (of ``metric``), ``n`` (seeds) and ``n_lams`` (eligible grid points).
    """
    import pandas as pd

    t = table.dropna(subset=["lam"])
    rows = []
    for method, g in t.groupby("method"):
        means = g.groupby("lam")[metric].agg(["mean", "count", lambda v: bool(v.isna().any())]).reset_index()
        means.columns = ["lam", "mean", "count", "diverged"]
        means = means[~means["diverged"]].dropna(subset=["mean"]).sort_values("lam")
        if not len(means):
            continue
        best = means[means["mean"] >= means["mean"].max() - 1e-9].iloc[0]  # ties (to float noise): smaller λ
        rows.append({"method": method, "lam": float(best["lam"]), "mean": float(best["mean"]),
                     "n": int(best["count"]), "n_lams": len(means)})
    return pd.DataFrame(rows)


def summary_table(table, by=("method", "k"), metric: str = "target_test_acc"):
    """Mean ± 95% t-interval per group (:func:`lautum.stats.summarize`)."""
    from lautum.stats import summarize

    return summarize(table, by=list(by), metric=metric)


def paired_differences(table, baseline: str = "supervised", metric: str = "target_test_acc", by=("k",)):
    """Per method and group, the mean ± 95% CI of the paired (same seed) difference ``method - baseline``."""
    import pandas as pd

    from lautum.stats import mean_ci

    rows = []
    for key, group in table.groupby(list(by)):
        key = key if isinstance(key, tuple) else (key,)
        base = group[group["method"] == baseline].set_index("seed")[metric]
        for method, g in group.groupby("method"):
            if method == baseline:
                continue
            d = (g.set_index("seed")[metric] - base).dropna()
            if len(d) == 0:
                continue
            r = mean_ci(d.tolist())
            rows.append({**dict(zip(by, key, strict=True)), "method": method, "baseline": baseline, "diff": r.mean,
                         "ci": r.half_width, "low": r.low, "high": r.high, "n": r.n})
    return pd.DataFrame(rows, columns=[*by, "method", "baseline", "diff", "ci", "low", "high", "n"])


def _verdict(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if low > 0:
        return "reproduced"
    if high < 0:
        return "not reproduced"
    return "inconclusive"


def verdicts(table, metric: str = "target_test_acc"):
    """One row per claim and k: paired difference (better − worse) with its 95% CI, CI overlap, verdict.

    Verdicts are qualitative (the papers' numbers are unknown): *reproduced* when the
    paired-difference CI lies above 0, *not reproduced* when it lies below 0 (the
    opposite ordering is significant), *inconclusive* otherwise. ``overall`` combines
    the ks: reproduced at every k, not reproduced at some k, or inconclusive.
    """
    import pandas as pd

    from lautum.stats import mean_ci

    rows = []
    present = set(table["method"])
    for claim, better, worse, source in CLAIMS:
        if better not in present or worse not in present:
            continue
        for k, group in table.groupby("k"):
            a = group[group["method"] == better].set_index("seed")[metric]
            b = group[group["method"] == worse].set_index("seed")[metric]
            d = (a - b).dropna()
            if len(d) == 0:
                continue
            r, ra, rb = mean_ci(d.tolist()), mean_ci(a.dropna().tolist()), mean_ci(b.dropna().tolist())
            rows.append({"claim": claim, "source": source, "k": k, "better": better, "worse": worse,
                         "acc_better": ra.mean, "ci_better": ra.half_width, "acc_worse": rb.mean,
                         "ci_worse": rb.half_width, "diff": r.mean, "diff_low": r.low, "diff_high": r.high,
                         "n_seeds": r.n, "cis_overlap": not (ra.low > rb.high or rb.low > ra.high),
                         "verdict": _verdict(r.low, r.high)})
    out = pd.DataFrame(rows, columns=["claim", "source", "k", "better", "worse", "acc_better", "ci_better",
                                      "acc_worse", "ci_worse", "diff", "diff_low", "diff_high", "n_seeds",
                                      "cis_overlap", "verdict"])
    out["overall"] = None
    if len(out):
        def overall(vs):
            vs = set(vs)
            if vs == {"reproduced"}:
                return "reproduced"
            if "not reproduced" in vs:
                return "not reproduced"
            return "inconclusive"

        out["overall"] = out.groupby("claim")["verdict"].transform(overall)
    return out


def history_frame(records: list[dict], phase: str = "phase1"):
    """The compact per-step history of ``phase`` of each record, tidy (one row per logged step)."""
    import pandas as pd

    rows = []
    for r in records:
        for row in (r.get("history") or {}).get(phase, []):
            rows.append({"method": r["method"], "seed": r["seed"], **r["params"], **row})
    return pd.DataFrame(rows)


def provenance_label(records: list[dict]) -> str:
    """"profile X, N runs, device D (name), dates A..B, commit(s) C" from the records' provenance."""
    if not records:
        return "no records"
    prov = [r["provenance"] for r in records]
    dates = sorted(p["date"] for p in prov)
    commits = sorted({str(p.get("git_commit")) for p in prov})
    devices = sorted({f"{p['device']} ({p.get('device_name', '?')}, {p.get('torch_threads', '?')} threads)"
                      for p in prov})
    profiles = sorted({r["profile"] for r in records})
    return (f"profile {', '.join(profiles)}; {len(records)} runs; device {'; '.join(devices)}; "
            f"torch {prov[0]['torch']}; dates {dates[0]} .. {dates[-1]}; commit {', '.join(commits)}")

