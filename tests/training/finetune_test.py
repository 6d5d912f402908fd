"""Tests for UAF fine-tuning: train steps per method, gradients, end to end."""

import csv
import glob
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.data import dataset_info
from uaf_tf.experiments import instances as test_instances
from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import UAFRecommender
from uaf_tf.training import finetune
from uaf_tf.training import trainer

V, T, C, L, B = 50, 30, 8, 10, 32
METHODS = samplers.METHODS


def _task(method, **overrides):
    keras.utils.set_random_seed(0)
    backbone = NextItNetBackbone(V, C, (1, 2))
    backbone.build((None, L))
    config = finetune.FinetuneConfig(
        data_dir="unused",
        pretrained="unused",
        method=method,
        training=trainer.TrainingConfig(learning_rate=1e-2, seed=0),
        **overrides,
    )
    model = UAFRecommender.from_pretrained(
        backbone, T, seq_len=L, **config.model_kwargs()
    )
    return finetune.FinetuneTask(config, model, info=None)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    target = rng.integers(1, T, B)
    negative = (target + rng.integers(1, T - 1, B) - 1) % (T - 1) + 1
    assert (negative != target).all()
    source = rng.integers(0, V, [B, L])
    # UAF-RL's reward negatives, as `num_reward_negatives=99` adds them.
    reward_negatives = (
        target[:, None] + rng.integers(1, T - 1, [B, 99]) - 1
    ) % (T - 1) + 1
    assert (reward_negatives != target[:, None]).all()
    return {
        dataset_info.SOURCE: tf.constant(source, tf.int32),
        dataset_info.TARGET: tf.constant(target, tf.int32),
        dataset_info.NEGATIVE: tf.constant(negative, tf.int32),
        dataset_info.REWARD_NEGATIVES: tf.constant(reward_negatives, tf.int32),
    }


def _perturb_copies(model, seed=1):
    """At initialisation copy == frozen, so d(output)/d(policy) = 0; after
    some training they differ. Emulate that."""
    rng = np.random.default_rng(seed)
    for gated in model.gated_blocks:
        gated.finetuned.set_weights(
            [
                w + 0.1 * rng.standard_normal(w.shape)
                for w in gated.finetuned.get_weights()
            ]
        )


def _policy_gradients(task, batch, loss_key):
    variables = task.model.policy_network.trainable_variables
    with tf.GradientTape() as tape:
        _, logs = task.model.compute_loss_and_logs(batch)
    grads = tape.gradient(logs[loss_key], variables)
    return [
        0.0 if g is None else float(tf.reduce_max(tf.abs(g))) for g in grads
    ]


@pytest.mark.parametrize("method", METHODS)
def test_train_steps_leave_frozen_blocks_bit_identical(method):
    task = _task(method, rl_curriculum_epochs=0)
    model = task.model
    frozen = [w.numpy() for b in model.backbone.blocks for w in b.weights]
    copy_weights = [w for g in model.gated_blocks for w in g.finetuned.weights]
    copies = [w.numpy() for w in copy_weights]
    step = tf.function(task.train_step)
    for seed in range(3):
        logs = step(_batch(seed))
    assert np.isfinite(float(logs["loss"]))
    after = [w.numpy() for b in model.backbone.blocks for w in b.weights]
    for a, b in zip(frozen, after, strict=True):
        np.testing.assert_array_equal(a, b)
    moved = [
        np.abs(a - w.numpy()).max()
        for a, w in zip(copies, copy_weights, strict=True)
    ]
    assert max(moved) > 0  # some copy trained (all of them for soft)
    if method == "soft":
        assert min(moved) > 0


@pytest.mark.parametrize("method", ["gumbel", "soft"])
def test_ranking_loss_reaches_the_policy_network(method):
    task = _task(method)
    _perturb_copies(task.model)
    grads = _policy_gradients(task, _batch(), "ranking_loss")
    assert min(grads) > 0


