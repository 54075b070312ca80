"""Page-level helpers for the report: locate and load a preset's results, shape report tables.

Report cells (``reports/*.qmd``) are one to three lines calling functions here or in
:mod:`analysis.figures`. This module knows where results live and which command makes them; it
never computes metrics itself (those come from ``dynloss analyze`` and :mod:`analysis.audit`).

Environment
-----------
``DYNLOSS_PRESET``
    the preset shown (default ``fmnist-mini``); set by ``dynloss report --preset``.
``DYNLOSS_RESULTS_DIR``
    directory holding ``<preset>/`` result folders (default ``<project root>/data/results``).
``DYNLOSS_ROOT``
    the project root, when the report is run from elsewhere.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.cache_format import sha256_file as file_sha256

PRESET_ENV = "DYNLOSS_PRESET"
RESULTS_ENV = "DYNLOSS_RESULTS_DIR"
ROOT_ENV = "DYNLOSS_ROOT"
DEFAULT_PRESET = "fmnist-mini"


class ResultsMissingError(FileNotFoundError):
    """A result table the report needs is absent; the message names the command that makes it."""


#: inputs read by each page helper (filled by :func:`reads`): helper name -> input names. An
#: input is a result table of the preset (``"table1"``), ``"audit"`` (the claim audit) or
#: ``"paper:<file>"`` (a published table in data/paper/). The provenance table is built from it.
HELPER_INPUTS: dict[str, tuple[str, ...]] = {}


def reads(*inputs: str):
    """Record which inputs a page helper reads (for the provenance table); returns it unchanged."""

    def mark(func):
        HELPER_INPUTS[func.__name__] = tuple(inputs)
        return func

    return mark


# --------------------------------------------------------------------------------------------
# locations


def preset_name() -> str:
    """The preset the report shows: ``$DYNLOSS_PRESET`` or ``fmnist-mini``."""
    return os.environ.get(PRESET_ENV, "").strip() or DEFAULT_PRESET


def project_root() -> Path:
    """The project root: ``$DYNLOSS_ROOT``, else the nearest parent of the working directory
    holding ``_quarto.yml``, else the directory above this package."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        if (d / "_quarto.yml").is_file() and (d / "analysis").is_dir():
            return d
    return Path(__file__).resolve().parent.parent


def results_dir(
    preset: str | None = None, *, root: Path | None = None, base: str | Path | None = None, require: bool = False
) -> Path:
    """Directory of a preset's results (``<base>/<preset>``; ``base`` defaults to
    ``$DYNLOSS_RESULTS_DIR`` or ``<root>/data/results``).

    Raises
    ------
    ResultsMissingError
        With ``require=True``, when the directory does not exist.
    """
    preset = preset or preset_name()
    base = base or os.environ.get(RESULTS_ENV) or (root or project_root()) / "data" / "results"
    path = Path(base) / preset
    if require and not path.is_dir():
        raise ResultsMissingError(
            f"No results for preset {preset!r} in {path}: run `dynloss analyze --preset {preset}` "
            f"(after `dynloss train --preset {preset}`), or `make report PRESET={preset}`."
        )
    return path


def result_path(name: str, preset: str | None = None) -> Path:
    """Path of result table ``name`` (``table1`` → ``table1.csv``), checked to exist."""
    preset = preset or preset_name()
    folder = results_dir(preset, require=True)
    for ext in ("csv", "parquet", "json"):
        path = folder / f"{name}.{ext}"
        if path.is_file():
            return path
    raise ResultsMissingError(
        f"Result {name!r} of preset {preset!r} not found in {folder} (looked for {name}.csv): "
        f"run `dynloss analyze --preset {preset}`."
    )


def load_result(name: str, preset: str | None = None) -> pd.DataFrame:
    """Load result table ``name`` of a preset; never returns an empty table.

    Raises
    ------
    ResultsMissingError
        When the file is missing or holds no rows; the message names ``dynloss analyze``.
    """
    path = result_path(name, preset)
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if df.empty:
        raise ResultsMissingError(
            f"{path} holds no rows: rerun `dynloss analyze --preset {preset or preset_name()}`."
        )
    return df


def load_provenance(preset: str | None = None) -> dict[str, Any]:
    """``provenance.json`` written by ``dynloss analyze`` (empty dict when absent)."""
    path = results_dir(preset, require=True) / "provenance.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def short_revision(revision: str) -> str:
    """A revision as shown in the report: 12 hex digits, keeping a ``+dirty`` flag.

    >>> short_revision("0123456789abcdef0123+dirty")
    '0123456789ab+dirty'
    """
    head, plus, flag = revision.partition("+")
    return head[:12] + plus + flag


def code_revision(root: Path | None = None) -> str:
    """The project's revision now (the rendering code), short form."""
    from analysis.pipeline import code_revision as full_revision

    return short_revision(full_revision(root or project_root()))


# --------------------------------------------------------------------------------------------
# display


