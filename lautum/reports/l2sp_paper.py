"""The L2-SP experiment's claims, α selection and verdicts (from its run records)."""

from __future__ import annotations

from lautum.stats import paired_difference

__all__ = ["select_alpha", "records_table", "CLAIMS", "claim_verdicts"]


def select_alpha(table, metric: str = "target_val_acc", by=("target", "k", "method")):
    """Per ``by`` group, the α with the best mean ``metric`` over seeds; returns the rows at that α.

    Ties go to the smaller α. This is the paper's cross-validation of α, on a
    validation split disjoint from the test split.
    """
    by = list(by)
    mean = table.groupby(by + ["alpha"], as_index=False)[metric].mean()
    mean = mean.sort_values(by + [metric, "alpha"], ascending=[True] * len(by) + [False, True])
    best = mean.groupby(by, as_index=False).first()[by + ["alpha"]]
    return table.merge(best, on=by + ["alpha"])


# -- from records to verdicts (used by the notebook; nothing here trains) --------------------------------------
def records_table(records: list[dict]):
    """A tidy table from run records (as :meth:`lautum.sweep.SweepResult.table`), plus provenance columns."""
    import pandas as pd

    rows = []
    for r in records:
        row = {"experiment": r["experiment"], "method": r["method"], "seed": r["seed"], "profile": r["profile"]}
        row.update(r.get("params", {}))
        row.update(r["metrics"])
        row["elapsed_s"] = r["elapsed_s"]
        prov = r["provenance"]
        row.update({"device": prov.get("device_name") or prov.get("device"), "date": prov.get("date"),
                    "commit": prov.get("git_commit"), "torch_threads": prov.get("torch_threads")})
        rows.append(row)
    return pd.DataFrame(rows)


#: The paper's claims tested here, and the rule each verdict follows (fixed before looking at the results).
CLAIMS = {
    "C1": ("L2-SP beats L2 on every target (ICLR Table 2: by 3.1-4.9 points)",
           "paired diff l2sp - l2 at the selected alphas: reproduced if the 95% CI is above 0 on every target, "
           "not reproduced if it is below 0 on some target, else inconclusive"),
    "C2": ("L2-SP-Fisher brings no significant gain over L2-SP",
           "paired diff l2sp-fisher - l2sp: reproduced if the CI's lower end is <= 0 on every target, "
           "not reproduced if it is above 0 on some target"),
    "C3": ("Freezing the first layers helps L2 but not L2-SP (Fig. 2)",
           "paired diffs l2-freeze - l2 and l2sp-freeze - l2sp: reproduced if the first CI is above 0 and the "
           "second's lower end is <= 0; not reproduced if freezing significantly hurts L2 or helps L2-SP; "
           "else inconclusive"),
    "C4": ("L2-SP stays closer to the starting point than L2, in every layer",
           "paired diff of ||w - w0||/||w0|| (l2 - l2sp) per penalised tensor: reproduced if every CI is above 0 "
           "on every target, not reproduced if one is below 0, else inconclusive"),
    "C5": ("L1-SP and Group-Lasso-SP are no better than L2-SP",
           "paired diffs l1sp - l2sp and gl-sp - l2sp: reproduced if the CIs' lower ends are <= 0 on every "
           "target, not reproduced if one is above 0"),
}


def _combine(verdicts: list[str]) -> str:
    if "not reproduced" in verdicts:
        return "not reproduced"
    if verdicts and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


def claim_verdicts(selected, level: float = 0.95):
    """Per claim and target: the paired difference (mean, CI, n) and its verdict, from α-selected runs.

    ``selected`` is :func:`select_alpha`'s output (one α per target × k × method).
    Returns ``(detail, summary)`` DataFrames; ``summary`` has one verdict per claim.
    """
    import pandas as pd

    def diff(a, b, metric="target_test_acc", table=selected):
        return paired_difference(table, a, b, metric=metric, by=["target", "k"], level=level)

    rows = []

    def add(claim, d, verdict_fn, what=None):
        for r in d.itertuples():
            rows.append({"claim": claim, "target": r.target, "k": r.k, "comparison": what or f"{r.a} - {r.b}",
                         "mean": r.mean, "ci": r.ci, "low": r.low, "high": r.high, "n": r.n,
                         "verdict": verdict_fn(r)})

    add("C1", diff("l2sp", "l2"),
        lambda r: "reproduced" if r.low > 0 else "not reproduced" if r.high < 0 else "inconclusive")
    add("C2", diff("l2sp-fisher", "l2sp"), lambda r: "not reproduced" if r.low > 0 else "reproduced")
    add("C3", diff("l2-freeze", "l2"),
        lambda r: "reproduced" if r.low > 0 else "not reproduced" if r.high < 0 else "inconclusive")
    add("C3", diff("l2sp-freeze", "l2sp"), lambda r: "not reproduced" if r.low > 0 else "reproduced")
    layers = sorted(c.removeprefix("reldist/") for c in selected.columns if c.startswith("reldist/"))
    for layer in layers:
        add("C4", diff("l2", "l2sp", metric=f"reldist/{layer}"),
            lambda r: "reproduced" if r.low > 0 else "not reproduced" if r.high < 0 else "inconclusive",
            what=f"reldist {layer}: l2 - l2sp")
    add("C5", diff("l1sp", "l2sp"), lambda r: "not reproduced" if r.low > 0 else "reproduced")
    add("C5", diff("gl-sp", "l2sp"), lambda r: "not reproduced" if r.low > 0 else "reproduced")
    detail = pd.DataFrame(rows)
    summary = pd.DataFrame([{"claim": c, "statement": CLAIMS[c][0],
                             "verdict": _combine(detail.loc[detail.claim == c, "verdict"].tolist()),
                             "min_seeds": int(detail.loc[detail.claim == c, "n"].min()),
                             "rule": CLAIMS[c][1]} for c in CLAIMS if (detail.claim == c).any()])
    return detail, summary
