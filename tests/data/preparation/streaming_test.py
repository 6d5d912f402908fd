"""Streaming: a 1M-line original-format file is read in bounded memory.

Python allocations are measured with tracemalloc (numpy allocations are
traced too). Loading the 1M pretraining lines as lists of id strings would
take several hundred MB; the streaming reader plus vocabulary counting
stays far below the 100 MB bound.
"""

import collections
import tracemalloc

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation import synthetic
from uaf_tf.data.preparation.write_options import WriteOptions

MB = 1 << 20


def _traced_peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_million_line_files_stream_in_bounded_memory(tmp_path):
    config = synthetic.PlantedConfig(
        num_users=1_000_000,
        num_source_items=20_000,
        num_target_items=1_000,
        seq_len=5,
        targets_per_user=1,
        num_groups=20,
        seed=0,
        min_seq_len=1,
    )
    pre, fine = str(tmp_path / "pre.csv"), str(tmp_path / "fine.csv")
    synthetic.write_original_files(pre, fine, config)
    expected_items = sum(
        int(c.lengths.sum()) for c in synthetic.iter_chunks(config)
    )

    def count_pretrain():
        counts, lines, longest = collections.Counter(), 0, 0
        for _, num_tokens, items in readers.read_pretrain_file(
            pre, bad_lines=bl.BadLines()
        ):
            counts.update(items)
            lines += 1
            longest = max(longest, num_tokens)
        return counts, lines, longest

    (counts, lines, longest), read_peak = _traced_peak(count_pretrain)

    def count_finetune():
        instances = 0
        for _, _, targets in readers.read_finetune_file(
            fine, bad_lines=bl.BadLines(), seq_len=5
        ):
            instances += len(targets)
        return instances

    # Untraced (tracemalloc slows this pass 15x); the full-build test below
    # bounds the memory of the fine-tuning pass.
    instances = count_finetune()
    # Shown with `pytest -s`; the README quotes it.
    print(f"read+count 1M lines: Python peak {read_peak / MB:.1f} MB")

    assert lines == 1_000_000 and instances == 1_000_000
    assert longest == 5
    assert sum(counts.values()) == expected_items
    assert len(counts) <= 20_000
    assert read_peak < 100 * MB, read_peak / MB


def test_synthetic_writer_holds_one_chunk(tmp_path):
    config = synthetic.PlantedConfig(
        num_users=50_000,
        num_source_items=5_000,
        num_target_items=500,
        seq_len=5,
        targets_per_user=2,
        num_groups=10,
        seed=1,
    )
    pre, fine = str(tmp_path / "pre.csv"), str(tmp_path / "fine.csv")
    _, peak = _traced_peak(
        lambda: synthetic.write_original_files(pre, fine, config)
    )
    with open(fine) as f:
        assert sum(1 for _ in f) == 50_000
    # Holding all lines would take about 11 MB (two 50,000-line files of
    # ~60-byte strings); one chunk of 4096 users takes a few MB at most.
    assert peak < 5 * MB, peak / MB


def test_full_build_memory_does_not_hold_the_data(tmp_path):
    config = synthetic.PlantedConfig(
        num_users=20_000,
        num_source_items=5_000,
        num_target_items=500,
        seq_len=5,
        targets_per_user=2,
        num_groups=10,
        seed=1,
        min_seq_len=1,
    )
    pre, fine = str(tmp_path / "pre.csv"), str(tmp_path / "fine.csv")
    synthetic.write_original_files(pre, fine, config)
    stats, peak = _traced_peak(
        lambda: original.build_from_original(
            str(tmp_path / "out"),
            pre,
            fine,
            WriteOptions(num_eval_negatives=99),
        )
    )
    assert stats["finetune_instances"] == 40_000
    assert sum(stats["split_sizes"].values()) == 60_000
    assert stats["split_sizes"]["finetune/test"] == 6_000
    # Vocabularies, per-instance split codes and one chunk of candidate
    # draws; the 40,000 instances with 99 candidates each (about 100 MB as
    # Python lists) are never all in memory.
    assert peak < 10 * MB, peak / MB
