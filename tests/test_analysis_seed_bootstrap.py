"""Two-level bootstrap (members × test samples) against explicit resampled copies."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.core.fusions import STATIC_FUSIONS
from analysis.core.seed_bootstrap import two_level_bootstrap, weighted_predictions
from synthetic import synthetic_logits

N, M, C = 300, 6, 5


@pytest.fixture(scope="module")
def arms():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, N)
    logits = {a: synthetic_logits(labels, M, C, s, rng) for a, s in (("ce", 1.2), ("dyn-0.7", 1.6))}
    return labels, logits


@pytest.mark.parametrize("fusion", ["Average", "ProbAverage", "Vote"])
def test_weighted_fusion_equals_fusing_the_members_repeated_by_their_counts(arms, fusion):
    labels, logits = arms
    x = logits["ce"]
    rng = np.random.default_rng(1)
    counts = rng.multinomial(M, np.full(M, 1 / M), size=20)
    ours = weighted_predictions(x, counts, fusion)
    for b, w in enumerate(counts):
        ref, _ = STATIC_FUSIONS[fusion](np.repeat(x, w, axis=0))
        assert np.array_equal(ours[b], ref), (fusion, b)


@pytest.mark.parametrize("fusion", ["Average", "Vote", "Single"])
def test_resampled_accuracies_equal_a_loop_over_materialised_resamples(arms, fusion):
    labels, logits = arms
    n_res = 12
    ours = two_level_bootstrap(logits, labels, fusion=fusion, rng=np.random.default_rng(7), n_resamples=n_res,
                               chunk=n_res)
    # the same draws, in the module's convention: resample b uses child b; member counts, then samples
    children = np.random.default_rng(7).spawn(n_res)
    members, samples = [], []
    for g in children:
        members.append(np.bincount(g.integers(0, M, M), minlength=M))
        samples.append(np.bincount(g.integers(0, N, N), minlength=N))
    for arm, x in logits.items():
        for b in range(n_res):
            xs = np.repeat(x, members[b], axis=0)[:, np.repeat(np.arange(N), samples[b])]
            ys = np.repeat(labels, samples[b])
            if fusion == "Single":
                ref = np.mean([(xm.argmax(1) == ys).mean() for xm in xs])
            else:
                ref = (STATIC_FUSIONS[fusion](xs)[0] == ys).mean()
            assert ours[arm][b] == pytest.approx(ref, abs=1e-12), (arm, b)


def test_chunking_does_not_change_the_draws(arms):
    labels, logits = arms
    a = two_level_bootstrap(logits, labels, fusion="Average", rng=np.random.default_rng(3), n_resamples=30, chunk=30)
    b = two_level_bootstrap(logits, labels, fusion="Average", rng=np.random.default_rng(3), n_resamples=30, chunk=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_member_randomness_widens_the_interval_beyond_test_sampling(arms):
    """Members that disagree add variance: the two-level spread exceeds the spread of the same
    ensemble under a test-only bootstrap (all members drawn once)."""
    labels, logits = arms
    two = two_level_bootstrap(logits, labels, fusion="Single", rng=np.random.default_rng(5), n_resamples=2000)
    rng = np.random.default_rng(5)
    correct = (logits["ce"].argmax(2) == labels).mean(0)  # mean member correctness per sample
    test_only = np.array([correct @ rng.multinomial(N, np.full(N, 1 / N)) / N for _ in range(2000)])
    assert two["ce"].std() > test_only.std()


def test_bad_arguments_are_named():
    labels = np.zeros(4, int)
    with pytest.raises(ValueError, match="`fusion`"):
        two_level_bootstrap({"a": np.zeros((2, 4, 3))}, labels, fusion="MLP", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="one M"):
        two_level_bootstrap({"a": np.zeros((2, 4, 3)), "b": np.zeros((3, 4, 3))}, labels, fusion="Average",
                            rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="`rng`"):
        two_level_bootstrap({"a": np.zeros((2, 4, 3))}, labels, fusion="Average", rng=0)