def test_rl_policy_learns_from_the_policy_gradient_only():
    task = _task("rl", rl_curriculum_epochs=0)
    _perturb_copies(task.model)
    batch = _batch()
    # BPR on the sampled path: hard actions, no gradient to the policy.
    assert max(_policy_gradients(task, batch, "ranking_loss")) == 0.0
    # The self-critical term reaches every policy weight (the advantage is
    # non-zero for some example of the batch with this seed).
    grads = _policy_gradients(task, batch, "loss")
    assert min(grads) > 0


def _copy_gradients(task, batch):
    """Max |d loss / d w| over each gated block's fine-tuned copy `[N]`."""
    model = task.model
    copies = [g.finetuned.trainable_variables for g in model.gated_blocks]
    with tf.GradientTape() as tape:
        loss, logs = model.compute_loss_and_logs(batch)
    grads = tape.gradient(loss, copies)
    per_block = [
        max(
            0.0 if g is None else float(tf.reduce_max(tf.abs(g))) for g in block
        )
        for block in grads
    ]
    return per_block, logs


@pytest.mark.parametrize("actions", ["sampled", "greedy"])
def test_rl_curriculum_has_no_policy_gradient(actions):
    task = _task("rl", rl_curriculum_epochs=5, rl_curriculum_actions=actions)
    task.model.current_epoch.assign(4)
    batch = _batch()
    _, logs = task.model.compute_loss_and_logs(batch)
    assert float(logs["rl_on"]) == 0.0 and float(logs["policy_loss"]) == 0.0
    assert max(_policy_gradients(task, batch, "loss")) == 0.0
    task.model.current_epoch.assign(5)
    _, logs = task.model.compute_loss_and_logs(batch)
    assert float(logs["rl_on"]) == 1.0


def test_rl_curriculum_greedy_actions_leave_unchosen_copies_untrained():
    """`greedy` (the project's former behaviour): the forward pass uses the
    argmax policy, so a block no example picks gets no gradient. Glorot head
    (as before): the untrained policy is the same for most users."""
    task = _task(
        "rl",
        rl_curriculum_epochs=5,
        rl_curriculum_actions="greedy",
        policy_head_init="glorot",
    )
    task.model.current_epoch.assign(0)
    batch = _batch()
    greedy = task.model(batch[dataset_info.SOURCE])["policy"].numpy()
    per_block, logs = _copy_gradients(task, batch)
    np.testing.assert_allclose(
        float(logs["finetuned_fraction"]), greedy.mean(), rtol=1e-6
    )
    for block, grad in enumerate(per_block):
        # Exactly zero iff no example of the batch fine-tunes the block.
        assert (grad > 0) == bool(greedy[:, block].any()), (block, grad)
    assert min(per_block) == 0.0  # this seed leaves a block unchosen


def test_rl_curriculum_sampled_actions_train_every_copy():
    """Default (original): sampled hard actions during the curriculum, so
    every fine-tuned copy is used by some examples and gets a gradient."""
    task = _task("rl", rl_curriculum_epochs=5)
    assert task.model.sampler.curriculum_actions == "sampled"
    task.model.current_epoch.assign(0)
    per_block, logs = _copy_gradients(task, _batch())
    assert min(per_block) > 0
    # Near-uniform start: about half the (example, block) pairs fine-tune.
    assert 0.3 < float(logs["finetuned_fraction"]) < 0.7


def test_rl_cost_weight_reaches_the_reward():
    """Same seeds, so the same sampled actions and hits; only the reward's
    block term differs. w = 0: a hit pays 1 and a miss -1, so the mean
    reward is 2 * hit_rate - 1, a multiple of 2 / B; w = 1 (Eq. 11) pays
    `1 - f^2 <= 1` per hit, so its mean reward is lower."""
    batch = _batch()
    logs = {}
    for weight in (0.0, 1.0):
        task = _task("rl", rl_curriculum_epochs=0, rl_cost_weight=weight)
        assert task.model.sampler.cost_weight == weight
        _, logs[weight] = task.model.compute_loss_and_logs(batch)
    hits_times_two = (float(logs[0.0]["reward"]) + 1.0) * B
    assert abs(hits_times_two - round(hits_times_two / 2) * 2) < 1e-4
    # Strictly: this batch has hits with fine-tuned blocks.
    assert float(logs[1.0]["reward"]) < float(logs[0.0]["reward"])
    np.testing.assert_allclose(
        float(logs[1.0]["finetuned_fraction"]),
        float(logs[0.0]["finetuned_fraction"]),
    )


