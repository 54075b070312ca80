"""Explicit context: the data root and the preset travel as values from the command line down
(training.paths.DataRoot, analysis.report.context.ReportContext); the environment is read once,
where a command or a page starts, and never written."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from analysis.cli import main
from training import paths

PRESET = "digits-tiny"
FAST = ["--no-superlearners", "--resamples", "200"]


def _ours(environ) -> dict[str, str]:
    """The variables this project reads (torch sets a few of its own on import)."""
    return {k: v for k, v in environ.items() if k.startswith("DYNLOSS_")}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Two data roots given with --data-dir while $DYNLOSS_DATA_DIR names a decoy: one trained and
    analysed with seed 0, the other holding the same cache analysed with seed 1. Returns
    (first root, second root, decoy, os.environ before and after the commands)."""
    base = tmp_path_factory.mktemp("explicit-context")
    first, second, decoy = base / "first", base / "second", base / "decoy"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(paths.DATA_ENV, str(decoy))
        mp.delenv(paths.RESULTS_ENV, raising=False)
        before = _ours(os.environ)
        assert main(["--data-dir", str(first), "train", "--preset", PRESET, "--quiet"]) == 0
        assert main(["--data-dir", str(first), "analyze", "--preset", PRESET, *FAST]) == 0
        assert main(["--data-dir", str(first), "audit", "--save", "--preset", PRESET]) == 0
        shutil.copytree(first / "cache", second / "cache")
        assert main(["--data-dir", str(second), "analyze", "--preset", PRESET, *FAST, "--seed", "1"]) == 0
        after = _ours(os.environ)
    return first, second, decoy, before, after


def test_a_data_dir_on_the_command_line_leaves_the_environment_unchanged(roots):
    *_, before, after = roots
    assert after == before and before[paths.DATA_ENV].endswith("decoy")


def test_the_command_line_root_reaches_every_reader_and_writer(roots):
    first, second, decoy, *_ = roots
    assert not decoy.exists()  # $DYNLOSS_DATA_DIR was never read by a command given --data-dir
    assert (first / "cache" / PRESET).is_dir() and (first / "results" / "audit.json").is_file()
    prov = json.loads((first / "results" / PRESET / "provenance.json").read_text())
    assert prov["data_root"] == str(first) and prov["cache_root"] == str(first / "cache")
    prov2 = json.loads((second / "results" / PRESET / "provenance.json").read_text())
    assert prov2["data_root"] == str(second) and prov2["seed"] == 1


def test_a_page_context_reads_its_environment_once_and_names_its_root(roots):
    from analysis.report.context import preset_banner, report_context

    first, *_ = roots
    env = {paths.DATA_ENV: str(first), paths.PRESET_ENV: PRESET}
    ctx = report_context(env)
    assert (ctx.preset, ctx.root.path, ctx.results) == (PRESET, first, first / "results" / PRESET)
    env[paths.PRESET_ENV] = "fmnist-mini"  # later changes do not reach a context made before
    assert ctx.preset == PRESET and f"`data/results/{PRESET}`" in preset_banner(ctx)


def test_two_contexts_in_one_process_do_not_leak_into_each_other(roots):
    from analysis.audit.scope import RESULTS_KEY, results_scope
    from analysis.report import claims, frames
    from analysis.report.context import load_provenance, report_context

    first, second, *_ = roots
    a = report_context({paths.DATA_ENV: str(first)}, preset=PRESET)
    b = report_context({paths.DATA_ENV: str(second)}, preset=PRESET)
    for ctx, seed in ((a, 0), (b, 1), (a, 0)):  # interleaved: each keeps its own answers
        assert load_provenance(ctx)["seed"] == seed
        shown = {r.id: r for r in claims._audit_results(ctx)}
        assert shown["lr-confound"].values[RESULTS_KEY] == results_scope(PRESET, ctx.root).provenance_sha256
        assert shown["lr-confound"].values["results"] == f"data/results/{PRESET}"
    assert a.memo is not b.memo and a.memo.keys().isdisjoint({b.results})
    assert not frames.headline_frame(a).equals(frames.headline_frame(b))  # seed 0 and seed 1 intervals


def test_the_report_command_hands_its_kernel_the_root_it_resolved(roots, monkeypatch):
    """``dynloss report`` passes preset and data root to the kernel in the environment it builds
    (the pages read them once); its own process environment stays as it was."""
    from analysis.report import cli as report_cli

    first, *_ = roots
    seen = {}

    def render(root, env, args, engine):
        seen.update(env)
        return 0

    monkeypatch.setattr(report_cli, "_render", render)
    before = _ours(os.environ)
    assert main(["--data-dir", str(first), "report", "--preset", PRESET, "--engine", "offline"]) == 0
    assert _ours(os.environ) == before
    assert seen == {paths.PRESET_ENV: PRESET, paths.DATA_ENV: str(first)}
    from analysis.report.context import report_context

    ctx = report_context(seen)
    assert ctx.root.results_dir(PRESET) == first / "results" / PRESET