@dataclass(frozen=True)
class Table:
    """A DataFrame shown as a pandoc pipe table (markdown output works for HTML and Typst alike).

    ``frame`` keeps the data; ``digits`` rounds floats for display only.
    """

    frame: pd.DataFrame
    digits: int = 3
    index: bool = False

    def to_markdown(self) -> str:
        df = self.frame.reset_index() if self.index else self.frame
        if df.empty:
            raise ValueError("Refusing to display an empty table")
        cells = df.copy()
        for col in cells.columns:
            cells[col] = [_fmt_cell(v, self.digits) for v in cells[col]]
        header = [_escape(str(c)) for c in cells.columns]
        # pandoc sizes wide pipe tables by the dashes of the separator line: make them follow
        # the longest cell (capped) so long text columns wrap instead of overflowing
        widths = [_column_weight(h, cells[c]) for h, c in zip(header, cells.columns)]
        numeric = [pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in df.columns]
        align = [("-" * (w - 1) + ":") if num else (":" + "-" * (w - 1)) for w, num in zip(widths, numeric)]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        for row in cells.itertuples(index=False):
            lines.append("| " + " | ".join(_escape(str(v)) for v in row) + " |")
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return self.frame.to_string()


def _column_weight(header: str, values: pd.Series) -> int:
    """Relative width of a column (dashes of the separator line): its longest cell up to 40
    characters, at least its longest header word, plus room for the cell padding."""
    longest = max((_text_width(str(v).replace("**", "")) for v in values), default=0)
    header_word = max((_text_width(w) for w in header.split()), default=0)
    return round(max(min(longest, 40), header_word, 3)) + 3


def _text_width(text: str) -> float:
    """Rough printed width in digit widths (capitals are wider)."""
    return sum(1.4 if c.isupper() else 1.0 for c in text)


def _fmt_cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.{max(digits - 1, 1)}e}"
        return f"{value:.{digits}f}"
    return str(value)


_BOLD = re.compile(r"^\*\*[^*]+\*\*$")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>$^~|#@])")


def _escape(text: str) -> str:
    """Escape markdown syntax in a cell (claims quote formulas such as ``y_i*log(0.1*p)``); a
    cell that is exactly ``**bold**`` stays bold."""
    text = text.replace("\n", " ")
    if _BOLD.match(text):
        return text
    return _MD_SPECIAL.sub(r"\\\1", text)