def test_rl_batches_need_reward_negatives():
    task = _task("rl", rl_curriculum_epochs=0)
    batch = _batch()
    del batch[dataset_info.REWARD_NEGATIVES]
    with pytest.raises(ValueError, match="num_reward_negatives"):
        task.model.compute_loss_and_logs(batch)


def test_rl_reward_ranks_the_batch_reward_negatives():
    """The reward reads the batch's negatives: all-padding negatives score
    like padding, so which negatives come in changes the reward."""
    task = _task("rl", rl_curriculum_epochs=0)
    _perturb_copies(task.model)
    batch = _batch()
    rewards = []
    for fill in (None, 0):
        if fill is not None:
            batch[dataset_info.REWARD_NEGATIVES] = tf.fill([B, 99], fill)
        task.model.sampler.seed_generator.state.assign([0, 0])
        rewards.append(
            float(task.model.compute_loss_and_logs(batch)[1]["reward"])
        )
    assert rewards[0] != rewards[1]


@pytest.mark.parametrize("method", ["gumbel", "rl"])
def test_train_step_compiles_with_xla(method):
    task = _task(method, rl_curriculum_epochs=0)
    step = tf.function(task.train_step, jit_compile=True)
    logs = step(_batch())
    assert np.isfinite(float(logs["loss"]))


# === model.fit trains the same objective ===


def _fit_model(method, **overrides):
    """The model of `_task`, compiled for `fit` like the task's optimizer."""
    model = _task(method, **overrides).model
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    return model


def test_fit_first_step_equals_the_custom_trainer_step():
    """UAF-Gumbel: `fit` and `FinetuneTask.train_step` run the same model
    objective. From the same weights and sampler seed, on the same batch,
    both give the same first-step loss, logs and updated weights."""
    batch = _batch()
    task = _task("gumbel")
    logs = tf.function(task.train_step)(batch)

    model = _fit_model("gumbel")
    history = model.fit(
        tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0
    )
    for name in ("loss", "ranking_loss", "finetuned_fraction"):
        np.testing.assert_allclose(
            history.history[name][0], float(logs[name]), rtol=1e-6
        )
    for a, b in zip(task.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["soft", "random", "rl"])
def test_fit_trains_every_method(method):
    model = _fit_model(method, rl_curriculum_epochs=0)
    before = [w.numpy() for w in model.target_embedding.weights]
    dataset = tf.data.Dataset.from_tensors(_batch()).repeat(2)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert (method == "rl") == ("policy_loss" in history.history)
    after = [w.numpy() for w in model.target_embedding.weights]
    assert np.abs(after[0] - before[0]).max() > 0


def test_fit_switches_the_rl_curriculum_on_at_its_epoch():
    model = _fit_model("rl", rl_curriculum_epochs=2)
    # With string user ids, as `pipelines.finetune_train_dataset` yields.
    batch = dict(_batch(), user=tf.constant(["u"] * B))
    history = model.fit(
        tf.data.Dataset.from_tensors(batch).repeat(2), epochs=4, verbose=0
    )
    assert history.history["rl_on"] == [0.0, 0.0, 1.0, 1.0]
    assert history.history["policy_loss"][:2] == [0.0, 0.0]
    assert int(model.current_epoch.numpy()) == 3


