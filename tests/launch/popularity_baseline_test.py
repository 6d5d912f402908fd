"""The popularity baselines against hand-computed values."""

import json
import math

import pytest
from absl import flags
from absl.testing import flagsaver

from launch import popularity_baseline
from uaf_tf.data import dataset_info
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation.write_options import WriteOptions
from uaf_tf.experiments import popularity


def test_popularity_ranks_the_dominant_item_first(tmp_path):
    # 300 users; every user's targets are the shared item "hit" plus one
    # item of their own, so half of all instances have the single most
    # popular positive and rank it first; random ranking has HR@5 = 0.05.
    pretrain = tmp_path / "pretrain.csv"
    finetune = tmp_path / "finetune.csv"
    pretrain.write_text(
        "".join(f"s{u % 7},s{u % 5},s{u % 3}\n" for u in range(300))
    )
    finetune.write_text(
        "".join(f"s{u % 7},s{u % 5},s{u % 3},,hit,own{u}\n" for u in range(300))
    )
    data_dir = str(tmp_path / "data")
    original.build_from_original(data_dir, str(pretrain), str(finetune))

    results = popularity.finetune_popularity_results(data_dir, batch_size=64)

    for split in ("valid", "test"):
        split_results = results[split]
        assert split_results["num_examples"] > 0
        assert split_results["sampled/hr@5"] > 0.3
        assert split_results["full/hr@5"] > 0.3
        # Every non-"hit" positive was never a training positive: rank last.
        assert split_results["sampled/hr@5"] < 0.75


@pytest.fixture(scope="module")
def same_history_dataset(tmp_path_factory):
    # Every pretraining user has the source history a, a, a, b, so the
    # training counts are a: 3n, b: n for the n training users. Left-padded
    # to L = 6, a held-out sequence predicts the labels a, a, a, b (the
    # first a from a context of padding only).
    root = tmp_path_factory.mktemp("popularity")
    pretrain = root / "pretrain.csv"
    finetune = root / "finetune.csv"
    pretrain.write_text("a,a,a,b\n" * 200)
    finetune.write_text("".join(f"a,b,,t{u % 4}\n" for u in range(40)))
    data_dir = str(root / "data")
    original.build_from_original(
        data_dir,
        str(pretrain),
        str(finetune),
        WriteOptions(seq_len=6, num_eval_negatives=2),
    )
    return data_dir


def test_pretrain_popularity_matches_hand_computation(same_history_dataset):
    info = dataset_info.DatasetInfo.load(same_history_dataset)
    n = info.split_sizes["pretrain/train"]
    assert info.num_source_ids == 3  # padding, a, b
    # Add-one smoothing over the V - 1 = 2 real items.
    p_a = (3 * n + 1) / (4 * n + 2)
    p_b = (n + 1) / (4 * n + 2)
    expected_loss = -(3 * math.log(p_a) + math.log(p_b)) / 4

    results = popularity.pretrain_popularity_results(
        same_history_dataset, eval_batch_size=7
    )

    valid = results["valid"]
    assert valid["num_examples"] == info.split_sizes["pretrain/valid"]
    assert valid["num_positions"] == 4 * valid["num_examples"]
    assert valid["loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert valid["loss_per_position"] == pytest.approx(expected_loss, rel=1e-6)
    # The last item b is beaten by the more frequent a only: 0-based rank 1.
    assert valid["full/hr@5"] == 1.0
    assert valid["full/mrr@5"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "config",
    [
        {"training": {"eval_batch_size": 5}, "mask_padding": True},
        {"eval_batch_size": 5, "mask_padding": True},  # Before nesting.
    ],
)
def test_main_writes_output_and_reads_batch_size(
    same_history_dataset, tmp_path, config
):
    pretrained = tmp_path / "run"
    pretrained.mkdir()
    (pretrained / "config.json").write_text(json.dumps(config))
    output = tmp_path / "out" / "pretrain.json"
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(
        task="pretrain",
        data_dir=same_history_dataset,
        pretrained=str(pretrained),
        output=str(output),
    ):
        popularity_baseline.main(["popularity_baseline.py"])
    written = json.loads(output.read_text())
    assert written["task"] == "pretrain"
    assert written["eval_batch_size"] == 5
    assert set(written) == {"task", "data_dir", "valid", "eval_batch_size"}
