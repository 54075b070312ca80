"""Claims about the training protocol, decided by the authors' code (``data/authors/code_facts.json``).

Each claim is a statement of the paper's methods text; its verdict says whether the text states the
protocol the authors' code runs. The numbers are parsed from the facts' verbatim excerpts (no
training, no caches), and the evidence cites every fact it used as ``file:lines`` with its GitHub
link at the commit the authors' records come from.

- ``protocol-lr``: one learning rate (0.1) for every base learner, against the rates of the
  cross-entropy and dynamic-loss training scripts.
- ``protocol-tuning``: the grid search (its grid, dataset, and which loss it searched).
- ``protocol-resize``: the input size, which the text never states.
- ``protocol-superlearner``: the super-learners' optimiser, rate, weight decay, epochs and form,
  and what the text leaves out (batch, schedule).

Verdict rules are stated in each claim's ``values["rule"]``.
"""

from __future__ import annotations

import functools
import re

from analysis.audit import Finding, claim
from analysis.audit.authors_code import CodeFact, CodeFactsError, cite, code_facts_path, github_url, read_code_facts

#: what the methods text states (section "Training and Evaluation of Base Learners" and "Super Learners")
STATED_LR = 0.1
STATED_WD = 0.05
STATED_GRID_LRS = (0.001, 0.01, 0.05, 0.1)
STATED_GRID_WDS = (1e-4, 5e-4, 0.001, 0.005, 0.01, 0.05, 0.1)
STATED_GRID_DATASET = "cifar-100"
STATED_SUPERLEARNER = {"lr": 3e-4, "wd": 0.0, "epochs": {"Weighted": 10, "MLP": 20}, "weighted_bias": True}
#: the default interpolation of ``torchvision.transforms.Resize`` (bilinear, in the torchvision of
#: 2022 as now); the authors' loader calls ``Resize(size)`` without choosing one
RESIZE_DEFAULT_INTERPOLATION = "bilinear"

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@functools.lru_cache(maxsize=1)
def _facts() -> dict[str, CodeFact]:
    return read_code_facts()


def _fact(fid: str) -> CodeFact:
    facts = _facts()
    if fid not in facts:
        raise CodeFactsError(f"{code_facts_path()}: no fact {fid!r}, which the protocol claims cite")
    return facts[fid]


def _parse(fact: CodeFact, pattern: str, what: str) -> re.Match:
    m = re.search(pattern, fact.excerpt, flags=re.MULTILINE)
    if m is None:
        raise CodeFactsError(f"{code_facts_path()}: fact {fact.id!r} ({fact.file}) has no {what} in its excerpt "
                             f"{fact.excerpt!r}")
    return m


def assigned_number(fact: CodeFact, name: str) -> float:
    """The number a line ``NAME = <number>`` of the excerpt assigns.

    >>> assigned_number(CodeFact("x", "a.py", (1, 1), "0" * 40, None, "OPTIMAL_LR = 0.1", "."), "OPTIMAL_LR")
    0.1
    """
    return float(_parse(fact, rf"^{name}\s*=\s*({_NUMBER})\s*$", f"assignment to {name}")[1])


def assigned_list(fact: CodeFact, name: str) -> tuple[float, ...]:
    """The numbers of a line ``NAME = [a, b, ...]`` of the excerpt (also ``name=[...]`` inside a call)."""
    items = _parse(fact, rf"\b{name}\s*=\s*\[([^\]]*)\]", f"list assigned to {name}")[1]
    return tuple(float(x) for x in items.split(",") if x.strip())


def cli_value(fact: CodeFact, flag: str) -> str:
    """The value an excerpt's command-line argument ``--flag=VALUE`` gives (an f-string field kept
    with its braces: ``{OPTIMAL_LR/10}``)."""
    return _parse(fact, rf"--{flag}=(\{{[^}}]*\}}|[^\s\"{{]+)", f"--{flag}= argument")[1]


