"""The baselines of paper sec. 4.2 through the one method dispatch.

For each baseline: exactly which variables train (by object), frozen ones
bit-identical after training and trainable ones moved, `model.fit`, saving,
serving, and a run end to end.
"""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import config_flags
from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.data import dataset_info
from uaf_tf.experiments import report
from uaf_tf.models.conet_recommender import CoNetRecommender
from uaf_tf.models.ddtcdr_recommender import DDTCDRRecommender
from uaf_tf.models.finetune_baseline import FinetuneBaseline
from uaf_tf.models.mtl_recommender import MTLRecommender
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.peterrec_recommender import PeterRecRecommender
from uaf_tf.serving import saved_model_export
from uaf_tf.training import finetune
from uaf_tf.training import trainer

V, T, C, L, B = 50, 30, 8, 10, 32
DILATIONS = (1, 2, 1)  # N = 3 blocks
METHODS = finetune.BASELINE_METHODS


def _pretrained_backbone():
    """A backbone whose weights are all away from their initial values."""
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(V, C, DILATIONS)
    backbone.build((None, L))
    rng = np.random.default_rng(0)
    backbone.set_weights(
        [w + 0.1 * rng.standard_normal(w.shape) for w in backbone.get_weights()]
    )
    return backbone


def _config(method, **overrides):
    return finetune.FinetuneConfig(
        data_dir="unused",
        pretrained="unused",
        method=method,
        training=trainer.TrainingConfig(learning_rate=1e-2),
        **overrides,
    )


def _model(method, backbone=None):
    backbone = backbone or _pretrained_backbone()
    return finetune.model_for_method(_config(method), backbone, T, seq_len=L)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    target = rng.integers(1, T, B)
    negative = (target + rng.integers(1, T - 1, B) - 1) % (T - 1) + 1
    return {
        dataset_info.SOURCE: tf.constant(rng.integers(0, V, [B, L]), tf.int32),
        dataset_info.TARGET: tf.constant(target, tf.int32),
        dataset_info.NEGATIVE: tf.constant(negative, tf.int32),
    }


def _weights(*layers):
    return [w for layer in layers for w in layer.weights]


def _expected_trainable(model, method):
    """The variables `method` trains, named by the objects that hold them."""
    backbone, blocks = model.backbone, model.backbone.blocks
    head = (model.target_embedding, model.target_bias)
    expected = {
        "finetune-zero": _weights(backbone, *head),
        "finetune-all": _weights(backbone, *head),
        "finetune-cls": _weights(*head),
        "finetune-last1": _weights(blocks[-1], *head),
        "finetune-last2": _weights(blocks[-2], blocks[-1], *head),
    }
    if method == "mtl":  # Everything, and the source softmax head.
        source_head = [
            model.source_model.output_kernel,
            model.source_model.output_bias,
        ]
        return [*_weights(backbone, *head), *source_head]
    # CoNet / DDTCDR: everything, and the source softmax head.
    if method in ("conet", "ddtcdr"):
        source_head = [model.source_kernel, model.source_bias]
    if method == "conet":
        towers = (*model.target_layers, *model.source_layers)
        return [
            *_weights(backbone, *towers, *model.cross_layers, *head),
            *source_head,
        ]
    if method == "ddtcdr":
        return [
            *_weights(backbone, model.source_backbone, *head),
            model.transfer_matrix,
            *source_head,
        ]
    if method == "peterrec":
        return _weights(
            *[
                layer
                for p in model.patched_blocks
                for layer in (p.patch_1, p.norm_1, p.patch_2, p.norm_2)
            ],
            *head,
        )
    return expected[method]


def _ids(variables):
    return {id(v) for v in variables}


