"""The preset carries its analysis knob (the MLP super-learner row cap) and one scale descriptor:
``analyze_preset`` from Python and ``dynloss analyze`` fit with the same cap, and every "is this
the paper's scale" question asks :func:`training.presets.at_paper_scale`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import analysis.core.pipeline as pipeline
from analysis.core.config import AnalysisConfig
from training.presets import PRESET_NAMES, at_paper_scale, get_preset, with_overrides


class _Stop(Exception):
    """Raised in place of the fits: the test needs the config they would get, not their results."""


@pytest.fixture
def fits_config(monkeypatch):
    """The config the fusion step receives, for analyze_preset and the command alike (no cache read,
    nothing fitted)."""
    seen: list[AnalysisConfig] = []

    def fuse(data, *, config, fit_store=None):
        seen.append(config)
        raise _Stop()

    monkeypatch.setattr(pipeline, "load_preset", lambda *a, **k: SimpleNamespace(runs=(), arms=()))  # no cache read
    monkeypatch.setattr(pipeline, "fuse_preset", fuse)
    return seen


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_analyze_preset_and_the_command_give_the_same_mlp_cap(preset, fits_config, tmp_path, monkeypatch):
    from analysis.cli import main

    with pytest.raises(_Stop):
        pipeline.analyze_preset(preset, tmp_path / "cache", write=False)
    monkeypatch.setenv("DYNLOSS_TRACEBACK", "1")  # the stand-in _Stop reaches the test
    with pytest.raises(_Stop):
        main(["--data-dir", str(tmp_path), "analyze", "--preset", preset, "--out", str(tmp_path / "out")])
    python, command = fits_config
    want = get_preset(preset).mlp_rows or None
    assert dict(python.superlearner_max_rows) == dict(command.superlearner_max_rows) == {"Weighted": None, "MLP": want}


def test_fmnist_mini_caps_its_mlp_fits_at_4000_rows_and_the_others_not():
    assert {p: get_preset(p).mlp_rows for p in PRESET_NAMES} == {"digits-tiny": 0, "fmnist-mini": 4_000, "paper": 0}


def test_the_mlp_rows_option_overrides_the_preset(fits_config, tmp_path, monkeypatch):
    from analysis.cli import main

    monkeypatch.setenv("DYNLOSS_TRACEBACK", "1")
    for rows, want in (("0", None), ("500", 500)):
        with pytest.raises(_Stop):
            main(["--data-dir", str(tmp_path), "analyze", "--preset", "fmnist-mini", "--mlp-rows", rows])
        assert dict(fits_config[-1].superlearner_max_rows)["MLP"] == want
    # a config that sets the caps keeps them from Python too
    explicit = AnalysisConfig(superlearner_max_rows=(("Weighted", None), ("MLP", 300)))
    with pytest.raises(_Stop):
        pipeline.analyze_preset("fmnist-mini", tmp_path, write=False, config=explicit)
    assert dict(fits_config[-1].superlearner_max_rows)["MLP"] == 300


def test_the_row_cap_is_an_analysis_knob_not_part_of_the_run_specs():
    p = get_preset("fmnist-mini")
    assert p.settings() == with_overrides(p, mlp_rows=0).settings()


def test_paper_scale_is_model_members_and_epochs_of_the_paper_preset():
    paper = get_preset("paper")
    assert at_paper_scale(paper) and not at_paper_scale(get_preset("fmnist-mini"))
    assert not at_paper_scale(get_preset("digits-tiny"))
    assert at_paper_scale(with_overrides(paper, datasets=("cifar10",), name="cifar10-only"))
    for change in ({"members": 10}, {"epochs": 6}, {"model": get_preset("fmnist-mini").model}):
        assert not at_paper_scale(with_overrides(paper, **change))


def test_the_three_scale_texts_agree_with_the_descriptor():
    from analysis.audit.cache_claims import preset_scope
    from analysis.report.bottom_line import scale_sentence
    from analysis.report.context import report_context
    from analysis.report.frames import comparison_note

    for name in PRESET_NAMES:
        at = at_paper_scale(get_preset(name))
        assert ("trains the paper's setting" in preset_scope(name)) == at
        assert ("trains the paper's setting" in scale_sentence(name)) == at
        assert (comparison_note(report_context(preset=name)) == "") == at
