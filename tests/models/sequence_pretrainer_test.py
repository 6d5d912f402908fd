"""SequencePretrainer: next-item loss (Eq. 3-5), masking, scores, saving."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import metrics
from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import trainer

V, C = 23, 8

# Left-padded sequences: 0 is padding.
IDS = np.array(
    [
        [0, 0, 0, 5, 9, 2, 7],
        [0, 3, 3, 11, 1, 22, 4],
        [0, 0, 0, 0, 0, 6, 8],
        [1, 2, 3, 4, 5, 6, 7],
    ],
    dtype="int32",
)


def _model(mask_padding=True, num_sampled=0, seed=0, head_activation="none"):
    keras.utils.set_random_seed(seed)
    backbone = NextItNetBackbone(num_items=V, channels=C, dilations=(1, 2))
    model = SequencePretrainer(
        backbone,
        num_items=V,
        mask_padding=mask_padding,
        num_sampled=num_sampled,
        head_activation=head_activation,
    )
    model.build((None, IDS.shape[1]))
    # Non-zero bias so the head's bias term is exercised.
    model.output_bias.assign(np.linspace(-1, 1, V).astype("float32"))
    return model


def _numpy_cross_entropy(model, ids, mask_padding):
    """Eq. (3)-(5) from the backbone's hidden states, in float64."""
    hidden = model.backbone(ids[:, :-1]).numpy().astype("float64")
    if model.head_activation == "relu":  # The original's head.
        hidden = np.maximum(hidden, 0)
    kernel = model.output_kernel.numpy().astype("float64")  # [V, C]
    bias = model.output_bias.numpy().astype("float64")
    logits = hidden @ kernel.T + bias  # [B, L-1, V]
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = ids[:, 1:]
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    if mask_padding:
        return nll[labels != 0].mean()
    return nll.mean()


@pytest.mark.parametrize("head_activation", ["none", "relu"])
@pytest.mark.parametrize("mask_padding", [True, False], ids=["masked", "all"])
def test_loss_matches_numpy_cross_entropy(mask_padding, head_activation):
    model = _model(mask_padding, head_activation=head_activation)
    loss = model.compute_loss({"source": IDS}, training=False)
    expected = _numpy_cross_entropy(model, IDS, mask_padding)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_paper_head_has_no_relu_and_original_head_has_one():
    paper, original = _model(), _model(head_activation="relu")
    assert paper.head_activation == "none"  # Eq. (3) is the default.
    hidden = paper.backbone(IDS).numpy()
    assert (hidden < 0).any()  # So the two heads differ on these inputs.
    kernel = paper.output_kernel.numpy()
    bias = paper.output_bias.numpy()
    np.testing.assert_allclose(
        paper(IDS).numpy(), hidden @ kernel.T + bias, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        original(IDS).numpy(),
        np.maximum(hidden, 0) @ kernel.T + bias,
        rtol=1e-5,
        atol=1e-5,
    )


def test_masked_loss_averages_over_real_labels_only():
    model = _model(mask_padding=True)
    masked = float(model.compute_loss(IDS, training=False))
    # 24 predicted positions, 6 of them have a padding label.
    labels = IDS[:, 1:]
    assert (labels != 0).sum() == 18 and labels.size == 24
    unmasked = float(
        _model(mask_padding=False).compute_loss(IDS, training=False)
    )
    assert masked != pytest.approx(unmasked)
    # Appending all-padding rows changes nothing for the masked loss.
    padded = np.concatenate([IDS, np.zeros([3, IDS.shape[1]], "int32")])
    np.testing.assert_allclose(
        float(model.compute_loss(padded, training=False)), masked, rtol=1e-6
    )
    # All-padding batches give 0, not NaN.
    assert float(model.compute_loss(np.zeros([2, 7], "int32"))) == 0.0


def test_gradients_reach_every_weight_and_skip_padded_positions():
    model = _model()
    with tf.GradientTape() as tape:
        loss = model.compute_loss(IDS)
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    bias_grad = dict(
        zip([v.path for v in model.trainable_variables], grads, strict=True)
    )[model.output_bias.path]
    # d loss / d b = mean over kept positions of (softmax - onehot); the
    # padding class is never a label, so its gradient is positive.
    assert float(tf.convert_to_tensor(bias_grad)[0]) > 0


def test_call_and_next_item_scores_agree():
    model = _model()
    logits = model(IDS)
    assert logits.shape == (4, 7, V)
    np.testing.assert_allclose(
        model.next_item_scores(IDS), logits[:, -1], rtol=1e-5, atol=1e-5
    )


def test_sampled_softmax_trains_and_evaluates_with_the_full_softmax():
    model = _model(num_sampled=5)
    full = _numpy_cross_entropy(model, IDS, mask_padding=True)
    np.testing.assert_allclose(
        float(model.compute_loss(IDS, training=False)), full, rtol=1e-5
    )
    sampled = float(model.compute_loss(IDS, training=True))
    # 1 true + 5 sampled classes: the loss is at most log(6) scale, < full.
    assert 0 < sampled < full


def test_get_config_round_trip_serialises_the_backbone():
    model = _model(mask_padding=False, num_sampled=3, head_activation="relu")
    model.softmax_sampler = "uniform"
    config = model.get_config()
    assert config["backbone"]["registered_name"] == "uaf_tf>NextItNetBackbone"
    json.dumps(config)  # Plain JSON all the way down.
    clone = SequencePretrainer.from_config(config)
    assert isinstance(clone.backbone, NextItNetBackbone)
    assert (clone.num_items, clone.mask_padding, clone.num_sampled) == (
        V,
        False,
        3,
    )
    assert clone.head_activation == "relu"
    assert clone.softmax_sampler == "uniform"
    assert clone.backbone.get_config() == model.backbone.get_config()
    # A config saved before `head_activation` existed had the ReLU head.
    del config["head_activation"]
    assert SequencePretrainer.from_config(config).head_activation == "relu"
    # The same model through a .keras file: class, weights, logits.
    testing.run_model_saving_test(model, IDS)