def test_methods_are_one_list_validated_by_the_config():
    assert finetune.METHODS == (
        "gumbel",
        "soft",
        "rl",
        "random",
        "finetune-zero",
        "finetune-cls",
        "finetune-last1",
        "finetune-last2",
        "finetune-all",
        "mtl",
        "conet",
        "ddtcdr",
        "peterrec",
    )
    (field,) = [
        f
        for f in dataclasses.fields(finetune.FinetuneConfig)
        if f.name == "method"
    ]
    assert field.metadata[config_flags.CHOICES] == finetune.METHODS
    with pytest.raises(ValueError, match="Received: method='finetune-last3'"):
        _config("finetune-last3")
    # reproduce.py's default grid runs exactly these.
    assert sorted(report.METHOD_ORDER) == sorted(finetune.METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_exactly_the_recipe_trains(method):
    model = _model(method)
    expected = _expected_trainable(model, method)
    assert len(expected) == len(_ids(expected))
    assert _ids(model.trainable_variables) == _ids(expected)
    assert _ids(model.non_trainable_variables) == (
        _ids(model.weights) - _ids(expected)
    )


@pytest.mark.parametrize("method", METHODS)
def test_policy_marks_the_blocks_whose_weights_train(method):
    model = _model(method)
    policy = model(_batch()[dataset_info.SOURCE])["policy"].numpy()
    row = {
        "finetune-zero": [1, 1, 1],
        "finetune-all": [1, 1, 1],
        "finetune-cls": [0, 0, 0],
        "finetune-last1": [0, 0, 1],
        "finetune-last2": [0, 1, 1],
        "mtl": [1, 1, 1],
        "conet": [1, 1, 1],
        "ddtcdr": [1, 1, 1],
        "peterrec": [0, 0, 0],
    }[method]
    np.testing.assert_array_equal(policy, np.tile(row, [B, 1]))


@pytest.mark.parametrize("method", METHODS)
def test_train_steps_move_exactly_the_trainable_variables(method):
    model = _model(method)
    task = finetune.FinetuneTask(_config(method), model, info=None)
    trainable = _ids(model.trainable_variables)
    before = {id(w): w.numpy() for w in model.weights}
    step = tf.function(task.train_step)
    for seed in range(3):
        logs = step(_batch(seed))
    assert np.isfinite(float(logs["loss"]))
    for w in model.weights:
        if id(w) in trainable:
            assert np.abs(w.numpy() - before[id(w)]).max() > 0, w.path
        else:
            np.testing.assert_array_equal(w.numpy(), before[id(w)], w.path)


@pytest.mark.parametrize("method", METHODS)
def test_fit_trains_one_epoch(method):
    model = _model(method)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    before = model.target_item_embeddings.numpy()
    history = model.fit(
        tf.data.Dataset.from_tensors(_batch()).repeat(2), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    extra = {
        "mtl": {"source_loss"},
        "conet": {"source_loss"},
        "ddtcdr": {"source_loss", "orthogonality_penalty"},
    }.get(method, set())
    assert set(history.history) == {
        "loss",
        "ranking_loss",
        "finetuned_fraction",
        *extra,
    }
    assert np.abs(model.target_item_embeddings.numpy() - before).max() > 0


@pytest.mark.parametrize("method", ["gumbel", "finetune-cls", "peterrec"])
def test_item_bias_flag_reaches_every_model(method):
    backbone = _pretrained_backbone()
    config = _config(method, item_bias=False)
    model = finetune.model_for_method(config, backbone, T, seq_len=L)
    assert model.target_bias is None and not model.item_bias
    with_bias = _model(method)
    assert len(with_bias.weights) == len(model.weights) + 1
    assert with_bias.target_bias.embeddings.shape == (T, 1)


def test_finetune_zero_starts_from_a_random_initialisation():
    pretrained = _pretrained_backbone()
    model = _model("finetune-zero", pretrained)
    assert model.backbone is not pretrained
    assert model.backbone.dilations == pretrained.dilations
    fresh, old = model.backbone.get_weights(), pretrained.get_weights()
    assert [w.shape for w in fresh] == [w.shape for w in old]
    for a, b in zip(fresh, old, strict=True):
        assert not np.any(a == b)
    # The other baselines start from the pretrained weights, in place.
    model = _model("finetune-all", pretrained)
    assert model.backbone is pretrained


def test_peterrec_starts_near_the_pretrained_encoder():
    """New patches are near identity (PeterRec's init, not exactly 0)."""
    pretrained = _pretrained_backbone()
    model = _model("peterrec", pretrained)
    ids = _batch()[dataset_info.SOURCE]
    user = model(ids)["user_embedding"]
    expected = tf.reduce_mean(pretrained(ids), axis=1)
    deviation = float(tf.norm(user - expected) / tf.norm(expected))
    assert 0.0 < deviation < 0.05


@pytest.mark.parametrize(
    "method", ["finetune-last1", "peterrec", "conet", "ddtcdr"]
)
def test_saved_model_reloads_with_the_same_outputs_and_freezing(
    method, tmp_path
):
    model = _model(method)
    run_dir = str(tmp_path)
    run_dir_lib.save_model_spec(model, run_dir)
    model.save_weights(os.path.join(run_dir, "best.weights.h5"))
    loaded = run_dir_lib.load_model(run_dir)
    assert type(loaded) is type(model)
    ids = _batch()[dataset_info.SOURCE]
    for key in ("user_embedding", "policy"):
        np.testing.assert_array_equal(loaded(ids)[key], model(ids)[key])
    assert len(loaded.trainable_variables) == len(model.trainable_variables)
    assert _ids(loaded.trainable_variables) == _ids(
        _expected_trainable(loaded, method)
    )


@pytest.mark.parametrize(
    "method", ["finetune-all", "peterrec", "conet", "ddtcdr"]
)
def test_serving_export_scores_like_keras_bias_included(method, tmp_path):
    model = _model(method)
    bias = model.target_bias.embeddings
    bias.assign(np.random.default_rng(0).normal(size=bias.shape))
    vocab = {}
    for name, size in (("source", V - 1), ("target", T - 1)):
        vocab[name] = str(tmp_path / f"{name}.txt")
        with open(vocab[name], "w") as f:
            f.write("".join(f"{name[0]}{i}\n" for i in range(1, size + 1)))
    export_dir = str(tmp_path / "export")
    saved_model_export.export_saved_model(
        model, export_dir, vocab["source"], vocab["target"], L, top_k=3
    )
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    history = [[f"s{i}" for i in range(1, L + 1)]]
    out = serve(
        source_items=tf.constant(history), exclude_history=tf.constant([True])
    )
    ids = tf.constant([list(range(1, L + 1))], tf.int32)
    keras_out = model(ids)
    expected = tf.math.top_k(
        model.score_all_items(keras_out["user_embedding"])[:, 1:], k=3
    ).values
    np.testing.assert_allclose(out["top_k_scores"], expected, rtol=1e-5)
    np.testing.assert_array_equal(out["policy"], keras_out["policy"])


# === End to end on planted synthetic data ===


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    data_dir = testing.build_tiny_dataset_dir(
        str(root / "data"),
        num_users=300,
        num_source_items=100,
        num_target_items=50,
        num_groups=10,
        seq_len=10,
        num_eval_negatives=49,
    )
    pretrained = testing.pretrain_tiny_run(
        data_dir,
        str(root / "pretrain"),
        channels=16,
        epochs=3,
        learning_rate=1e-2,
    )
    return data_dir, pretrained, root


@pytest.mark.parametrize("method", METHODS)
def test_run_finetuning_end_to_end(method, pretrained_run):
    data_dir, pretrained, root = pretrained_run
    config = finetune.FinetuneConfig(
        data_dir=data_dir,
        pretrained=pretrained,
        method=method,
        training=trainer.TrainingConfig(
            batch_size=64,
            learning_rate=1e-2,
            epochs=3,
            log_every_steps=0,
            jit_compile=False,
        ),
    )
    run_dir = str(root / method)
    results = finetune.run_finetuning(config, run_dir)
    # Random ranking of 50 candidates: HR@5 = 0.1.
    assert results["test"]["sampled/hr@5"] > 0.1
    model = run_dir_lib.load_model(run_dir)
    expected_class = {
        "peterrec": PeterRecRecommender,
        "mtl": MTLRecommender,
        "conet": CoNetRecommender,
        "ddtcdr": DDTCDRRecommender,
    }.get(method, FinetuneBaseline)
    assert type(model) is expected_class
    task = finetune.FinetuneTask(
        config, model, dataset_info.DatasetInfo.load(data_dir)
    )
    np.testing.assert_allclose(
        task.evaluate("test")["sampled/mrr@5"],
        results["test"]["sampled/mrr@5"],
        rtol=1e-6,
    )


def test_mtl_loss_is_the_ranking_loss_plus_the_weighted_source_loss():
    batch = _batch()
    losses = {}
    for weight in (0.0, 2.5):
        keras.utils.set_random_seed(3)
        model = finetune.model_for_method(
            _config("mtl", mtl_source_weight=weight),
            _pretrained_backbone(),
            T,
            seq_len=L,
        )
        loss, logs = model.compute_loss_and_logs(batch, training=False)
        source = model.source_model.compute_loss(
            batch[dataset_info.SOURCE], training=False
        )
        np.testing.assert_allclose(logs["source_loss"], source, rtol=1e-6)
        np.testing.assert_allclose(
            loss, logs["ranking_loss"] + weight * source, rtol=1e-6
        )
        losses[weight] = (float(loss), float(logs["ranking_loss"]))
    # Same seed, same model: only the source term differs.
    assert losses[0.0][1] == pytest.approx(losses[2.5][1])
    assert losses[2.5][0] > losses[0.0][0]
    # The source head shares the (re-initialised) backbone object.
    assert model.source_model.backbone is model.backbone