def lr_value(expr: str, optimal_lr: float) -> float:
    """A learning-rate argument as the scripts write it: ``{OPTIMAL_LR}``, ``{OPTIMAL_LR/<n>}`` or a number.

    >>> lr_value("{OPTIMAL_LR/10}", 0.1), lr_value("{OPTIMAL_LR}", 0.1), lr_value("3e-4", 0.1)
    (0.01, 0.1, 0.0003)
    """
    m = re.fullmatch(r"\{OPTIMAL_LR(?:\s*/\s*(\d+))?\}", expr)
    if m:
        return round(optimal_lr / (int(m[1]) if m[1] else 1), 12)
    if re.fullmatch(_NUMBER, expr):
        return float(expr)
    raise ValueError(f"Expected a learning rate as {{OPTIMAL_LR}}, {{OPTIMAL_LR/n}} or a number, got {expr!r}")


def cli_value_or_none(fact: CodeFact, flag: str) -> str | None:
    """:func:`cli_value`, or None when the excerpt passes no ``--flag=``."""
    m = re.search(rf"--{flag}=", fact.excerpt)
    return cli_value(fact, flag) if m else None


def _num(x: float) -> str:
    """A number as the text prints it: ``1e-5``, ``0.01``.

    >>> _num(1e-05), _num(0.01), _num(1e-09)
    ('1e-5', '0.01', '1e-9')
    """
    return re.sub(r"e([-+])0*(\d)", r"e\1\2", f"{x:g}").replace("e+", "e")


def _cited(*facts: CodeFact) -> dict[str, str]:
    return {f.id: github_url(f) for f in facts}


@claim(
    "protocol-lr",
    source="authors' code",
    kind="the authors' code",
    overturn=(
        "Training scripts at the cited commit passing one learning rate to every arm, or word that the "
        "published members came from other scripts."
    ),
    text=(
        "Every base learner, whether trained with cross-entropy or with the dynamic loss at any threshold, "
        "started from the same initial learning rate of 0.1 (AdamW, weight decay 0.05, batch 1024)."
    ),
)
def evaluate_protocol_lr() -> Finding:
    consts = _fact("optimal-wd-lr")
    optimal_lr, optimal_wd = assigned_number(consts, "OPTIMAL_LR"), assigned_number(consts, "OPTIMAL_WD")
    arms = {"cross-entropy": _fact("ce-resize-lr"), "dynamic τ = 0.7": _fact("dyn07-resize-lr"),
            "dynamic τ = 0.6, 0.8, 0.9": _fact("dyn-resize-lr")}
    rates = {arm: lr_value(cli_value(f, "lr"), optimal_lr) for arm, f in arms.items()}
    earlier = _fact("dyn07-lr-earlier")
    earlier_lr = lr_value(cli_value(earlier, "lr"), optimal_lr)
    tau07, taus = _fact("dyn07-threshold"), _fact("dyn-thresholds")
    thresholds = [assigned_number(tau07, "THRESH"),
                  *(float(x) for x in _parse(taus, r'"threshold":\s*\[([^\]]*)\]', "threshold list")[1].split(","))]
    off = {arm: lr for arm, lr in rates.items() if abs(lr - STATED_LR) > 1e-12}
    verdict = "fails" if off else "holds"
    used = [consts, *arms.values(), tau07, taus, earlier]
    values = {
        "stated_lr": STATED_LR, "stated_wd": STATED_WD, "optimal_lr": optimal_lr, "optimal_wd": optimal_wd,
        "code_lr": rates, "arms_not_at_stated_lr": sorted(off), "dynamic_thresholds": sorted(thresholds),
        "earlier_dynamic_tau_0.7_lr": earlier_lr,
        "facts": [f.id for f in used], "citations": _cited(*used),
        "rule": "holds: every training script's learning rate equals the stated 0.1; fails otherwise",
    }
    parts = "; ".join(f"{arm} at {rates[arm]:g} ({cite(f)})" for arm, f in arms.items())
    evidence = (
        f"The text gives one initial learning rate, {STATED_LR:g}, for every base learner. The training scripts "
        f"import OPTIMAL_LR = {optimal_lr:g} and OPTIMAL_WD = {optimal_wd:g} ({cite(consts)}) and pass: {parts}; "
        f"the dynamic scripts cover τ = {_num(thresholds[0])} ({cite(tau07)}) and "
        f"{', '.join(_num(x) for x in thresholds[1:])} ({cite(taus)}). "
        f"So {len(off)} of {len(rates)} scripts, all the dynamic-loss ones, train at a tenth of the stated rate, "
        f"and the published comparison changes the loss and the learning rate together (the lr-confound claim "
        f"measures each on our caches). An earlier version of the τ = 0.7 script passed {earlier_lr:g} "
        f"({cite(earlier)}): the rate was lowered for the dynamic loss only; the text still gives {STATED_LR:g}."
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)