def show(frame: pd.DataFrame, *, digits: int = 3, index: bool = False) -> Table:
    """Wrap a DataFrame for display as a markdown table (the cell's last expression)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame, got {type(frame).__name__}")
    return Table(frame, digits=digits, index=index)


# --------------------------------------------------------------------------------------------
# loss-claim audit

#: the audit module of the loss claims (its ``CLAIMS`` ids select the loss-audit page's rows)
LOSS_CLAIMS_MODULE = "analysis.audit.loss_claims"
METHOD_CLAIMS_MODULES: tuple[str, ...] = ("analysis.audit.split_claims", "analysis.audit.table_claims")


#: the audit's JSON (``dynloss audit --json``) next to the presets' result folders, when saved
AUDIT_FILE = "audit.json"


def audit_json_path() -> Path:
    """Where a saved audit is looked for: ``<results root>/audit.json``."""
    return results_dir("_").parent / AUDIT_FILE


@functools.lru_cache(maxsize=1)
def _audit_results() -> tuple:
    """The audited claims: read from ``<results root>/audit.json`` when ``make report`` saved it
    (``dynloss audit --json``), else evaluated now (slower: every claim is recomputed)."""
    from analysis.audit import ClaimResult, evaluate_all

    path = audit_json_path()
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        return tuple(ClaimResult(**{k: r[k] for k in ("id", "claim", "verdict", "evidence", "values") if k in r})
                     for r in raw)
    return tuple(evaluate_all())


def _module_claim_ids(module: str) -> list[str]:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return []
    return [spec.id for spec in mod.CLAIMS]


@reads("audit")
def claims_frame(*, modules: Sequence[str] | None = None) -> pd.DataFrame:
    """Every audited claim (or those of ``modules``): ``id, claim, verdict, evidence``.

    Raises
    ------
    ResultsMissingError
        When no claim is registered (the audit is not built): run `dynloss audit`.
    """
    results = list(_audit_results())
    if modules is not None:
        keep = {i for m in modules for i in _module_claim_ids(m)}
        results = [r for r in results if r.id in keep]
    if not results:
        raise ResultsMissingError(
            f"No audited claims{' in ' + ', '.join(modules) if modules else ''}: `dynloss audit` lists none."
        )
    return pd.DataFrame([{"id": r.id, "claim": r.claim, "verdict": r.verdict, "evidence": r.evidence}
                         for r in results])


@reads("audit")
def claims_table(*, modules: Sequence[str] | None = None, evidence: bool = True) -> Table:
    """Claims with their verdict (bold) and, optionally, the evidence text, for display."""
    df = claims_frame(modules=modules)
    df["verdict"] = "**" + df["verdict"] + "**"
    if not evidence:
        df = df.drop(columns="evidence")
    return show(df)


@reads("audit")
def verdict_counts() -> pd.DataFrame:
    """Number of claims per verdict with their ids: ``verdict, claims, ids``."""
    df = claims_frame()
    out = (df.groupby("verdict", sort=False)["id"].agg(["count", lambda s: ", ".join(s)])
           .reset_index().rename(columns={"count": "claims", "<lambda_0>": "ids"}))
    order = {"fails": 0, "conditional": 1, "holds": 2}
    return out.sort_values("verdict", key=lambda s: s.map(order)).reset_index(drop=True)


@reads("audit")
def claim_values(claim_id: str) -> dict[str, Any]:
    """The deciding numbers of one audited claim (its ``values`` mapping)."""
    for r in _audit_results():
        if r.id == claim_id:
            return dict(r.values)
    raise KeyError(f"No audited claim {claim_id!r}; known: {[r.id for r in _audit_results()]}")


#: display names of the emphasis curves: (loss, variant) -> (name, panel)
CURVE_NAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("ce", "-"): ("cross-entropy", "dynamic"),
    ("dynamic", "published"): ("dynamic, published (PyTorch)", "dynamic"),
    ("dynamic", "soft"): ("dynamic, soft", "dynamic"),
    ("dynamic", "keras"): ("dynamic, Keras original", "dynamic"),
    ("poly1", "-"): ("Poly-1 (ε=1)", "related"),
    ("polyn", "paper"): ("Poly-2, paper form", "related"),
    ("polyn", "blog"): ("Poly-2, blog form", "related"),
    ("focal", "-"): ("focal (γ=2)", "related"),
    ("label_smoothing", "-"): ("label smoothing (α=0.1)", "related"),
    ("superloss", "-"): ("SuperLoss (τ=log C)", "related"),
    ("dm", "-"): ("derivative manipulation (β=2, λ=1; max 1)", "related"),
}


@reads("code:training/losses.py", "code:analysis/gradients.py")
def emphasis_curves_frame(*, threshold: float = 0.7, n_points: int = 397, n_classes: int = 10) -> pd.DataFrame:
    """Emphasis curves of every loss and dynamic variant (from :func:`analysis.gradients.emphasis_curves`)
    with display names: ``curve, group, loss, variant, p_t, emphasis``. Cross-entropy is drawn in
    both panels."""
    from analysis.gradients import DEFAULT_CURVE_SPECS, CurveSpec, emphasis_curves

    specs = [CurveSpec(s.loss, s.variant, {**s.params, "threshold": threshold}) if s.loss == "dynamic" else s
             for s in DEFAULT_CURVE_SPECS]
    p_t = np.linspace(0.0025, 0.9975, n_points)
    df = emphasis_curves(p_t, n_classes=n_classes, specs=specs)
    # derivative manipulation normalises its weights over the batch (here: the grid), so its
    # scale depends on the grid size: show its shape, scaled to a maximum of 1
    dm = df["loss"] == "dm"
    if dm.any():
        df.loc[dm, "emphasis"] = df.loc[dm, "emphasis"] / df.loc[dm, "emphasis"].max()
    names = df.apply(lambda r: CURVE_NAMES.get((r["loss"], r["variant"]), (f"{r['loss']} {r['variant']}", "related")),
                     axis=1, result_type="expand")
    df["curve"], df["group"] = names[0], names[1]
    ce = df[df["loss"] == "ce"].assign(group="related")
    return pd.concat([df, ce], ignore_index=True)[["curve", "group", "loss", "variant", "p_t", "emphasis"]]


@reads("code:training/losses.py", "code:analysis/gradients.py")
def gradient_ratio_frame(*, threshold: float = 0.7, p_t: Sequence[float] = (0.3, 0.69, 0.71, 0.9),
                         n_classes: int = 10) -> pd.DataFrame:
    """Ratio of each dynamic variant's logit gradient to cross-entropy's at a few ``p_t``
    (rows: variants; columns: ``p_t = …``), from :func:`analysis.gradients.emphasis_curves`."""
    from analysis.gradients import CurveSpec, emphasis_curves

    specs = [CurveSpec("ce", "-")] + [CurveSpec("dynamic", v, {"threshold": threshold, "variant": v})
                                       for v in ("published", "soft", "keras")]
    df = emphasis_curves(np.asarray(p_t, dtype=float), n_classes=n_classes, specs=specs)
    ce = df[df["loss"] == "ce"].set_index("p_t")["emphasis"]
    rows = []
    for variant, g in df[df["loss"] == "dynamic"].groupby("variant", sort=False):
        ratio = g.set_index("p_t")["emphasis"] / ce
        row = {"variant": CURVE_NAMES[("dynamic", variant)][0]}
        row.update({f"p_t = {p:g}" + (" (≤ τ)" if p <= threshold else " (> τ)"): ratio[p] for p in p_t})
        rows.append(row)
    return pd.DataFrame(rows)


def preset_banner(preset: str | None = None) -> str:
    """One markdown line naming the preset shown and where its results come from."""
    preset = preset or preset_name()
    folder = results_dir(preset, require=True)
    try:
        shown = folder.relative_to(project_root())
    except ValueError:
        shown = folder
    return (f"Results shown: preset **{preset}** (from `{shown}`, made by "
            f"`dynloss analyze --preset {preset}` at code revision `{_revision_of(load_provenance(preset))}`; "
            f"rendered at `{code_revision()}`).\n")


# --------------------------------------------------------------------------------------------
# methods audit


@reads("audit")
def split_audit_frame() -> pd.DataFrame:
    """Stated vs measured split fractions (claim ``split-49.4`` of the audit): ``quantity, stated,
    measured, theory``."""
    v = claim_values("split-49.4")
    rows = [
        {"quantity": "distinct original rows in the fitted 80 % of a member",
         "stated": v["claimed_fit_distinct_fraction"], "measured": v["measured_fit_distinct_fraction"],
         "theory": v.get("theory_fit_distinct_fraction", np.nan)},
        {"quantity": "distinct original rows in the whole resample (fit ∪ validation)",
         "stated": 0.98 * 0.63, "measured": v.get("measured_base_distinct_fraction", np.nan), "theory": np.nan},
        {"quantity": "distinct validation rows that are also fitted (overlap)",
         "stated": np.nan, "measured": v.get("fit_val_overlap_fraction", np.nan), "theory": np.nan},
    ]
    return pd.DataFrame(rows)


def split_setting_note() -> str:
    """A markdown sentence with the setting the split fractions were measured in (claim ``split-49.4``)."""
    v = claim_values("split-49.4")
    seeds = v.get("seeds") or []
    return (f"Measured on n = {v.get('n_train')} training rows with k = {v.get('k')} folds, over "
            f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}).\n")


@reads("published_table2_audit")
def table2_encoding_frame(preset: str | None = None) -> pd.DataFrame:
    """Published Table 2 next to r regenerated from published Table 1 under each encoding of the
    cross-entropy row (from ``published_table2_audit``): one row per (dataset, fusion)."""
    df = load_result("published_table2_audit", preset)
    wide = df.pivot_table(index=["dataset", "fusion", "published_r"], columns="encoding", values="pearson_r",
                          sort=False).reset_index()
    wide.columns.name = None
    return wide


@reads("audit")
def table2_reproduction_note() -> str:
    """A markdown sentence: which τ for the cross-entropy row reproduces published Table 2 (from
    the ``table2-correlation`` claim's values)."""
    v = claim_values("table2-correlation")
    others = v.get("named_encodings_not_reproducing")
    tail = f"; {', '.join(others)} do not" if others else ""
    return (f"The published correlations are reproduced ({v['cells_match_3dp']}/{v['n_cells']} cells to 3 decimals, "
            f"max |Δr| = {v['max_abs_diff']:.4f}) when the cross-entropy row is given "
            f"τ = {v['encoding_none_value']:g}{tail} (methods audit).\n")


@reads("published_encoding_search")
def table2_search_frame(preset: str | None = None) -> pd.DataFrame:
    """Max |r − published r| for each τ given to the cross-entropy row (``published_encoding_search``)."""
    return load_result("published_encoding_search", preset)


@reads("published_table2_audit")
def table2_encoding_long(preset: str | None = None) -> pd.DataFrame:
    """``published_table2_audit`` as loaded (long form), for the encoding figure."""
    return load_result("published_table2_audit", preset)


# --------------------------------------------------------------------------------------------
# reproducibility

_CALL = re.compile(r"\b(rd|report_data|figures)\.(\w+)\s*\(")
_MODULES = {"rd": "analysis.report_data", "report_data": "analysis.report_data", "figures": "analysis.figures"}


def _revision_of(prov: dict[str, Any]) -> str:
    """The code revision ``dynloss analyze`` recorded in ``provenance.json``, short form."""
    return short_revision(str(prov["code_revision"])) if prov.get("code_revision") else "not recorded"


@reads("provenance")
def provenance_frame(preset: str | None = None) -> pd.DataFrame:
    """For every labelled table and figure of the report: the functions its cell calls, each input
    with its SHA-256 (first 12 hex digits), and the code revision that made it (the analysis
    revision for result tables, the rendering revision otherwise). One row per (label, input).

    Built from the report sources themselves (``_quarto.yml`` chapters and their chunks), so it
    cannot drift from the pages.
    """
    from analysis.qmd import read_qmd
    from analysis.render import load_project

    preset = preset or preset_name()
    root = project_root()
    project = load_project(root)
    analysis_rev = _revision_of(load_provenance(preset))
    render_rev = code_revision(root)
    rows = []
    for page in project.chapters:
        for chunk in read_qmd(page).chunks:
            label = chunk.label
            if not label or label.split("-", 1)[0] not in ("fig", "tbl"):
                continue
            calls = [(m, f) for m, f in dict.fromkeys(_CALL.findall(chunk.code)) if f != "show"]
            # a zero-width space after the dot lets long names wrap in narrow PDF columns
            functions = ", ".join(f"{_MODULES[m].split('.')[-1]}.\u200b{f}" for m, f in calls)
            inputs = list(dict.fromkeys(i for _, f in calls for i in HELPER_INPUTS.get(f, ())
                                        if i not in ("provenance",)))
            for name in inputs or ["–"]:
                kind = name.split(":", 1)[0] if ":" in name else {"audit": "audit", "–": "render"}.get(name, "result")
                if name == "–":
                    shown, digest = "–", "–"
                elif name == "audit":
                    shown, digest = "audit", _audit_digest()
                else:
                    shown, digest = _input_digest(name, preset)
                rows.append({
                    "label": label, "functions": functions, "input": shown,
                    "sha256": digest,
                    "revision": analysis_rev if kind == "result" else render_rev,
                })
                functions = "″"  # ditto: same cell as the row above
    return pd.DataFrame(rows)


def _audit_digest() -> str:
    path = audit_json_path()
    return file_sha256(path)[:12] if path.is_file() else "live"


def _input_digest(name: str, preset: str) -> tuple[str, str]:
    root = project_root()
    if name.startswith("paper:"):
        path = root / "data" / "paper" / name.split(":", 1)[1]
    elif name.startswith("code:"):
        path = root / name.split(":", 1)[1]
    elif name.startswith("cache:"):
        prov = load_provenance(preset)
        return "cache (all runs)", str(prov.get("cache_sha256", "not recorded"))[:12]
    else:
        path = result_path(name, preset)
    return path.name, (file_sha256(path)[:12] if path.is_file() else "missing")


@reads("provenance")
def environment_frame(preset: str | None = None) -> pd.DataFrame:
    """Versions and settings behind the report: ``item, value``."""
    import platform
    import sys

    preset = preset or preset_name()
    items: list[tuple[str, str]] = [("preset", preset), ("results", str(results_dir(preset)))]
    prov = load_provenance(preset)
    settings = {**prov.get("config", {}), **prov}  # provenance.json keeps the knobs under "config"
    for key in ("created_utc", "seed", "n_resamples", "confidence", "n_bins", "cache_sha256"):
        if key in settings:
            value = str(settings[key])
            items.append((f"analysis {key}", value[:12] if key == "cache_sha256" else value))
    items.append(("analysis code revision", _revision_of(prov)))
    items.append(("render code revision", code_revision()))
    items.append(("python", sys.version.split()[0]))
    items.append(("platform", platform.platform(terse=True)))
    for mod in ("numpy", "pandas", "scipy", "torch", "matplotlib", "seaborn", "statsmodels"):
        try:
            items.append((mod, importlib.import_module(mod).__version__))
        except (ImportError, AttributeError):
            items.append((mod, "not installed"))
    return pd.DataFrame(items, columns=["item", "value"])


# --------------------------------------------------------------------------------------------
# regenerated tables (results of `dynloss analyze`)

#: the paper's datasets by the names the cache uses
PAPER_DATASETS: dict[str, str] = {
    "fashion-mnist": "FashionMNIST", "fmnist": "FashionMNIST", "fashionmnist": "FashionMNIST",
    "cifar10": "CIFAR10", "cifar100": "CIFAR100",
}
#: fusions in display order (the paper's four, then ours)
FUSION_ORDER: tuple[str, ...] = ("Average", "Vote", "Weighted", "MLP", "ProbAverage", "Weighted-OOB", "MLP-OOB")
#: arms in display order
ARM_ORDER: tuple[str, ...] = ("ce", "ce-lr0.01", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9")


def _order(df: pd.DataFrame, *, by: Sequence[str] = ("dataset", "arm", "fusion")) -> pd.DataFrame:
    keys = []
    for col in by:
        if col == "arm":
            keys.append(df["arm"].map(lambda a: (ARM_ORDER.index(a) if a in ARM_ORDER else len(ARM_ORDER), a)))
        elif col == "fusion":
            keys.append(df["fusion"].map(lambda f: (FUSION_ORDER.index(f) if f in FUSION_ORDER else len(FUSION_ORDER), f)))
        else:
            keys.append(df[col])
    order = sorted(range(len(df)), key=lambda i: tuple(k.iloc[i] for k in keys))
    return df.iloc[order].reset_index(drop=True)


def _interval(low: pd.Series, high: pd.Series, digits: int = 4) -> pd.Series:
    return pd.Series([("–" if pd.isna(a) or pd.isna(b) else f"[{a:.{digits}f}, {b:.{digits}f}]")
                      for a, b in zip(low, high)], index=low.index)


def _arm_threshold(arm: str) -> str:
    if arm == "ce":
        return "None"
    if arm.startswith("dyn-"):
        return arm.split("-", 1)[1]
    return ""


def _arm_lr(arm: str) -> float:
    try:
        from training.grid import get_arm

        return float(get_arm(arm).lr)
    except (ImportError, ValueError):
        return float("nan")


def _model_text(model) -> str:
    if model.kind == "wrn":
        return f"WideResNet-{model.depth}-{model.widen}"
    if model.kind == "mlp":
        return f"MLP({', '.join(map(str, model.hidden))})"
    return model.kind.upper()


def comparison_note(preset: str | None = None) -> str:
    """A markdown sentence saying how the preset's training differs from the paper's (model,
    members, epochs), so published and regenerated accuracies are not read as like for like."""
    from training.presets import get_preset

    preset = preset or preset_name()
    try:
        ours, paper = get_preset(preset), get_preset("paper")
    except ValueError:
        return ""
    if (ours.model, ours.members, ours.epochs) == (paper.model, paper.members, paper.epochs):
        return ""
    return (f"Preset **{preset}** trains {_model_text(ours.model)} members ({ours.members} per arm, "
            f"{ours.epochs} epochs), the paper {_model_text(paper.model)} ({paper.members} per arm, "
            f"{paper.epochs} epochs): published and regenerated accuracies differ in level by design; "
            f"compare directions and intervals, not values.\n")


@reads("table1", "paper:table1_accuracy.csv")
def table1_frame(preset: str | None = None, *, fusions: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 1 regenerated, next to the published accuracy of the same cell where the paper has
    one (same dataset, τ and fusion): ``dataset, arm, fusion, published, accuracy, 95 % CI,
    Δ vs ce, Δ 95 % CI, McNemar p vs ce``."""
    from analysis.published import load_published_table1

    t1 = load_result("table1", preset)
    if fusions is not None:
        t1 = t1[t1["fusion"].isin(fusions)]
    pub = load_published_table1()
    pub_map = {(d, str(t), f): a for d, t, f, a in pub[["dataset", "threshold", "fusion", "accuracy"]].itertuples(index=False)}
    mc = load_result("mcnemar", preset)
    mc = mc[mc["reference"] == "ce"].set_index(["dataset", "arm", "fusion"])["pvalue"]
    rows = []
    for r in t1.itertuples(index=False):
        paper_ds = PAPER_DATASETS.get(str(r.dataset).lower())
        published = pub_map.get((paper_ds, _arm_threshold(r.arm), r.fusion), np.nan) if paper_ds else np.nan
        rows.append({
            "dataset": r.dataset, "arm": r.arm, "fusion": r.fusion, "published": published,
            "accuracy": r.accuracy, "95 % CI": _interval(pd.Series([r.ci_low]), pd.Series([r.ci_high])).iloc[0],
            "Δ vs ce": r.diff_vs_ce,
            "Δ 95 % CI": _interval(pd.Series([r.diff_ci_low]), pd.Series([r.diff_ci_high])).iloc[0],
            "McNemar p vs ce": mc.get((r.dataset, r.arm, r.fusion), np.nan),
        })
    return _order(pd.DataFrame(rows))


@reads("paper:table1_accuracy.csv")
def published_table1_frame() -> pd.DataFrame:
    """Published Table 1: one row per (dataset, τ), one column per fusion."""
    from analysis.published import load_published_table1

    pub = load_published_table1()
    wide = pub.pivot_table(index=["dataset", "threshold"], columns="fusion", values="accuracy", sort=False)
    wide.columns.name = None
    return wide.reset_index().rename(columns={"threshold": "τ"})


@reads("table1")
def accuracy_vs_threshold_frame(preset: str | None = None,
                                fusions: Sequence[str] = ("Average", "Vote", "Weighted", "MLP", "Weighted-OOB", "MLP-OOB"),
                                ) -> pd.DataFrame:
    """Regenerated accuracies with CIs on a τ axis: dynamic arms at τ, ``ce`` and ``ce-lr0.01``
    to the left (columns of :func:`analysis.figures.accuracy_vs_threshold_figure`)."""
    t1 = load_result("table1", preset)
    t1 = t1[t1["fusion"].isin(fusions)].copy()
    dyn = sorted({float(a.split("-", 1)[1]) for a in t1["arm"] if a.startswith("dyn-")})
    step = (dyn[1] - dyn[0]) if len(dyn) > 1 else 0.1
    start = dyn[0] if dyn else 0.6
    pos = {"ce": start - step, "ce-lr0.01": start - 2 * step}
    t1["tau"] = [pos.get(a, float(a.split("-", 1)[1]) if a.startswith("dyn-") else np.nan) for a in t1["arm"]]
    t1 = t1.dropna(subset=["tau"])
    t1["arm_label"] = [a if not a.startswith("dyn-") else a.split("-", 1)[1] for a in t1["arm"]]
    return t1[["dataset", "fusion", "arm", "arm_label", "tau", "accuracy", "ci_low", "ci_high"]]


@reads("table2", "paper:table2_pearson.csv")
def table2_frame(preset: str | None = None) -> pd.DataFrame:
    """Table 2 regenerated (r of accuracy with τ, per encoding of the ce arm) next to the published
    r of the same dataset and fusion: intervals (Fisher z and paired bootstrap) and tests."""
    from analysis.published import load_published_table2

    t2 = load_result("table2", preset)
    pub = load_published_table2().set_index(["dataset", "fusion"])["pearson_r"]
    out = pd.DataFrame({
        "dataset": t2["dataset"], "fusion": t2["fusion"], "encoding": t2["encoding"], "n": t2["n"],
        "published r": [pub.get((PAPER_DATASETS.get(str(d).lower(), ""), f), np.nan)
                        for d, f in zip(t2["dataset"], t2["fusion"])],
        "r": t2["pearson_r"],
        "Fisher-z 95 % CI": _interval(t2["pearson_ci_low"], t2["pearson_ci_high"], 3),
        "bootstrap 95 % CI": _interval(t2["r_boot_ci_low"], t2["r_boot_ci_high"], 3),
        "permutation p": t2["perm_p_two_sided"],
        "Spearman ρ": t2["spearman_rho"],
    })
    return _order(out, by=("dataset", "fusion"))


@reads("bootstrap_ci", "mcnemar")
def headline_frame(preset: str | None = None, *, fusion: str = "Average") -> pd.DataFrame:
    """Each dynamic arm against ``ce`` and against ``ce-lr0.01`` (one fusion): accuracy difference
    with its paired bootstrap CI and McNemar's p."""
    ci = load_result("bootstrap_ci", preset)
    ci = ci[(ci["quantity"] == "diff") & (ci["fusion"] == fusion)]
    mc = load_result("mcnemar", preset).set_index(["dataset", "arm", "reference", "fusion"])
    rows = []
    for r in ci.itertuples(index=False):
        if not str(r.arm).startswith("dyn-"):
            continue
        m = mc.loc[(r.dataset, r.arm, r.reference, fusion)] if (r.dataset, r.arm, r.reference, fusion) in mc.index else None
        rows.append({"dataset": r.dataset, "arm": r.arm, "versus": r.reference, "fusion": fusion,
                     "Δ accuracy": r.estimate, "95 % CI": _interval(pd.Series([r.ci_low]), pd.Series([r.ci_high])).iloc[0],
                     "McNemar p": np.nan if m is None else m["pvalue"]})
    if not rows:
        raise ResultsMissingError(f"bootstrap_ci of preset {preset or preset_name()!r} has no dynamic-arm differences "
                                  f"for fusion {fusion!r}: rerun `dynloss analyze --preset {preset or preset_name()}`.")
    return _order(pd.DataFrame(rows), by=("dataset", "versus", "arm"))


@reads("table1")
def lr_confound_frame(preset: str | None = None, *, fusions: Sequence[str] = ("Average", "Vote")) -> pd.DataFrame:
    """Cross-entropy at both learning rates and the dynamic arms: ``dataset, arm, loss, lr,
    fusion, accuracy, 95 % CI, member accuracy (mean ± sd)``."""
    t1 = load_result("table1", preset)
    t1 = t1[t1["fusion"].isin(fusions) & t1["arm"].isin(ARM_ORDER)]
    out = pd.DataFrame({
        "dataset": t1["dataset"], "arm": t1["arm"], "loss": t1["loss"], "lr": [_arm_lr(a) for a in t1["arm"]],
        "fusion": t1["fusion"], "accuracy": t1["accuracy"], "95 % CI": _interval(t1["ci_low"], t1["ci_high"]),
        "members": [f"{m:.4f} ± {s:.4f}" for m, s in zip(t1["member_acc_mean"], t1["member_acc_sd"])],
    })
    return _order(out, by=("dataset", "fusion", "arm"))


@reads("mcnemar", "bootstrap_ci")
def lr_tests_frame(preset: str | None = None, *, fusion: str = "Average") -> pd.DataFrame:
    """Paired comparisons that separate the loss from the learning rate: ``ce`` vs
    ``ce-lr0.01`` (learning rate only) and each dynamic arm vs ``ce-lr0.01`` (loss only, same
    rate) and vs ``ce`` (both, as published)."""
    mc = load_result("mcnemar", preset)
    mc = mc[mc["fusion"] == fusion]
    ci = load_result("bootstrap_ci", preset)
    ci = ci[(ci["quantity"] == "diff") & (ci["fusion"] == fusion)].set_index(["dataset", "arm", "reference"])
    keep = ((mc["arm"] == "ce") & (mc["reference"] == "ce-lr0.01")) | (mc["arm"].str.startswith("dyn-"))
    mc = mc[keep]
    what = {("ce", "ce-lr0.01"): "learning rate only"}
    rows = []
    for r in mc.itertuples(index=False):
        key = (r.dataset, r.arm, r.reference)
        d = ci.loc[key] if key in ci.index else None
        rows.append({
            "dataset": r.dataset, "arm": r.arm, "versus": r.reference,
            "differs in": what.get((r.arm, r.reference), "loss only" if r.reference == "ce-lr0.01" else "loss and learning rate"),
            "Δ accuracy": r.accuracy - r.reference_accuracy,
            "Δ 95 % CI": "–" if d is None else _interval(pd.Series([d["ci_low"]]), pd.Series([d["ci_high"]])).iloc[0],
            "n01": int(r.n01), "n10": int(r.n10), "McNemar p": r.pvalue,
        })
    return _order(pd.DataFrame(rows), by=("dataset", "versus", "arm"))


@reads("superlearner_gap")
def stacking_frame(preset: str | None = None) -> pd.DataFrame:
    """Super-learners fitted on in-sample (published) vs out-of-bag (leak-free) predictions:
    validation and test accuracy of each, per arm and kind."""
    g = load_result("superlearner_gap", preset)
    wide = g.pivot_table(index=["dataset", "arm", "kind"], columns="variant", values=["val_accuracy", "test_accuracy"],
                         sort=False)
    out = pd.DataFrame(index=wide.index)
    for variant, label in (("in-sample", "in-sample (published)"), ("out-of-bag", "leak-free (out-of-bag)")):
        if ("val_accuracy", variant) in wide.columns:
            out[f"{label}: validation"] = wide[("val_accuracy", variant)]
            out[f"{label}: test"] = wide[("test_accuracy", variant)]
    out = out.reset_index().rename(columns={"kind": "super-learner"})
    return _order(out, by=("dataset", "super-learner", "arm"))


def stacking_note(preset: str | None = None) -> str:
    """A markdown sentence: mean validation-minus-test accuracy of the in-sample and the
    out-of-bag super-learners (``superlearner_gap``), and in how many fits the in-sample gap is larger."""
    g = load_result("superlearner_gap", preset)
    mean = g.groupby("variant")["gap"].mean()
    if not {"in-sample", "out-of-bag"} <= set(mean.index):
        return ""
    paired = g.pivot_table(index=["dataset", "arm", "kind"], columns="variant", values="gap").dropna()
    larger = int((paired["in-sample"] > paired["out-of-bag"]).sum())
    return (f"Validation minus test accuracy averages {mean['in-sample']:+.4f} for the in-sample (published) "
            f"fits and {mean['out-of-bag']:+.4f} for the out-of-bag fits; the in-sample gap is the larger one in "
            f"{larger} of {len(paired)} (arm, super-learner) pairs.\n")


def _cache_root(preset: str) -> Path | None:
    prov = load_provenance(preset)
    root = prov.get("cache_root")
    candidates = [Path(root)] if root else []
    candidates.append(project_root() / "data" / "cache")
    for c in candidates:
        if (c / preset).is_dir():
            return c
    return None


@reads("provenance", "cache:splits")
def preset_split_frame(preset: str | None = None) -> pd.DataFrame | None:
    """Split fractions measured on the preset's own cached splits (one arm's members; every arm
    shares the member splits), or ``None`` when the cache is not available."""
    from training.cache_format import iter_run_dirs, read_run
    from training.splits import split_stats

    preset = preset or preset_name()
    root = _cache_root(preset)
    if root is None:
        return None
    rows = []
    for dataset, arm, member, path in iter_run_dirs(root, preset):
        if arm != "ce":
            continue
        rec = read_run(path, verify_checksum=False)
        arrays = rec.arrays if hasattr(rec, "arrays") else rec
        n_train = int(np.asarray(arrays["train_labels"]).shape[0])
        stats = split_stats(arrays["fit_index"], arrays["val_index"], n_train)
        rows.append({"dataset": dataset, "member": member, "n_train": n_train, **stats})
    return pd.DataFrame(rows) if rows else None


def preset_split_note(preset: str | None = None) -> str:
    """A markdown sentence with the split fractions measured on the preset's cache."""
    preset = preset or preset_name()
    df = preset_split_frame(preset)
    if df is None or df.empty:
        return f"The cache of preset **{preset}** is not available here, so its own splits are not measured.\n"
    parts = []
    for ds, g in df.groupby("dataset", sort=False):
        parts.append(f"{ds} (n = {int(g['n_train'].iloc[0])}, {len(g)} members): fitted distinct fraction "
                     f"{g['fit_distinct_fraction'].mean():.4f}, whole resample {g['base_distinct_fraction'].mean():.4f}, "
                     f"validation rows also fitted {g['val_overlap_fraction'].mean():.4f}")
    return f"Measured on the cached splits of preset **{preset}** (mean over members): " + "; ".join(parts) + ".\n"


# --------------------------------------------------------------------------------------------
# calibration and selective prediction


@reads("calibration")
def calibration_frame(preset: str | None = None, *, fusions: Sequence[str] = ("Average", "Vote", "MLP-OOB", "Single"),
                      ) -> pd.DataFrame:
    """Calibration of ensembles and single members (Single: mean over members), before and after
    temperature scaling: accuracy, ECE (equal width and equal mass), class-wise ECE, Brier, NLL, T."""
    c = load_result("calibration", preset)
    c = c[c["fusion"].isin(fusions)]
    keys = ["dataset", "arm", "fusion", "scaling"]
    metrics = ["accuracy", "ece", "ece_mass", "classwise_ece", "brier", "nll", "temperature"]
    agg = c.groupby(keys, sort=False)[metrics].mean().reset_index()
    agg = agg.rename(columns={"ece": "ECE", "ece_mass": "ECE (mass)", "classwise_ece": "class-wise ECE",
                              "brier": "Brier", "nll": "NLL", "temperature": "T"})
    return _order(agg, by=("dataset", "arm", "fusion", "scaling"))


@reads("reliability")
def reliability_frame(preset: str | None = None, *, fusion: str = "Average", binning: str = "width") -> pd.DataFrame:
    """Reliability bins of one fusion (non-empty bins), before and after temperature scaling."""
    r = load_result("reliability", preset)
    r = r[(r["fusion"] == fusion) & (r["binning"] == binning) & (r["member"] == -1) & (r["count"] > 0)]
    return _order(r, by=("dataset", "arm", "scaling", "bin"))


@reads("selective")
def selective_frame(preset: str | None = None, *, fusions: Sequence[str] = ("Average", "Vote", "MLP-OOB", "Single"),
                    ) -> pd.DataFrame:
    """Selective prediction: accuracy, AUROC of confidence for correct vs wrong, AURC (Single:
    mean over members)."""
    s = load_result("selective", preset)
    s = s[s["fusion"].isin(fusions)]
    agg = (s.groupby(["dataset", "arm", "fusion", "confidence_kind"], sort=False)[["accuracy", "auroc", "aurc"]]
           .mean().reset_index().rename(columns={"confidence_kind": "confidence", "auroc": "AUROC", "aurc": "AURC"}))
    return _order(agg, by=("dataset", "arm", "fusion"))


@reads("risk_coverage")
def risk_coverage_frame(preset: str | None = None, *, fusion: str = "Average") -> pd.DataFrame:
    """Risk–coverage points of one fusion, per arm."""
    rc = load_result("risk_coverage", preset)
    return _order(rc[(rc["fusion"] == fusion) & (rc["member"] == -1)], by=("dataset", "arm", "coverage_target"))


@reads("ensemble_size")
def ensemble_size_frame(preset: str | None = None, *, fusion: str = "Average") -> pd.DataFrame:
    """Accuracy against ensemble size (mean and 5–95 % range over member subsets), one fusion."""
    es = load_result("ensemble_size", preset)
    es = _order(es[es["fusion"] == fusion], by=("dataset", "arm", "n_members"))
    return es.rename(columns={"accuracy_mean": "accuracy", "accuracy_q05": "ci_low", "accuracy_q95": "ci_high"})
