"""Fine-tuning losses: ranking (Eq. 8) and self-critical (Eq. 12); and the
pretraining's full-softmax cross-entropy over a vocabulary too large for
its `[N, V]` logits (`chunked_softmax_cross_entropy`).

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


def chunked_softmax_cross_entropy(
    features, kernel, bias, labels, chunk_size: int
):
    """Full-softmax cross-entropy without materialising the `[N, V]` logits.

    `-log softmax(features W^T + b)[label]` per row, the log-sum-exp over
    the V classes accumulated chunk by chunk with a running maximum
    (`lse = m + log sum exp(o - m)`, rescaled when the maximum grows), so
    memory is `[N, chunk_size]`. Equal to
    `tf.nn.sparse_softmax_cross_entropy_with_logits` up to float rounding
    (the sums run in another order), and as stable for large logits.

    Args:
        features: float `[N, C]`.
        kernel: float `[V, C]`, one row per class.
        bias: float `[V]`.
        labels: int `[N]`, in `[0, V)`.
        chunk_size: classes scored at once.

    Returns:
        float `[N]` losses.
    """
    if chunk_size < 1:
        raise ValueError(
            "`chunk_size` must be at least 1. "
            f"Received: chunk_size={chunk_size}"
        )
    labels = tf.cast(labels, tf.int32)
    num_classes = tf.shape(kernel)[0]
    size = tf.minimum(num_classes, chunk_size)
    rows = tf.shape(features)[0]
    running_max = tf.fill([rows], tf.constant(-float("inf"), features.dtype))
    running_sum = tf.zeros([rows], features.dtype)
    for start in tf.range(0, num_classes, size):
        # Fixed-width windows; columns before `start` are already summed.
        begin = tf.minimum(start, num_classes - size)
        logits = tf.matmul(
            features, tf.slice(kernel, [begin, 0], [size, -1]), transpose_b=True
        ) + tf.slice(bias, [begin], [size])
        fresh = (begin + tf.range(size)) >= start
        logits = tf.where(fresh[None, :], logits, -float("inf"))
        new_max = tf.maximum(running_max, tf.reduce_max(logits, axis=1))
        running_sum = running_sum * tf.exp(running_max - new_max) + (
            tf.reduce_sum(tf.exp(logits - new_max[:, None]), axis=1)
        )
        running_max = new_max
    label_logits = tf.reduce_sum(
        features * tf.gather(kernel, labels), axis=1
    ) + tf.gather(bias, labels)
    return running_max + tf.math.log(running_sum) - label_logits
