"""Claims about the published tables, evaluated by computation from ``data/paper/``.

``table2-correlation``: Table 2 says ensemble accuracy correlates strongly and positively with the
dynamic-loss threshold τ. The evaluator regenerates Table 2 from Table 1, finds the numeric
encoding of the ``None`` (cross-entropy) row that reproduces it, and recomputes r under the
principled alternatives (τ = 1.0, where dynamic loss has the cross-entropy gradient; ``None``
excluded), with exact permutation p-values (n = 5: 120 orderings; n = 4: 24).

Verdict rule (stated here and in ``values.rule``; it was written after the published numbers had been
seen, so a reader should judge it on its own terms):
- ``holds`` if under every principled encoding every cell has r ≥ 0.7 and one-sided permutation
  p < 0.05;
- ``fails`` if under some principled encoding the majority of cells have r < 0.7;
- ``conditional`` otherwise.
"""

from __future__ import annotations

import numpy as np

from analysis.audit import Finding, claim

STRONG_R = 0.7
ALPHA = 0.05


@claim(
    "table2-correlation",
    source="paper text",
    kind="the authors' records",
    overturn=(
        "A Paper Table 1 whose accuracies rise with τ in every cell however the cross-entropy row is coded; r"
        " is arithmetic on the published numbers."
    ),
    text="Ensemble performance correlates strongly and positively with the dynamic-loss threshold (Paper Table 2).",
)
def evaluate_table2_correlation() -> Finding:
    from analysis.audit.published import (
        PRINCIPLED_ENCODINGS,
        best_encoding,
        published_table2_audit,
        search_none_encoding,
    )

    search = search_none_encoding()
    best = best_encoding(search)
    audit = published_table2_audit()
    grid_best = search.iloc[0]
    alt: dict[str, dict] = {}
    for enc in PRINCIPLED_ENCODINGS:
        a = audit[audit["encoding"] == enc]
        alt[enc] = {
            "pearson_r": {f"{r.dataset}/{r.fusion}": round(float(r.pearson_r), 4) for r in a.itertuples()},
            "perm_p_greater": {f"{r.dataset}/{r.fusion}": round(float(r.perm_p_greater), 4) for r in a.itertuples()},
            "n_orderings": int(a["n_orderings"].iloc[0]),
            "cells_strong": int((a["pearson_r"] >= STRONG_R).sum()),
            "cells_negative": int((a["pearson_r"] < 0).sum()),
            "cells_perm_significant": int((a["perm_p_greater"] < ALPHA).sum()),
            "n_cells": int(len(a)),
        }
    rep = audit[audit["reproduces"]]
    named = search[~search["encoding"].str.endswith("(grid)") & (search["encoding"] != best["encoding"])]
    not_reproducing = named[named["cells_match_3dp"] < named["n_cells"]]["encoding"].tolist()
    values = {
        "encoding": best["encoding"],
        "encoding_none_value": None if np.isnan(best["none_value"]) else float(best["none_value"]),
        "max_abs_diff": round(float(best["max_abs_diff"]), 6),
        "cells_match_3dp": int(best["cells_match_3dp"]),
        "n_cells": int(best["n_cells"]),
        "grid_best_none_value": float(grid_best["none_value"]),
        "grid_best_max_abs_diff": round(float(grid_best["max_abs_diff"]), 6),
        "reproduced_perm_p_greater": {f"{r.dataset}/{r.fusion}": round(float(r.perm_p_greater), 4)
                                      for r in rep.itertuples()},
        "alternatives": alt,
        "named_encodings_not_reproducing": not_reproducing,
        "rule": f"holds: r>={STRONG_R} and one-sided permutation p<{ALPHA} in every cell under every principled "
                f"encoding; fails: majority of cells r<{STRONG_R} under some principled encoding; else conditional",
    }
    all_strong = all(v["cells_strong"] == v["n_cells"] and v["cells_perm_significant"] == v["n_cells"] for v in alt.values())
    some_majority_weak = any(v["n_cells"] - v["cells_strong"] > v["n_cells"] / 2 for v in alt.values())
    verdict = "holds" if all_strong else ("fails" if some_majority_weak else "conditional")
    ce1 = alt["None=1.0 (CE limit)"]
    exc = alt["None excluded"]
    evidence = (
        f"Paper Table 2 is reproduced from Paper Table 1 when the cross-entropy row is encoded as "
        f"τ = {values['encoding_none_value']} ({best['encoding']}: {values['cells_match_3dp']}/{values['n_cells']} "
        f"cells to 3 decimals, max |Δr| = {values['max_abs_diff']:.5f}; grid optimum τ = "
        f"{values['grid_best_none_value']}; {', '.join(not_reproducing) or 'no other named encoding'} "
        f"{'do' if not_reproducing else 'does'} not reproduce it); a value far below the τ range gives "
        f"the CE row leverage that drives r. With CE at τ = 1.0 (its limit), r ≥ {STRONG_R} in "
        f"{ce1['cells_strong']}/{ce1['n_cells']} cells and r < 0 in {ce1['cells_negative']}. Without the CE row "
        f"(n = 4, {exc['n_orderings']} orderings), r ≥ {STRONG_R} in {exc['cells_strong']}/{exc['n_cells']} cells "
        f"but the smallest attainable one-sided permutation p is 1/{exc['n_orderings']}; "
        f"{exc['cells_perm_significant']}/{exc['n_cells']} cells reach p < {ALPHA}. With n = 5 "
        f"(120 orderings) even a perfectly monotone column has p = 1/120 ≈ 0.0083: five points are weak "
        f"evidence, and 'dynamic loss beats CE' is a two-group contrast, not a correlation with τ."
    )
    return Finding(
        verdict=verdict,
        evidence=evidence,
        values=values,
    )
