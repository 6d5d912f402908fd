"""SASRecBackbone and SelfAttentionBlock; UAF over SASRec (paper Table 3)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.api import runs
from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.layers.self_attention_block import SelfAttentionBlock
from uaf_tf.models.peterrec_recommender import PeterRecRecommender
from uaf_tf.models.policy_network import PolicyNetwork
from uaf_tf.models.sasrec_backbone import SASRecBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.serving import export_run
from uaf_tf.serving import signature_keys as keys
from uaf_tf.training import pretrain
from uaf_tf.training import trainer

V, L, C = 61, 10, 16


def _backbone(**kwargs):
    keras.utils.set_random_seed(0)
    backbone = SASRecBackbone(
        num_items=V, max_len=L, channels=C, num_heads=2, **kwargs
    )
    backbone.build((None, L))
    return backbone


def _ids(seed=0, batch=4):
    return tf.constant(
        np.random.default_rng(seed).integers(1, V, [batch, L]), tf.int32
    )


def test_block_layer_contract():
    testing.run_layer_test(
        SelfAttentionBlock,
        {"channels": C, "num_heads": 2, "dropout": 0.0, "final_norm": True},
        tf.random.normal([2, 5, C], seed=1),
        (2, 5, C),
        # 3 layer norms (2 each), q/k/v/o (kernel, bias), 2 dense (2 each).
        expected_num_trainable_weights=18,
    )


def test_block_rejects_heads_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="divide `channels`"):
        SelfAttentionBlock(channels=10, num_heads=3)


def test_peterrec_refuses_a_sasrec_backbone():
    with pytest.raises(ValueError, match="SelfAttentionBlock"):
        PeterRecRecommender.from_pretrained(_backbone(), 20)


def test_causal_later_items_do_not_change_earlier_states():
    backbone = _backbone()
    ids = _ids()
    changed = tf.concat([ids[:, :6], _ids(seed=1)[:, 6:]], axis=1)
    before, after = backbone(ids), backbone(changed)
    np.testing.assert_allclose(before[:, :6], after[:, :6], atol=1e-5)
    assert np.abs(before[:, 6:] - after[:, 6:]).max() > 1e-3


def test_padding_rows_are_zero_and_more_padding_changes_nothing():
    backbone = _backbone()
    items = _ids()[:, :4]
    # The same 4 items left-padded to L and to 7 positions: positions are
    # right-aligned, padding keys are masked, so the item states agree.
    long = tf.pad(items, [[0, 0], [L - 4, 0]])
    short = tf.pad(items, [[0, 0], [3, 0]])
    out_long, out_short = backbone(long), backbone(short)
    np.testing.assert_array_equal(out_long[:, : L - 4], 0.0)
    np.testing.assert_allclose(out_long[:, -4:], out_short[:, -4:], atol=1e-5)
    # An all-padding row stays finite (zero) rather than NaN.
    empty = backbone(tf.zeros([1, L], tf.int32))
    np.testing.assert_array_equal(empty, 0.0)


def test_dropout_only_while_training():
    backbone = _backbone(dropout=0.5)
    ids = _ids()
    np.testing.assert_array_equal(backbone(ids), backbone(ids))
    assert np.abs(backbone(ids, training=True) - backbone(ids)).max() > 1e-3


def test_saving_round_trip():
    model = SequencePretrainer(_backbone(), num_items=V)
    model.build((None, L))
    loaded = testing.run_model_saving_test(model, _ids())
    assert isinstance(loaded.backbone, SASRecBackbone)
    assert loaded.backbone.blocks[-1].final_norm
    assert not loaded.backbone.blocks[0].final_norm


@pytest.mark.parametrize("gate", [[0.0, 1.0, 1.0, 0.0], [0.0] * 4, [1.0] * 4])
def test_gated_self_attention_block_hard_path_equals_both_branches(gate):
    block = _backbone().blocks[0]
    gated = GatedResidualBlock.from_pretrained(block)
    assert isinstance(gated.finetuned, SelfAttentionBlock)
    for weight in gated.finetuned.trainable_weights:
        weight.assign(weight + 0.05 * tf.random.normal(weight.shape, seed=3))
    hidden = _backbone().embed(_ids())
    gate = tf.constant(gate)
    expected = tf.where(
        gate[:, None, None] > 0.5, gated.finetuned(hidden), block(hidden)
    )
    np.testing.assert_allclose(gated(hidden, gate), expected, atol=1e-5)
    np.testing.assert_allclose(
        gated(hidden, gate, hard=True), expected, atol=1e-5
    )


def test_attention_policy_encoder():
    policy = PolicyNetwork(
        num_items=V, channels=C, num_blocks=3, encoder="attention"
    )
    ids = tf.pad(_ids()[:, :5], [[0, 0], [L - 5, 0]])
    logits = policy(ids)
    assert logits.shape == (4, 3, 2)
    # Padding does not count in the mean over positions.
    shorter = tf.pad(_ids()[:, :5], [[0, 0], [2, 0]])
    np.testing.assert_allclose(policy(shorter), logits, atol=1e-5)
    assert policy.get_config()["encoder"] == "attention"


def test_short_pretraining_learns_the_planted_transitions(tmp_path):
    train = testing.planted_sequences(512, L, V, min_length=4, seed=0)
    valid = testing.planted_sequences(150, L, V, min_length=4, seed=1)
    model = SequencePretrainer(_backbone(dropout=0.0), num_items=V)
    model.build((None, L))
    task = pretrain.PretrainTask(
        model,
        lambda epoch: testing.sequence_dataset(train, 32, shuffle_seed=epoch),
        lambda split: testing.sequence_dataset(valid, 50),
        learning_rate=3e-3,
    )
    before = task.evaluate("valid")
    results = trainer.fit(
        task,
        str(tmp_path),
        trainer.TrainerConfig(
            epochs=3,
            log_every_steps=0,
            selection_metric="full/mrr@5",
            jit_compile=False,
        ),
    )
    # Random scores: the positive in the top 5 of V - 1 items w.p. 5 / 60.
    assert results["valid"]["full/hr@5"] >= 3 * 5 / (V - 1)
    assert results["valid"]["loss"] < before["loss"]


def test_pretrain_finetune_export_end_to_end(tmp_path):
    data_dir = testing.build_tiny_dataset_dir(str(tmp_path / "data"))
    pretrained = str(tmp_path / "pretrain")
    runs.pretrain(
        data_dir,
        pretrained,
        backbone="sasrec",
        channels=8,
        attention_blocks=2,
        attention_heads=2,
        epochs=1,
        batch_size=64,
        log_every_steps=0,
        jit_compile=False,
    )
    with open(os.path.join(pretrained, "model.json")) as f:
        assert "SASRecBackbone" in f.read()
    finetuned = str(tmp_path / "gumbel")
    run = runs.finetune(
        data_dir,
        pretrained,
        finetuned,
        method="gumbel",
        policy_encoder="attention",
        epochs=1,
        batch_size=64,
        log_every_steps=0,
        jit_compile=False,
    )
    results = run.results
    assert np.isfinite(results["test"]["sampled/mrr@5"])
    assert results["test"]["policy/mean_finetuned_blocks"] <= 2.0
    with open(os.path.join(finetuned, "config.json")) as f:
        assert json.load(f)["policy_encoder"] == "attention"

    export_dir = export_run(finetuned, str(tmp_path / "export"), top_k=3)
    serve = tf.saved_model.load(export_dir).signatures[keys.SERVE]
    out = serve(
        source_items=tf.constant([["s001", "s002"], ["", ""]]),
        exclude_history=tf.constant([True, True]),
    )
    assert out[keys.TOP_K_ITEMS].shape == (2, 3)
