"""Tests for the UAF-RL rewards on hand-computed cases."""

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import rewards

# (hit, policy, gamma, paper reward, original reward)
CASES = [
    # Hit, nothing fine-tuned: paper 1 - 0 = 1; original 1 - 1 * 1^2 = 0.
    (True, [0, 0, 0, 0], 1.0, 1.0, 0.0),
    # Hit, all fine-tuned: paper 1 - 1 = 0; original 1 - 0 = 1.
    (True, [1, 1, 1, 1], 1.0, 0.0, 1.0),
    # Hit, half: paper 1 - 0.25 = 0.75; original 1 - 0.25 = 0.75.
    (True, [1, 0, 1, 0], 1.0, 0.75, 0.75),
    # Hit, 1 of 4: paper 1 - 1/16; original 1 - (3/4)^2 = 7/16.
    (True, [0, 0, 1, 0], 1.0, 15 / 16, 7 / 16),
    # Hit, 1 of 4, gamma 0.5: original 1 - 0.5 * 9/16 = 23/32.
    (True, [0, 0, 1, 0], 0.5, 15 / 16, 23 / 32),
    # Miss: -gamma whatever the policy.
    (False, [0, 0, 0, 0], 1.0, -1.0, -1.0),
    (False, [1, 1, 0, 1], 2.0, -2.0, -2.0),
]


@pytest.mark.parametrize("hit, policy, gamma, paper, original", CASES)
def test_reward_table(hit, policy, gamma, paper, original):
    hit = tf.constant([hit])
    policy = tf.constant([policy], tf.float32)
    np.testing.assert_allclose(
        rewards.policy_reward(hit, policy, gamma, rewards.PAPER), [paper]
    )
    np.testing.assert_allclose(
        rewards.policy_reward(hit, policy, gamma, rewards.ORIGINAL),
        [original],
    )


# (hit, policy, gamma, cost_weight, paper reward, original reward)
WEIGHTED_CASES = [
    # Hit, 3 of 4, w = 0.5: paper 1 - 0.5 * 9/16 = 23/32;
    # original 1 - 0.5 * 1 * (1/4)^2 = 31/32.
    (True, [1, 1, 1, 0], 1.0, 0.5, 23 / 32, 31 / 32),
    # Hit, all, w = 0: the block term vanishes, any hit pays 1.
    (True, [1, 1, 1, 1], 1.0, 0.0, 1.0, 1.0),
    # Hit, all, w = 2 (cost dominates): paper 1 - 2 = -1;
    # original 1 - 2 * 0.5 * 0 = 1.
    (True, [1, 1, 1, 1], 0.5, 2.0, -1.0, 1.0),
    # Miss: -gamma, whatever the weight.
    (False, [1, 0, 0, 0], 0.5, 0.25, -0.5, -0.5),
]


@pytest.mark.parametrize(
    "hit, policy, gamma, weight, paper, original", WEIGHTED_CASES
)
def test_cost_weight_scales_the_block_term(
    hit, policy, gamma, weight, paper, original
):
    hit = tf.constant([hit])
    policy = tf.constant([policy], tf.float32)
    for form, expected in (
        (rewards.PAPER, paper),
        (rewards.ORIGINAL, original),
    ):
        np.testing.assert_allclose(
            rewards.policy_reward(hit, policy, gamma, form, cost_weight=weight),
            [expected],
        )


def test_negative_cost_weight_is_rejected():
    with pytest.raises(ValueError, match="cost_weight"):
        rewards.policy_reward(
            tf.constant([True]), tf.ones([1, 2]), 1.0, "paper", -1.0
        )


def test_paper_reward_prefers_fewer_finetuned_blocks():
    hit = tf.constant([True, True])
    policy = tf.constant([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    paper = rewards.policy_reward(hit, policy).numpy()
    original = rewards.policy_reward(hit, policy, form="original").numpy()
    assert paper[0] > paper[1] and original[0] < original[1]


def test_hit_at_cutoff_is_pessimistic_on_ties():
    scores = tf.constant(
        [
            [5.0, 9, 8, 7, 6, 1, 0],  # rank 4 -> hit
            [5.0, 9, 8, 7, 6, 5, 0],  # a tie pushes it to rank 5 -> miss
            [5.0, 9, 8, 7, 6, 6, 0],  # rank 5 -> miss
        ]
    )
    np.testing.assert_array_equal(
        rewards.hit_at_cutoff(scores, 5), [True, False, False]
    )


def test_rejects_unknown_form():
    with pytest.raises(ValueError):
        rewards.policy_reward(tf.constant([True]), tf.ones([1, 2]), form="x")