@claim(
    "protocol-tuning",
    source="authors' code",
    kind="the authors' code",
    overturn="A tuning script in the authors' code searching another grid, another dataset or the dynamic loss.",
    text=(
        "The initial learning rate and weight decay were found by grid search on CIFAR-100 only, over the "
        "learning rates {0.001, 0.01, 0.05, 0.1} and weight decays {1e-4, 5e-4, 0.001, 0.005, 0.01, 0.05, 0.1}, "
        "otherwise with the base learners' training parameters."
    ),
)
def evaluate_protocol_tuning() -> Finding:
    grid, run, resize = _fact("tune-grid"), _fact("tune-run"), _fact("tune-resize")
    native, consts = _fact("tune-grid-native"), _fact("optimal-wd-lr")
    lrs, wds = assigned_list(grid, "LRS"), assigned_list(grid, "WDS")
    same_grid = sorted(lrs) == sorted(STATED_GRID_LRS) and sorted(wds) == sorted(STATED_GRID_WDS)
    same_native = (assigned_list(native, "LRS"), assigned_list(native, "WDS")) == (lrs, wds)
    dataset, loss = cli_value(run, "dataset"), cli_value(run, "loss")
    epochs, batch = int(cli_value(run, "max_epochs")), int(cli_value(run, "batch_size"))
    size = assigned_list(resize, "resize")
    optimal = (assigned_number(consts, "OPTIMAL_LR"), assigned_number(consts, "OPTIMAL_WD"))
    winner_in_grid = optimal[0] in lrs and optimal[1] in wds
    verdict = "holds" if same_grid and dataset == STATED_GRID_DATASET else "fails"
    used = [grid, resize, run, native, consts]
    values = {
        "stated_lrs": list(STATED_GRID_LRS), "stated_wds": list(STATED_GRID_WDS), "code_lrs": list(lrs),
        "code_wds": list(wds), "n_grid_points": len(lrs) * len(wds), "dataset": dataset, "searched_losses": [loss],
        "dynamic_loss_searched": loss != "cross-entropy", "epochs": epochs, "batch_size": batch,
        "resize": [int(s) for s in size], "earlier_version_same_grid": same_native,
        "optimal_lr_wd": list(optimal), "optimal_in_grid": winner_in_grid,
        "tune_py_version_commit_known": run.read_at is not None,
        "facts": [f.id for f in used], "citations": _cited(*used),
        "rule": "holds: the searched learning rates and weight decays equal the stated sets and the search runs on "
                "CIFAR-100; fails otherwise. What the text leaves out (the loss searched, the input size) is "
                "reported, not judged: its consequence is decided by the protocol-lr and protocol-resize claims",
    }
    evidence = (
        f"scripts/tune.py searches learning rates {list(lrs)} × weight decays {list(wds)} "
        f"({len(lrs) * len(wds)} points; {cite(grid)}), the text's sets exactly, on {dataset} with "
        f"--loss={loss}, {epochs} epochs, batch {batch} ({cite(run)}), at resize {int(size[0]) if size else 'none'} "
        f"({cite(resize)}). The chosen OPTIMAL_LR = {optimal[0]:g}, OPTIMAL_WD = {optimal[1]:g} are grid points "
        f"({cite(consts)}). The search ran cross-entropy only: the dynamic loss was never tuned, and its members "
        f"run at a tenth of the chosen rate (protocol-lr claim). The commit of the version of scripts/tune.py read "
        f"is not known to the index; an earlier version searched the {'same' if same_native else 'another'} grid at "
        f"native size ({cite(native)})."
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)


