"""with_constant_weights: same answers, weights no longer call inputs."""

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import UAFRecommender
from uaf_tf.serving.constant_weights import check_foldable
from uaf_tf.serving.constant_weights import with_constant_weights

SEQ_LEN = 6


def _model(sampler):
    backbone = NextItNetBackbone(31, 8, dilations=(1, 2))
    backbone.build((None, SEQ_LEN))
    model = UAFRecommender.from_pretrained(
        backbone, 12, seq_len=SEQ_LEN, sampler=sampler
    )
    # Fine-tuned copies off the frozen weights, so each branch shows.
    for gated in model.gated_blocks:
        for weight in gated.finetuned.weights:
            weight.assign(weight + 0.05)
    return model


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("sampler", ["gumbel", "soft"])
def test_outputs_equal_the_model_for_every_batch_size(sampler, jit_compile):
    model = _model(samplers.from_options(sampler, seed=0))
    spec = [tf.TensorSpec([None, SEQ_LEN], tf.int32)]

    def forward(ids):
        return model(ids, training=False)

    folded = with_constant_weights(forward, spec, jit_compile)
    # The reference is compiled the same way. XLA's reductions can still
    # sum in another order from run to run (its thread split), which moved
    # one value of 512 by 1.6e-5 in CI: hence 1e-4, far below what a
    # wrong weight or branch gives (test_the_weights_are_a_snapshot...).
    reference = tf.function(forward, jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    for batch in (1, 5, 64):
        ids = tf.constant(rng.integers(0, 31, [batch, SEQ_LEN]), tf.int32)
        want = reference(ids)
        got = folded(ids)
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_allclose(
                got[key], want[key], rtol=1e-4, atol=1e-4, err_msg=key
            )


def test_the_weights_are_a_snapshot_and_not_call_inputs():
    model = _model(samplers.from_options("gumbel", seed=0))
    spec = [tf.TensorSpec([None, SEQ_LEN], tf.int32)]

    def user(ids):
        return model(ids, training=False)["user_embedding"]

    folded = with_constant_weights(user, spec)
    ids = tf.ones([2, SEQ_LEN], tf.int32)
    before = user(ids).numpy()
    assert len(tf.function(user).get_concrete_function(*spec).captured_inputs)
    for weight in model.backbone.weights:
        weight.assign(weight * 2.0)
    np.testing.assert_allclose(folded(ids), before, rtol=1e-4, atol=1e-4)
    assert not np.allclose(user(ids), before, atol=1e-3)


def test_too_many_bytes_are_refused_with_the_size():
    variables = [tf.Variable(tf.zeros([256, 256]))]  # 256 KiB
    check_foldable(variables, max_bytes=256 * 1024)
    with pytest.raises(ValueError, match=r"0\.2 MiB, more than the 0\.1 MiB"):
        check_foldable(variables, max_bytes=100 * 1024)
    with pytest.raises(ValueError, match="keep them as variables"):
        with_constant_weights(
            lambda x: x + variables[0][0, :1],
            [tf.TensorSpec([None], tf.float32)],
            max_bytes=1024,
        )