# === End to end on planted synthetic data ===


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A planted dataset (20 groups of 5 target items) + a short pretraining."""
    root = tmp_path_factory.mktemp("uaf")
    data_dir = testing.build_tiny_dataset_dir(
        str(root / "data"),
        num_users=400,
        num_source_items=200,
        num_target_items=100,
        num_groups=20,
        seq_len=12,
        num_eval_negatives=99,
    )
    pretrained = testing.pretrain_tiny_run(
        data_dir,
        str(root / "pretrain"),
        channels=16,
        dilations=(1, 4),
        epochs=6,
        learning_rate=1e-2,
    )
    return data_dir, pretrained, root


def test_training_positives_hold_the_whole_training_split(pretrained_run):
    data_dir = pretrained_run[0]
    info = dataset_info.DatasetInfo.load(data_dir)
    known = finetune.training_positives(data_dir)
    assert known.num_pairs == info.split_sizes["finetune/train"]
    # Every instance of the training split is one (user, target) pair.
    users = set()
    for batch in finetune.pipelines.finetune_train_dataset(
        data_dir, 512, seed=0
    ):
        users.update(batch[dataset_info.USER].numpy().tolist())
    assert known.num_users == len(users)


@pytest.mark.parametrize("method", METHODS)
def test_all_methods_beat_random_ranking(method, pretrained_run):
    data_dir, pretrained, root = pretrained_run
    run_dir = str(root / method)
    config = finetune.FinetuneConfig(
        data_dir=data_dir,
        pretrained=pretrained,
        method=method,
        rl_curriculum_epochs=2,
        training=trainer.TrainingConfig(
            batch_size=64,
            learning_rate=1e-2,
            epochs=5,
            # XLA compilation (several seconds) would dominate these tiny
            # runs; test_train_step_compiles_with_xla covers it.
            log_every_steps=0,
            jit_compile=False,
        ),
    )
    results = finetune.run_finetuning(config, run_dir)

    # Random ranking of 100 candidates: HR@5 = 0.05.
    assert results["test"]["sampled/hr@5"] > 3 * 0.05
    for split in ("valid", "test"):
        for key in (
            "sampled/mrr@5",
            "sampled/hr@5",
            "sampled/ndcg@20",
            "full/hr@20",
            "full_filtered/hr@20",
            "full_filtered/mrr@5",
            "policy/block_0",
            "policy/block_1",
            "policy/mean_finetuned_blocks",
            "policy/distinct_policies",
            "num_examples",
        ):
            assert key in results[split], (split, key)
    assert results["test"]["num_examples"] == 180  # 15% of 1200, none dropped
    for split in ("valid", "test"):
        # Filtering only removes competitors: ranks can only improve.
        for name in ("hr@5", "hr@20", "mrr@5", "ndcg@20"):
            assert (
                results[split][f"full_filtered/{name}"]
                >= results[split][f"full/{name}"]
            ), (split, name)
    utilisation = results["test"]["policy/block_0"]
    assert 0.0 <= utilisation <= 1.0

    # Per-instance test ranks, for t-tests paired over instances: one row
    # per test instance, and they average back to the reported metrics.
    ranks = test_instances.read_test_instances(run_dir)
    assert len(ranks["index"]) == 180
    assert len(set(ranks["index"].tolist())) == 180
    for key, values in (
        (
            "sampled/mrr@5",
            test_instances.reciprocal_rank_at(ranks["sampled_rank"], 5),
        ),
        ("sampled/hr@20", test_instances.hit_at(ranks["sampled_rank"], 20)),
        ("full/hr@20", test_instances.hit_at(ranks["full_rank"], 20)),
        (
            "full/mrr@5",
            test_instances.reciprocal_rank_at(ranks["full_rank"], 5),
        ),
    ):
        np.testing.assert_allclose(
            values.mean(), results["test"][key], rtol=1e-5, err_msg=key
        )
    with open(os.path.join(run_dir, "results.json")) as f:
        assert json.load(f)["best_epoch"] == results["best_epoch"]
    for name in (
        "config.json",
        "model.json",
        "best.weights.h5",
        "source_vocab.txt",
        "target_vocab.txt",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name

    # TensorBoard: learning curve and policy views of valid and test.
    tags, layouts = set(), 0
    for path in glob.glob(
        os.path.join(run_dir, "tb", "**", "events.*"), recursive=True
    ):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
            layouts += sum(
                v.tag == "custom_scalars__config__" for v in event.summary.value
            )
    assert layouts == 1  # The custom-scalars layout, once per run.
    for tag in (
        "valid/sampled/hr@5",
        "valid/policy/block_1",
        "valid/policy/utilisation_heatmap",
        "valid/policy/finetuned_blocks",
        "test/policy/sample_users",
        "test/policy/users_by_length",
        "custom_scalars__config__",
        "test/policy/block_0",  # tb/final: the final metrics
        "test/sampled/mrr@10",
    ):
        assert tag in tags, tag
    # Each policy value is written once, under its split.
    assert not [t for t in tags if t.startswith("policy/")]

    # One row per test user, the policies the test metrics used.
    with open(os.path.join(run_dir, "test_policies.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(set(ranks["user"]))
    for block in range(2):
        np.testing.assert_allclose(
            np.mean([float(r[f"block_{block}"]) for r in rows]),
            results["test"][f"policy/block_{block}"],
            err_msg=block,
        )
    assert all(
        int(r["finetuned_blocks"]) == r["policy"].count("1") for r in rows
    )

    # The saved model reproduces the evaluation deterministically.
    model = run_dir_lib.load_model(run_dir)
    task = finetune.FinetuneTask(
        config, model, dataset_info.DatasetInfo.load(data_dir)
    )
    first, second = task.evaluate("test"), task.evaluate("test")
    assert first == second
    np.testing.assert_allclose(
        first["sampled/mrr@5"], results["test"]["sampled/mrr@5"], rtol=1e-6
    )


def test_source_vocabulary_mismatch_is_a_clear_error(pretrained_run, tmp_path):
    data_dir, pretrained, _ = pretrained_run
    other = str(tmp_path / "other_pretrain")
    shutil.copytree(pretrained, other)
    vocab = os.path.join(other, "source_vocab.txt")
    with open(vocab) as f:
        lines = f.read().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    with open(vocab, "w") as f:
        f.write("\n".join(lines) + "\n")
    config = finetune.FinetuneConfig(data_dir=data_dir, pretrained=other)
    with pytest.raises(ValueError, match="vocabulary mismatch.*line 1"):
        finetune.run_finetuning(config, str(tmp_path / "run"))


def test_random_sampler_of_the_config_is_keyed_by_the_run_seed():
    config = finetune.FinetuneConfig(
        data_dir="unused",
        pretrained="unused",
        method="random",
        training=trainer.TrainingConfig(seed=4),
        random_mode="reseeded",
    )
    sampler = config.sampler()
    assert (sampler.mode, sampler.hash_key, sampler.seed) == ("reseeded", 4, 4)
    assert finetune.FinetuneConfig("d", "p", method="random").random_mode == (
        "fixed"
    )
    with pytest.raises(ValueError, match="random_mode"):
        finetune.FinetuneConfig("d", "p", random_mode="fresh")


def test_full_rankings_do_not_depend_on_the_item_chunk_size(pretrained_run):
    """T = 101 target ids scored in chunks of 8 (13 windows, the last
    overlapping) give bit-identical `full/` and `full_filtered/` metrics
    and per-instance ranks to one chunk; the target bias is randomised so
    that it takes part."""
    data_dir, pretrained, _ = pretrained_run
    info = dataset_info.DatasetInfo.load(data_dir)
    results, ranks = [], []
    for chunk_size in (65536, 8):
        config = finetune.FinetuneConfig(
            data_dir=data_dir, pretrained=pretrained, eval_chunk_size=chunk_size
        )
        keras.utils.set_random_seed(0)
        model = finetune.build_model(config, info)
        bias = model.target_bias.embeddings
        bias.assign(np.random.default_rng(0).normal(size=bias.shape))
        task = finetune.FinetuneTask(config, model, info)
        results.append(task.evaluate("test"))
        ranks.append(task.last_ranks["test"]["full_rank"])
    assert results[0] == results[1]
    np.testing.assert_array_equal(ranks[0], ranks[1])
    assert len(np.unique(ranks[0])) > 10  # Not a degenerate ranking.
