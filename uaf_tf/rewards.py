"""UAF-RL rewards (paper Eq. 11 and the original's variant), vectorised.

With `hit` = the positive ranks in the top K (K = 5) of its candidates and
`f = n_finetuned / N` the fraction of blocks that used the fine-tuned copy:

    paper (Eq. 11):  R = 1 - w f^2                 if hit, else -gamma
    original:        R = 1 - w gamma (1 - f)^2     if hit, else -gamma

The paper's form pays more for freezing (fewer fine-tuned blocks, cheaper to
serve); the original's pays more for fine-tuning. The paper's is the default.
`w` (`cost_weight`) weighs the block term against accuracy; both the paper
and the original have w = 1. With w = 1 and gamma = 1 the paper's reward
drives every user to all-frozen on ML-100K (see issue 8 sec. 4): w < 1
trades cost for accuracy, w = 0 rewards hits only.
"""

import tensorflow as tf

from uaf_tf import metrics

PAPER = "paper"
ORIGINAL = "original"
REWARDS = (PAPER, ORIGINAL)

# The paper rewards a hit in the top 5 of the 100 candidates.
REWARD_CUTOFF = 5


def policy_reward(
    hit,
    policy,
    gamma: float = 1.0,
    form: str = PAPER,
    cost_weight: float = 1.0,
):
    """Reward `[B]` of hard policies `policy [B, N]` given `hit [B]`.

    Args:
        hit: bool or {0, 1} `[B]`, whether the recommendation was correct.
        policy: {0, 1} `[B, N]`, 1 = fine-tuned copy used.
        gamma: float, penalty of a miss (and the original's fraction weight).
        form: `"paper"` or `"original"`.
        cost_weight: float >= 0, w, weight of the block term (paper: 1).

    Returns:
        float32 `[B]`.
    """
    if form not in REWARDS:
        raise ValueError(
            f"`form` must be one of {REWARDS}. Received: form={form!r}"
        )
    if cost_weight < 0:
        raise ValueError(
            f"`cost_weight` must be >= 0. Received: cost_weight={cost_weight}"
        )
    fraction = tf.reduce_mean(tf.cast(policy, tf.float32), axis=-1)  # [B]
    if form == PAPER:
        hit_reward = 1.0 - cost_weight * tf.square(fraction)
    else:
        hit_reward = 1.0 - cost_weight * gamma * tf.square(1.0 - fraction)
    miss_reward = tf.fill(tf.shape(hit_reward), -float(gamma))
    return tf.where(tf.cast(hit, tf.bool), hit_reward, miss_reward)


def hit_at_cutoff(candidate_scores, cutoff: int = REWARD_CUTOFF):
    """Whether column 0 of `candidate_scores [B, M]` ranks < `cutoff`: `[B]`.

    Uses the project's pessimistic tie policy (`metrics.rank_among_candidates`).
    """
    return metrics.rank_among_candidates(candidate_scores) < cutoff
