"""Fine-tuning losses: ranking (Eq. 8) and self-critical (Eq. 12).

All are means over the batch and written with `softplus` so that large score
differences neither overflow nor lose precision:
`-log sigmoid(x) = softplus(-x)` and `-log(1 - sigmoid(x)) = softplus(x)`.
"""

import tensorflow as tf

BPR = "bpr"
POINTWISE = "pointwise"
LOSSES = (BPR, POINTWISE)


def bpr_loss(positive_scores, negative_scores):
    """Paper Eq. (8), BPR: `mean(-log sigmoid(o_pos - o_neg))`.

    Args:
        positive_scores: float `[B]`, `o_{y+}`.
        negative_scores: float `[B]`, `o_{y-}` (one sampled negative each).

    Returns:
        float scalar. For equal scores it is `log 2`.
    """
    return tf.reduce_mean(tf.nn.softplus(negative_scores - positive_scores))


def pointwise_loss(positive_scores, negative_scores):
    """The original's default head ("BPR" there): pointwise logistic loss.

    `mean(-log sigmoid(o_pos) - log(1 - sigmoid(o_neg)))`, i.e. binary
    cross-entropy with label 1 for the positive and 0 for the negative.

    Args:
        positive_scores: float `[B]`.
        negative_scores: float `[B]`.

    Returns:
        float scalar. For zero scores it is `2 log 2`.
    """
    return tf.reduce_mean(
        tf.nn.softplus(-positive_scores) + tf.nn.softplus(negative_scores)
    )


def ranking_loss(name: str):
    """`bpr_loss` or `pointwise_loss` by name (the `--loss` flag)."""
    if name == BPR:
        return bpr_loss
    if name == POINTWISE:
        return pointwise_loss
    raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={name!r}")


def self_critical_loss(log_prob_sampled, sampled_reward, greedy_reward):
    """Paper Eq. (12), self-critical REINFORCE, averaged over the batch.

    `L_RL = mean_b( -sum_l log p(A_l^s) * (R(A^s) - R(A_hat)) )`, the
    advantage held constant (`stop_gradient`): only `log p` is differentiated,
    so minimising it raises the probability of sampled policies that beat the
    greedy baseline and lowers it for those that do worse.

    Args:
        log_prob_sampled: float `[B]`, `sum_l log p(A_l^s)` of the sampled
            policy (`samplers.log_prob_of_policy`).
        sampled_reward: float `[B]`, `R(A^s)`.
        greedy_reward: float `[B]`, `R(A_hat)` of the greedy policy.

    Returns:
        float scalar.
    """
    advantage = tf.stop_gradient(sampled_reward - greedy_reward)
    return tf.reduce_mean(-log_prob_sampled * advantage)
