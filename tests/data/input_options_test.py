"""Every input pipeline ends with the autotune optimiser off."""

import pytest
import tensorflow as tf

from uaf_tf import testing
from uaf_tf.data import input_options
from uaf_tf.data import pipelines
from uaf_tf.data import profiles
from uaf_tf.data import synthetic_stream
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import pretrain
from uaf_tf.training import trainer

NUM_SOURCE_ITEMS = 40


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("options") / "data")
    testing.build_tiny_dataset_dir(
        out, num_users=40, num_source_items=NUM_SOURCE_ITEMS, num_groups=4
    )
    testing.write_planted_profiles(out, NUM_SOURCE_ITEMS)
    return out


def _datasets(data_dir):
    profile_data = profiles.load_profile_data(data_dir, "gender")
    return {
        "pretrain": pipelines.pretrain_dataset(
            data_dir, "train", 8, shuffle=True, seed=0
        ),
        "finetune_train": pipelines.finetune_train_dataset(
            data_dir, 8, seed=0, num_reward_negatives=2
        ),
        "eval": pipelines.eval_dataset(data_dir, "valid", 8),
        "profile": profiles.profile_dataset(profile_data, "train", 8),
        "synthetic_stream": synthetic_stream.pretrain_stream(20, 10, 6, 8),
    }


def test_every_pipeline_switches_the_optimiser_off(data_dir):
    datasets = _datasets(data_dir)
    assert {
        name: d.options().autotune.enabled for name, d in datasets.items()
    } == dict.fromkeys(datasets, False)
    # Transformations after the pipeline keep it, as the fine-tuning task's
    # feature selection does.
    mapped = datasets["finetune_train"].map(lambda b: b["source"])
    assert mapped.options().autotune.enabled is False
    # And the pipelines still produce batches with it off.
    assert next(iter(mapped)).shape[0] == 8


def test_own_options_override_or_are_kept():
    on = tf.data.Options()
    on.autotune.enabled = True
    dataset = tf.data.Dataset.range(3)
    overridden = input_options.with_input_options(dataset).with_options(on)
    assert overridden.options().autotune.enabled is True
    defaulted = input_options.with_default_input_options
    assert defaulted(dataset).options().autotune.enabled is False
    assert defaulted(dataset.with_options(on)).options().autotune.enabled


def test_the_training_loop_iterates_a_tasks_dataset_with_the_options(
    tmp_path, monkeypatch
):
    given, iterated = [], []
    original = input_options.with_default_input_options

    def spy(dataset):
        given.append(dataset.options().autotune.enabled)
        iterated.append(original(dataset).options().autotune.enabled)
        return original(dataset)

    monkeypatch.setattr(input_options, "with_default_input_options", spy)
    vocab, length = 21, 6
    sequences = testing.planted_sequences(32, length, vocab, seed=0)
    backbone = NextItNetBackbone(num_items=vocab, channels=4, dilations=(1,))
    model = SequencePretrainer(backbone, num_items=vocab)
    model.build((None, length))
    task = pretrain.PretrainTask(
        model,
        lambda epoch: testing.sequence_dataset(sequences, 16),
        lambda split: testing.sequence_dataset(sequences, 16),
    )
    config = trainer.TrainerConfig(
        epochs=2, selection_metric="full/mrr@5", jit_compile=False
    )
    trainer.fit(task, str(tmp_path / "run"), config)
    # Each epoch's training and validation data: the task's datasets left
    # it unset, the ones iterated have it.
    assert given == [None] * 4
    assert iterated == [False] * 4