@claim(
    "protocol-resize",
    source="authors' code",
    kind="the authors' code",
    overturn=(
        "Training scripts at the cited commit keeping the native input size, or a methods text that names the"
        " upsampling to 128 × 128."
    ),
    text=(
        "The methods text states the base learners' whole training protocol (model, optimiser, schedule, batch, "
        "epochs, grid search) and no change of input size: the members see the CIFAR images at 32 × 32 pixels "
        "and FashionMNIST at 28 × 28."
    ),
)
def evaluate_protocol_resize() -> Finding:
    scripts = {"cross-entropy members": _fact("ce-resize-lr"), "dynamic τ = 0.7 members": _fact("dyn07-resize-lr"),
               "dynamic τ = 0.6, 0.8, 0.9 members": _fact("dyn-resize-lr")}
    sizes: dict[str, int | None] = {what: (None if (v := cli_value_or_none(f, "resize")) is None else int(v))
                                    for what, f in scripts.items()}
    tune = _fact("tune-resize")
    grid_size = assigned_list(tune, "resize")
    sizes["grid search"] = int(grid_size[0]) if grid_size else None
    op, apply = _fact("resize-op"), _fact("resize-apply")
    _parse(op, r"Resize\(self\.resize\)", "Resize(size) call without an interpolation")
    _parse(apply, r"self\.resizer\(x\)", "call of the resizer")
    resized = {what: s for what, s in sizes.items() if s is not None}
    verdict = "fails" if resized else "holds"
    used = [*scripts.values(), tune, op, apply]
    side = max(resized.values(), default=None)
    values = {
        "stated_size": None, "code_size": sizes, "native_size": {"CIFAR": 32, "FashionMNIST": 28},
        "pixels_factor": None if side is None else {"CIFAR": (side / 32) ** 2, "FashionMNIST": (side / 28) ** 2},
        "interpolation": RESIZE_DEFAULT_INTERPOLATION, "applied": "per sample, after augmentation, before normalisation",
        "facts": [f.id for f in used], "citations": _cited(*used),
        "rule": "fails: some training run changes the input size, which the text leaves unchanged (it states none); "
                "holds: none does",
    }
    parts = "; ".join(f"{what} {'none' if s is None else s} ({cite(scripts[what])})"
                      for what, s in sizes.items() if what in scripts)
    if side is None:
        evidence = f"The text names no input size, and no training script resizes: {parts}; grid search ({cite(tune)})."
        return Finding(verdict=verdict, evidence=evidence, values=values)
    px = values["pixels_factor"]
    evidence = (
        f"The text names no input size, resizing or upsampling. The training scripts pass --resize: {parts}; "
        f"the grid search resizes to {sizes['grid search']} ({cite(tune)}). The loader builds torchvision's Resize "
        f"with the size alone ({cite(op)}): {RESIZE_DEFAULT_INTERPOLATION} interpolation (the default) takes the "
        f"square images to {side} × {side}, per sample after augmentation and before normalisation ({cite(apply)}). "
        f"The members thus see {px['CIFAR']:g}× (CIFAR) and {px['FashionMNIST']:.1f}× (FashionMNIST) the pixels "
        f"of the images a reader of the text would train on."
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)


