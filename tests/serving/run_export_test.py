"""run_export.read_run_dataset_info: a run's DatasetInfo, checked."""

import json
import os

import pytest

from uaf_tf.data import dataset_info
from uaf_tf.serving import run_export

SOURCE_VOCAB = ["s1", "s2", "s3"]
TARGET_VOCAB = ["t1", "t2"]


def _write_run(path, num_target_ids=len(TARGET_VOCAB) + 1):
    for name, vocab in (
        (dataset_info.SOURCE_VOCAB_FILE, SOURCE_VOCAB),
        (dataset_info.TARGET_VOCAB_FILE, TARGET_VOCAB),
    ):
        (path / name).write_text("".join(f"{v}\n" for v in vocab))
    info = dataset_info.DatasetInfo(
        seq_len=6,
        num_source_ids=len(SOURCE_VOCAB) + 1,
        num_target_ids=num_target_ids,
        num_eval_negatives=1,
        split_files={},
        split_sizes={},
        name="tiny",
    )
    info.save(str(path))
    return info


def test_reads_the_dataset_info_the_run_was_trained_on(tmp_path):
    info = _write_run(tmp_path)
    read = run_export.read_run_dataset_info(str(tmp_path))
    assert read == info
    assert (read.num_source_ids, read.num_target_ids) == (4, 3)


def test_vocabulary_that_disagrees_with_dataset_json_is_rejected(tmp_path):
    _write_run(tmp_path, num_target_ids=5)
    with pytest.raises(ValueError, match="2 ids but .* num_target_ids=5"):
        run_export.read_run_dataset_info(str(tmp_path))


def test_directory_without_dataset_json_names_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="--run_dir"):
        run_export.read_run_dataset_info(str(tmp_path))


def test_stale_format_version_is_rejected(tmp_path):
    _write_run(tmp_path)
    path = os.path.join(tmp_path, dataset_info.DATASET_INFO_FILE)
    with open(path) as f:
        raw = json.load(f)
    raw["format_version"] = dataset_info.FORMAT_VERSION + 1
    with open(path, "w") as f:
        json.dump(raw, f)
    with pytest.raises(ValueError, match="format_version"):
        run_export.read_run_dataset_info(str(tmp_path))
