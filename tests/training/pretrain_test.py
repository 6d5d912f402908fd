"""PretrainTask and run-directory helpers on planted data."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import pretrain
from uaf_tf.training import trainer

V, L = 101, 12


def _task(valid, learning_rate=3e-3, eval_chunk_size=65536):
    keras.utils.set_random_seed(0)
    model = SequencePretrainer(
        NextItNetBackbone(num_items=V, channels=16, dilations=(1, 2)),
        num_items=V,
    )
    model.build((None, L))
    train = testing.planted_sequences(512, L, V, min_length=4, seed=0)
    return pretrain.PretrainTask(
        model,
        lambda epoch: testing.sequence_dataset(train, 32, shuffle_seed=epoch),
        lambda split: testing.sequence_dataset(valid, 50),
        learning_rate=learning_rate,
        eval_chunk_size=eval_chunk_size,
    )


def test_short_pretraining_learns_the_planted_transitions(tmp_path):
    valid = testing.planted_sequences(150, L, V, min_length=4, seed=1)
    task = _task(valid)
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
    # Random scores put the positive in the top 5 of V - 1 = 100 candidate
    # items (padding excluded) with probability 5 / 100.
    random_hr5 = 5 / (V - 1)
    assert results["valid"]["num_examples"] == 150  # remainder batch kept
    assert results["valid"]["full/hr@5"] >= 3 * random_hr5
    assert results["valid"]["full/mrr@5"] > before["full/mrr@5"]
    assert results["valid"]["loss"] < before["loss"]


def test_evaluate_ranks_the_last_item_among_all_items():
    # With the head's bias favouring exactly the true last items and zero
    # kernel, the ranking is known in closed form.
    valid = np.array([[0, 3, 7], [5, 6, 9], [0, 0, 2]], "int32")
    task = _task(valid)
    task.model.output_kernel.assign(np.zeros([V, 16], "float32"))
    bias = np.zeros([V], "float32")
    bias[7], bias[9], bias[2] = 3.0, 2.0, 1.0  # ranks 0, 1, 2
    task.model.output_bias.assign(bias)
    results = task.evaluate("valid")
    assert results["num_examples"] == 3
    assert results["full/hr@5"] == pytest.approx(1.0)
    assert results["full/mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert results["full/ndcg@5"] == pytest.approx(
        (1 + 1 / np.log2(3) + 1 / np.log2(4)) / 3
    )


def test_validation_ranks_do_not_depend_on_the_item_chunk_size():
    """V = 101 items scored in chunks of 8 (13 windows, the last one
    overlapping) give the same ranking metrics, to the bit, as one chunk,
    and the same loss up to rounding; the remainder batch of 1 row
    (151 = 3 x 50 + 1) is ranked too."""
    valid = testing.planted_sequences(151, L, V, min_length=4, seed=1)
    one_chunk = _task(valid).evaluate("valid")
    chunked = _task(valid, eval_chunk_size=8).evaluate("valid")
    # The loss's log-sum-exp is summed in another order: float rounding.
    assert chunked.pop("loss") == pytest.approx(one_chunk.pop("loss"), 1e-6)
    assert chunked == one_chunk
    assert one_chunk["num_examples"] == 151


def test_config_maps_to_trainer_config():
    config = pretrain.PretrainConfig(
        data_dir="d",
        training=trainer.TrainingConfig(epochs=4, jit_compile=False),
    )
    trainer_config = config.trainer_config()
    assert trainer_config.selection_metric == "loss"
    assert trainer_config.selection_mode == "min"
    by_rank = pretrain.PretrainConfig(
        data_dir="d", selection_metric="full/mrr@5"
    ).trainer_config()
    assert by_rank.selection_mode == "max"
    assert trainer_config.epochs == 4 and trainer_config.jit_compile is False
    assert config.dilations == (1, 4, 1, 4, 1, 4, 1, 4)
    assert config.trainer_config().max_checkpoints == 3
    assert (
        config.channels,
        config.training.learning_rate,
        config.training.batch_size,
        config.training.eval_batch_size,
    ) == (128, 1e-4, 256, 256)


def test_run_dir_helpers(tmp_path):
    data_dir, run_dir = tmp_path / "data", str(tmp_path / "run")
    os.makedirs(data_dir)
    (data_dir / "source_vocab.txt").write_text("a\nb\n")
    (data_dir / "dataset.json").write_text("{}")
    copied = run_dir_lib.copy_vocabularies(str(data_dir), run_dir)
    assert copied == ["source_vocab.txt", "dataset.json"]  # no target vocab
    with open(os.path.join(run_dir, "source_vocab.txt")) as f:
        assert f.read() == "a\nb\n"
    run_dir_lib.write_config(run_dir, {"b": 1, "a": [1, 2]})
    assert run_dir_lib.read_config(run_dir) == {"a": [1, 2], "b": 1}
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["b"] == 1


# === model.fit trains the same objective ===


def test_fit_runs_the_custom_trainers_step():
    """Keras `fit` and `PretrainTask.train_step` share `compute_loss`: from
    the same weights on the same batches both give the same losses and the
    same updated weights."""
    valid = testing.planted_sequences(10, L, V, seed=1)
    batches = testing.sequence_dataset(
        testing.planted_sequences(96, L, V, min_length=4, seed=0), 32
    )
    task = _task(valid, learning_rate=1e-2)
    step = tf.function(task.train_step)
    trainer_losses = [float(step(batch)["loss"]) for batch in batches]

    model = _task(valid).model  # The same initial weights (seed 0).
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    history = model.fit(batches, epochs=1, verbose=0)
    # `fit` logs the example-weighted epoch mean, like the trainer.
    np.testing.assert_allclose(
        history.history["loss"][0], np.mean(trainer_losses), rtol=1e-6
    )
    for a, b in zip(task.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fit_without_build_and_evaluate():
    model = SequencePretrainer(
        NextItNetBackbone(num_items=V, channels=8, dilations=(1,)),
        num_items=V,
    )
    data = testing.sequence_dataset(
        testing.planted_sequences(64, L, V, min_length=4, seed=0), 32
    )
    model.compile(optimizer="adam")
    model.fit(data, epochs=1, verbose=0)
    assert model.built
    loss = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    expected = np.mean(
        [float(model.compute_loss(b, training=False)) for b in data]
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
