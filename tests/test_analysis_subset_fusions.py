"""The ensemble-size curves' shortcut fuses member subsets exactly as the fusion functions do."""

from __future__ import annotations

import itertools

import numpy as np

from analysis.core.fusion import average_fusion, vote_fusion
from analysis.core.ensemble_size import subset_fusions


def test_subset_fusions_equal_average_and_vote_fusion_bit_for_bit():
    rng = np.random.default_rng(0)
    # small integer logits over 3 classes: many vote ties and equal mean logits (tie-breaking paths)
    ties = rng.integers(0, 3, size=(5, 400, 3)).astype(np.float32)
    smooth = rng.normal(size=(5, 400, 3)).astype(np.float32)
    for logits in (ties, smooth):
        member_preds = logits.argmax(axis=2)
        n_tied = 0
        for k in range(1, 6):
            for subset in itertools.combinations(range(5), k):
                sub = logits[list(subset)]
                (avg_p, avg_q), (vote_p, vote_q) = subset_fusions(logits, member_preds, subset)
                ref_avg, ref_vote = average_fusion(sub), vote_fusion(sub)
                assert np.array_equal(avg_p, ref_avg[0]) and np.array_equal(avg_q, ref_avg[1])
                assert np.array_equal(vote_p, ref_vote[0]) and np.array_equal(vote_q, ref_vote[1])
                n_tied += int(((vote_q == vote_q.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        assert logits is smooth or n_tied > 0  # the tie-breaking path was exercised
