"""The loss-claim audit: verdicts, the printed demo checked by hand, the `dynloss audit` output."""

from __future__ import annotations

import json
import math

import pytest

from analysis import cli
from analysis.audit import SOURCES, VERDICTS, evaluate_all, module_claims, registered_claims
from analysis.audit.loss_claims import DEMO_PRINTED

LOSS_IDS = [c.id for c in module_claims("analysis.audit.loss_claims")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def results():
    return {r.id: r for r in evaluate_all(LOSS_IDS)}


def test_loss_claims_are_registered_with_the_required_ids():
    assert {"sign", "fill-irrelevant", "scale-2.3", "zero-above", "soft-0.1", "relu-analogy", "demo"} <= set(LOSS_IDS)
    assert [s.id for s in registered_claims()][: len(LOSS_IDS)] == LOSS_IDS


def test_every_loss_claim_has_a_verdict_evidence_and_json_values(results):
    for r in results.values():
        assert r.verdict in VERDICTS
        assert r.evidence and r.claim
        json.dumps(r.values)


def test_missing_sign_claim_holds_because_minimising_the_printed_form_lowers_p_t(results):
    r = results["sign"]
    assert r.verdict == "holds"
    assert r.values["printed_form_max_value"] == pytest.approx(math.log(0.1 * 0.7), abs=0.02)
    assert r.values["printed_form_max_delta_p_t_after_step"] < 0 < r.values["corrected_form_min_delta_p_t_after_step"]


def test_fill_value_changes_no_gradient_of_the_published_form(results):
    r = results["fill-irrelevant"]
    assert r.verdict == "holds"
    assert r.values["max_abs_grad_diff_published"] == 0.0
    assert r.values["max_abs_grad_diff_keras_logits"] > 0.0


def test_scale_claim_fails_with_gradient_ratio_exactly_one_and_offset_minus_log_0_1(results):
    r = results["scale-2.3"]
    assert r.verdict == "fails"
    assert r.values["grad_ratio_below_min"] == pytest.approx(1.0, abs=1e-12)
    assert r.values["grad_ratio_below_max"] == pytest.approx(1.0, abs=1e-12)
    assert r.values["loss_offset_min"] == pytest.approx(-math.log(0.1), abs=1e-9)


def test_zero_above_is_conditional_on_the_variant(results):
    r = results["zero-above"]
    assert r.verdict == "conditional"
    assert r.values["published"]["max_grad_l1"] == 0.0
    assert r.values["soft"]["ratio_to_ce_min"] == pytest.approx(0.1)
    assert 0.0 < r.values["keras_c10_tau0.7"]["ratio_to_ce_min"] < r.values["keras_c10_tau0.7"]["ratio_to_ce_max"] < 0.1


def test_soft_variant_scales_ce_gradient_by_a_tenth_above_threshold(results):
    r = results["soft-0.1"]
    assert r.verdict == "holds"
    assert r.values["ratio_above_min"] == pytest.approx(0.1, abs=1e-12)
    assert r.values["ratio_below_max"] == pytest.approx(1.0, abs=1e-12)


def test_relu_analogy_is_conditional_and_prose_fails(results):
    assert results["relu-analogy"].verdict == "conditional"
    assert results["prose-0.7"].verdict == "fails"
    assert results["prose-0.7"].values["cases"]["above_correct"]["dynamic"] == 0.0


def test_demo_is_reproduced_to_printed_precision(results):
    r = results["demo"]
    assert r.verdict == "holds"
    assert r.values["n_reproduced"] == r.values["n_printed_numbers"] == 24
    assert r.values["max_abs_dev_with_rounded_inputs"] == pytest.approx(0.2611, abs=1e-4)


def test_demo_printout_agrees_with_hand_derived_closed_forms(results):
    """Independent check: batch mean of 2 => CE logit gradient (p_t - 1)/2, probs gradient -1/(2 p_t)."""
    tau = DEMO_PRINTED["threshold"]
    for i, (lo, hi) in enumerate(results["demo"].values["p_t_intervals"]):
        p = 0.5 * (lo + hi)
        assert abs(p - DEMO_PRINTED["probs"][i][0]) <= 5e-4
        above = p > tau
        logit_ce, prob_ce = (p - 1) / 2, -1 / (2 * p)
        expected = {
            "grad_logits": {"ce": logit_ce, "published": 0.0 if above else logit_ce, "soft": 0.1 * logit_ce if above else logit_ce},
            "grad_probs": {"ce": prob_ce, "published": 0.0 if above else prob_ce, "soft": 0.1 * prob_ce if above else prob_ce},
        }
        for col, decimals in (("grad_logits", 5), ("grad_probs", 4)):
            for k, v in expected[col].items():
                printed = DEMO_PRINTED[col][k][i]
                assert round(v, decimals) == pytest.approx(printed[0], abs=1e-12), (col, k, i)
                other = -v if col == "grad_logits" else 0.0
                assert round(other, decimals) == pytest.approx(printed[1], abs=1e-12)


def test_audit_json_lists_objects_with_the_contract_keys(capsys):
    assert cli.main(["audit", "--json", "--ids", "scale-2.3,demo"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["id"] for o in out] == ["scale-2.3", "demo"]
    for o in out:
        assert set(o) == {"id", "claim", "verdict", "evidence", "source", "values", "kind", "overturn", "preset"}
        assert o["source"] in SOURCES
        assert o["kind"] == "exact mathematics" and o["overturn"] and o["preset"] == ""


def test_audit_table_shows_ids_verdicts_and_wrapped_evidence(capsys):
    assert cli.main(["audit", "--ids", "sign,soft-0.1", "--width", "80"]) == 0
    out = capsys.readouterr().out
    assert "sign" in out and "soft-0.1" in out and "holds" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "2 claims: 2 holds, 0 fails, 0 conditional" in out
    text = " ".join(out.split())  # the kind and overturn lines, wrapped
    assert text.count("[source: corrections note; evidence: exact mathematics]") == 2
    specs = {s.id: s for s in registered_claims()}
    assert all(f"[overturned by: {specs[i].overturn}]" in text for i in ("sign", "soft-0.1"))


def test_audit_rejects_unknown_claim_ids(capsys):
    assert cli.main(["audit", "--ids", "no-such-claim"]) == 2
    assert "Unknown claim ids ['no-such-claim']" in capsys.readouterr().err


def test_loss_audit_output_is_stable(results, data_regression):
    data_regression.check([results[i].to_dict() for i in LOSS_IDS])