def test_model_json_and_weights_rebuild_identical_model(tmp_path):
    model = _model()
    run_dir = str(tmp_path)
    run_dir_lib.save_model_spec(model, run_dir)
    model.save_weights(os.path.join(run_dir, trainer.BEST_WEIGHTS_FILE))
    loaded = run_dir_lib.load_model(run_dir)
    assert isinstance(loaded, SequencePretrainer)
    np.testing.assert_array_equal(loaded(IDS).numpy(), model(IDS).numpy())
    backbone = run_dir_lib.load_pretrained_backbone(run_dir)
    assert isinstance(backbone, NextItNetBackbone)
    np.testing.assert_array_equal(
        backbone(IDS).numpy(), model.backbone(IDS).numpy()
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_items": 1},
        {"num_items": V, "num_sampled": V},
        {"num_items": V, "head_activation": "gelu"},
        {"num_items": V, "softmax_sampler": "zipf"},
    ],
)
def test_rejects_bad_arguments(kwargs):
    backbone = NextItNetBackbone(num_items=V, channels=C, dilations=(1,))
    with pytest.raises(ValueError):
        SequencePretrainer(backbone, **kwargs)


@pytest.mark.parametrize("mask_padding", [True, False], ids=["masked", "all"])
def test_loss_and_gradients_agree_with_and_without_xla(mask_padding):
    # Without XLA the masked loss gathers the non-padding rows; under XLA it
    # weights them (static shapes). Both must give the same numbers.
    model = _model(mask_padding)

    def loss_and_grads(ids):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(ids)
        grads = tape.gradient(loss, model.trainable_variables)
        return loss, [tf.convert_to_tensor(g) for g in grads]

    eager = loss_and_grads(tf.constant(IDS))
    xla = tf.function(loss_and_grads, jit_compile=True)(tf.constant(IDS))
    np.testing.assert_allclose(xla[0], eager[0], rtol=1e-5)
    for a, b in zip(xla[1], eager[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
def test_sampled_loss_tends_to_the_full_softmax_as_num_sampled_grows(sampler):
    """Planted V = 23 with spread-out logits (head weights of scale 1).
    With the logQ correction the sampled softmax is a biased (low)
    estimate of the full cross-entropy whose bias shrinks as more classes
    are sampled, and with all V - 1 other classes sampled it is the full
    softmax up to the expected counts being < 1. Measured (full 7.23, mean
    of 10 draws): gaps 3.86, 1.20, 0.08 (log-uniform) and 4.43, 1.65, 0.07
    (uniform) at 2, 8 and 22 samples."""
    model = _model(num_sampled=2)
    rng = np.random.default_rng(0)
    model.output_kernel.assign(rng.normal(size=(V, C)).astype("float32"))
    full = _numpy_cross_entropy(model, IDS, mask_padding=True)
    gaps = []
    for num_sampled in (2, 8, 22):
        model.num_sampled, model.softmax_sampler = num_sampled, sampler
        losses = []
        for seed in range(10):
            tf.random.set_seed(seed)
            losses.append(float(model.compute_loss(IDS, training=True)))
        gaps.append(abs(np.mean(losses) - full))
    assert full > 2.0  # Not a near-uniform softmax: the test has teeth.
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[0] > 2.0
    assert gaps[2] < 0.02 * full


@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
def test_sampled_softmax_learns_a_planted_next_item_rule(sampler):
    """V = 200, next item = a fixed function of the current one; trained
    with 10 sampled classes per position (5% of V), the full-softmax
    ranking of the held-out last item must put it in the top 10 (measured:
    all 256 sequences with either sampler; untrained: 1.2%, chance 5%)."""
    num_items, length = 200, 8
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(
        num_items=num_items, channels=32, dilations=(1, 2)
    )
    model = SequencePretrainer(
        backbone, num_items=num_items, num_sampled=10, softmax_sampler=sampler
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    train = testing.planted_sequences(2048, length, num_items, seed=0)
    model.fit(testing.sequence_dataset(train, 64), epochs=6, verbose=0)
    valid = testing.planted_sequences(256, length, num_items, seed=1)
    scores = model.next_item_scores(valid[:, :-1])
    ranks = metrics.rank_among_all_items(scores, valid[:, -1]).numpy()
    assert np.mean(ranks < 10) > 0.9, np.mean(ranks < 10)


@pytest.mark.parametrize("mask_padding", [True, False], ids=["masked", "all"])
def test_chunked_full_softmax_loss_equals_the_one_softmax(mask_padding):
    """V = 23 classes in chunks of 5 (the last window overlapping): the
    evaluation loss agrees with the `[N, V]` softmax and its NumPy form;
    a chunk of at least V is the unchunked computation, bit for bit."""
    model = _model(mask_padding)
    full = model.compute_loss(IDS, training=False)
    chunked = model.compute_loss(IDS, training=False, softmax_chunk_size=5)
    np.testing.assert_allclose(float(chunked), float(full), rtol=1e-6)
    np.testing.assert_allclose(
        float(chunked),
        _numpy_cross_entropy(model, IDS, mask_padding=mask_padding),
        rtol=1e-5,
    )
    one_chunk = model.compute_loss(IDS, training=False, softmax_chunk_size=V)
    assert float(one_chunk) == float(full)