@claim(
    "protocol-superlearner",
    source="authors' code",
    kind="the authors' code",
    overturn=(
        "A super-learner run in the authors' code with another optimiser, learning rate, weight decay or "
        "number of epochs than the text's."
    ),
    text=(
        "Both super-learners were trained in PyTorch with AdamW at a learning rate of 3e-4 without weight decay, "
        "the Weighted one, f(v) = A·v + b, for 10 epochs and the MLP for 20."
    ),
)
def evaluate_protocol_superlearner() -> Finding:
    args, wd_f = _fact("sl-batch-lr"), _fact("sl-wd")
    ep_w, ep_m = _fact("sl-epochs-weighted"), _fact("sl-epochs-mlp")
    weighted, hidden = _fact("sl-weighted"), _fact("sl-mlp-hidden")
    warm, start, end, adamw = _fact("sl-warmup"), _fact("sl-schedule-start"), _fact("sl-schedule-end"), _fact("sl-adamw")
    lr, wd, batch = float(cli_value(args, "lr")), float(cli_value(wd_f, "wd")), int(cli_value(args, "batch_size"))
    epochs = {"Weighted": int(_parse(ep_w, r"return (\d+)", "epoch count")[1]),
              "MLP": int(_parse(ep_m, r"return (\d+)", "epoch count")[1])}
    bias = _parse(weighted, r"bias=(True|False)", "bias flag")[1] == "True"
    hidden_bias = _parse(hidden, r"bias=(True|False)", "bias flag")[1] == "True"
    w = _parse(warm, r"warmup = (\d+) if self\.config\.max_epochs <= (\d+) else (\d+)", "warm-up rule")
    warmup = {k: int(w[1]) if e <= int(w[2]) else int(w[3]) for k, e in epochs.items()}
    warmup_start = float(_parse(start, rf"warmup_start_lr=({_NUMBER})", "warm-up start")[1])
    eta_min = float(_parse(end, rf"eta_min=({_NUMBER})", "final learning rate")[1])
    _parse(adamw, r"lr=self\.config\.lr_init", "learning rate from the configuration")
    stated = STATED_SUPERLEARNER
    checks = {"lr": abs(lr - stated["lr"]) < 1e-12, "wd": wd == stated["wd"], "epochs": epochs == stated["epochs"],
              "weighted_bias": bias == stated["weighted_bias"]}
    verdict = "holds" if all(checks.values()) else "fails"
    used = [args, wd_f, ep_w, ep_m, weighted, hidden, adamw, warm, start, end]
    values = {
        "stated": stated, "code": {"lr": lr, "wd": wd, "epochs": epochs, "weighted_bias": bias},
        "agrees": checks, "not_stated": {"batch_size": batch, "warmup_epochs": warmup, "warmup_start_lr": warmup_start,
                                          "eta_min": eta_min, "mlp_hidden_bias": hidden_bias},
        "facts": [f.id for f in used], "citations": _cited(*used),
        "rule": "holds: the run's learning rate, weight decay, epochs and the Weighted model's form equal the "
                "stated ones; fails otherwise (what the text leaves out is reported in values['not_stated'])",
    }
    evidence = (
        f"The super-learners' run passes batch {batch} and learning rate {lr:g} ({cite(args)}) and weight decay "
        f"{wd:g} ({cite(wd_f)}); it trains the Weighted model {epochs['Weighted']} epochs ({cite(ep_w)}) and the "
        f"MLP {epochs['MLP']} ({cite(ep_m)}); the Weighted model is one Linear layer with bias={bias} "
        f"({cite(weighted)}), as f(v) = A·v + b says, while the MLP's hidden Linear layers have none "
        f"({cite(hidden)}). All {sum(checks.values())}/{len(checks)} stated values agree. The text leaves out the "
        f"batch size and the schedule: both models inherit the WideResNet members' configure_optimizers, AdamW "
        f"({cite(adamw)}) with {warmup['Weighted']} (Weighted) or {warmup['MLP']} (MLP) linear warm-up epochs "
        f"({cite(warm)}) from {_num(warmup_start)} ({cite(start)}) and cosine annealing to {_num(eta_min)} ({cite(end)})."
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)
