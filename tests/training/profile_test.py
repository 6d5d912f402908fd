"""Profile prediction (paper Table 9): metrics, what trains, learning.

The tiny dataset plants the gender label in the source items
(`testing.write_planted_profiles`), so a fine-tuned encoder must beat the
majority class on the held-out test users.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import config_flags
from uaf_tf import testing
from uaf_tf.data import dataset_info
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.profile_classifier import FinetuneProfileClassifier
from uaf_tf.models.profile_classifier import UAFProfileClassifier
from uaf_tf.training import profile
from uaf_tf.training import trainer

V, C, L, K = 50, 8, 10, 3
DILATIONS = (1, 2, 1)  # N = 3 blocks
NUM_SOURCE_ITEMS = 60


def test_classification_metrics_closed_form():
    targets = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    metrics = profile.classification_metrics(targets, predictions)
    # F1 per class: 0: 2*1/(2+1+1) = 0.5; 1: 2*2/(4+1+0) = 0.8; 2: 0.
    assert metrics == pytest.approx(
        {
            "accuracy": 3 / 5,
            "macro_f1": (0.5 + 0.8 + 0.0) / 3,
            "num_examples": 5,
        }
    )
    # A class neither present nor predicted does not count.
    assert profile.classification_metrics(
        np.array([1, 1]), np.array([1, 1])
    ) == pytest.approx({"accuracy": 1.0, "macro_f1": 1.0, "num_examples": 2})
    # The majority baseline on 3:1 data: F1 = (2*3/(6+1), 0) averaged.
    assert profile.classification_metrics(
        np.array([0, 0, 0, 1]), np.zeros(4, int)
    )["macro_f1"] == pytest.approx(3 / 7)
    assert profile.majority_class(np.array([2, 1, 2, 1]), 3) == 1


def _backbone():
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(V, C, DILATIONS)
    backbone.build((None, L))
    return backbone


def _model(method, backbone=None, **overrides):
    config = profile.ProfileConfig(
        data_dir="unused", pretrained="unused", method=method, **overrides
    )
    return profile.profile_model_for_method(
        config, backbone or _backbone(), K, seq_len=L
    )


def _ids(layers):
    return {id(w) for layer in layers for w in layer.weights}


def _expected_trainable(model, method):
    backbone = model.backbone
    blocks = list(backbone.blocks)
    input_stage = [
        w for w in backbone.weights if id(w) not in _ids(blocks)
    ]  # the item embedding
    head = _ids([model.classifier])
    if method in profile.UAF_METHODS:
        copies = [gated.finetuned for gated in model.gated_blocks]
        policy = [model.policy_network] if model.policy_network else []
        return {id(w) for w in input_stage} | _ids(copies + policy) | head
    trained_blocks = {
        "finetune-zero": blocks,
        "finetune-all": blocks,
        "finetune-cls": [],
        "finetune-last1": blocks[-1:],
        "finetune-last2": blocks[-2:],
    }[method]
    stage = {"finetune-zero", "finetune-all"}
    embedding = {id(w) for w in input_stage} if method in stage else set()
    return embedding | _ids(trained_blocks) | head


@pytest.mark.parametrize("method", profile.METHODS)
def test_exactly_the_method_trains(method):
    backbone = _backbone()
    model = _model(method, backbone)
    assert {id(v) for v in model.trainable_variables} == _expected_trainable(
        model, method
    )
    expected_class = (
        UAFProfileClassifier
        if method in profile.UAF_METHODS
        else FinetuneProfileClassifier
    )
    assert type(model) is expected_class
    assert model.classifier.kernel.shape == (C, K)
    # Finetune-Zero re-initialises; every other method starts pretrained.
    same = model.backbone is backbone
    assert same == (method != "finetune-zero")


def test_uaf_freezes_the_pretrained_blocks():
    model = _model("gumbel")
    frozen = {id(v) for v in model.non_trainable_variables}
    for gated in model.gated_blocks:
        assert _ids([gated.frozen]) <= frozen
        for pretrained, copy in zip(
            gated.frozen.weights, gated.finetuned.weights, strict=True
        ):
            np.testing.assert_array_equal(pretrained.numpy(), copy.numpy())


def _batch(seed=0, batch_size=16):
    rng = np.random.default_rng(seed)
    return {
        dataset_info.SOURCE: tf.constant(
            rng.integers(0, V, [batch_size, L]), tf.int32
        ),
        dataset_info.TARGET: tf.constant(rng.integers(0, K, batch_size)),
    }


def test_loss_is_the_softmax_cross_entropy_of_the_head():
    model = _model("finetune-cls")
    batch = _batch()
    loss, logs = model.compute_loss_and_logs(batch, training=False)
    logits = model(batch[dataset_info.SOURCE])["class_logits"].numpy()
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    targets = batch[dataset_info.TARGET].numpy()
    expected = -np.mean(log_probs[np.arange(len(targets)), targets])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # The head starts near zero (stddev 0.01): loss close to log K.
    assert float(loss) == pytest.approx(np.log(K), abs=0.05)
    assert float(logs["accuracy"]) == pytest.approx(
        np.mean(logits.argmax(axis=1) == targets)
    )


def test_rl_reward_hit_is_a_correct_class():
    model = _model("rl", rl_curriculum_epochs=0)
    batch = _batch(1)
    user = model(batch[dataset_info.SOURCE])["user_embedding"]
    logits = model.classify(user).numpy()
    targets = tf.cast(batch[dataset_info.TARGET], tf.int32)
    hit = model._reward_hit(user, targets, None).numpy()
    np.testing.assert_array_equal(hit, logits.argmax(axis=1) == targets.numpy())
    # RL on from epoch 0: the self-critical terms are in the logs.
    _, logs = model.compute_loss_and_logs(batch)
    assert float(logs["rl_on"]) == 1.0
    assert float(logs["loss"]) == pytest.approx(
        float(logs["classification_loss"] + logs["weighted_policy_loss"]),
        rel=1e-5,
    )


def test_config_round_trip_keeps_the_class_count():
    model = _model("soft")
    config = model.get_config()
    assert config["num_classes"] == K and "num_target_ids" not in config
    restored = UAFProfileClassifier.from_config(config)
    restored.build((None, L))
    assert restored.num_classes == K
    assert len(restored.trainable_weights) == len(model.trainable_weights)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile")
    data_dir = testing.build_tiny_dataset_dir(
        str(root / "data"),
        num_users=400,
        num_source_items=NUM_SOURCE_ITEMS,
        num_groups=4,
        seq_len=12,
    )
    testing.write_planted_profiles(data_dir, NUM_SOURCE_ITEMS, skip_users=2)
    pretrained = testing.pretrain_tiny_run(
        data_dir,
        str(root / "pretrain"),
        channels=16,
        dilations=(1, 4),
        epochs=3,
        learning_rate=1e-2,
    )
    return data_dir, pretrained, root


def _run(pretrained_run, method, run_name, **overrides):
    data_dir, pretrained, root = pretrained_run
    config = profile.ProfileConfig(
        data_dir=data_dir,
        pretrained=pretrained,
        method=method,
        training=trainer.TrainingConfig(
            batch_size=32,
            learning_rate=1e-2,
            epochs=overrides.pop("epochs", 6),
            log_every_steps=0,
            jit_compile=False,
        ),
        **overrides,
    )
    run_dir = str(root / run_name)
    return profile.run_profile_prediction(config, run_dir), run_dir


@pytest.mark.parametrize("method", ["finetune-all", "soft"])
def test_learns_the_planted_label_beyond_the_majority(pretrained_run, method):
    results, run_dir = _run(pretrained_run, method, f"run-{method}")
    test = results["test"]
    assert test["num_examples"] == 40  # 10% of the 398 profiled users
    assert results["profile"]["users"] == {
        "train": 318,
        "valid": 40,
        "test": 40,
    }
    assert results["profile"]["skipped_users"] == 2
    assert results["profile"]["class_names"] == ["F", "M"]
    # The planted label is learnable: well above the majority class.
    assert test["majority/accuracy"] <= 0.7
    assert test["accuracy"] >= test["majority/accuracy"] + 0.2
    assert test["macro_f1"] > test["majority/macro_f1"]
    with open(os.path.join(run_dir, "results.json")) as f:
        assert json.load(f)["test"] == test
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert (config["task"], config["method"]) == ("profile", method)
    if method == "soft":
        assert 0.0 <= test["policy/mean_finetuned_blocks"] <= 2.0


def test_cls_keeps_the_backbone_bit_identical(pretrained_run):
    from uaf_tf import run_dir as run_dir_lib

    _, pretrained, _ = pretrained_run
    results, run_dir = _run(pretrained_run, "finetune-cls", "run-cls", epochs=2)
    model = run_dir_lib.load_model(run_dir)
    backbone = run_dir_lib.load_pretrained_backbone(pretrained)
    for trained, original in zip(
        model.backbone.weights, backbone.weights, strict=True
    ):
        np.testing.assert_array_equal(trained.numpy(), original.numpy())
    assert results["test"]["policy/mean_finetuned_blocks"] == 0.0


def test_a_run_into_the_pretraining_run_is_refused(pretrained_run):
    data_dir, pretrained, _ = pretrained_run
    config = profile.ProfileConfig(data_dir=data_dir, pretrained=pretrained)
    before = sorted(os.listdir(pretrained))
    with open(os.path.join(pretrained, "config.json")) as f:
        saved = f.read()
    with pytest.raises(config_flags.ConfigError, match="run_dir"):
        profile.run_profile_prediction(config, pretrained)
    # Refused before anything was written into the pretraining run.
    assert sorted(os.listdir(pretrained)) == before
    with open(os.path.join(pretrained, "config.json")) as f:
        assert f.read() == saved


def test_precision_reaches_the_profile_model(pretrained_run, tmp_path):
    data_dir, pretrained, _ = pretrained_run
    config = profile.ProfileConfig(
        data_dir=data_dir,
        pretrained=pretrained,
        method="gumbel",
        training=trainer.TrainingConfig(
            batch_size=64,
            epochs=1,
            log_every_steps=0,
            jit_compile=False,
            precision="mixed_bfloat16",
        ),
    )
    results = profile.run_profile_prediction(config, str(tmp_path / "run"))
    with open(tmp_path / "run" / "model.json") as f:
        spec = f.read()
    # The encoder computes in bfloat16 (it was float32 whatever the flag).
    assert '"mixed_bfloat16"' in spec
    assert 0.0 <= results["test"]["accuracy"] <= 1.0


def test_a_strategy_is_refused_not_ignored(pretrained_run):
    data_dir, pretrained, _ = pretrained_run
    with pytest.raises(config_flags.ConfigError, match="strategy"):
        profile.ProfileConfig(
            data_dir=data_dir,
            pretrained=pretrained,
            training=trainer.TrainingConfig(strategy="mirrored"),
        )
