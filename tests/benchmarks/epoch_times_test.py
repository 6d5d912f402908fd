"""epoch_times.py trains both ways and reads each epoch's seconds."""

import os

from launch.benchmarks import epoch_times as et
from launch.benchmarks import finetune_throughput as ft


def test_both_ways_train_and_time_every_epoch(tmp_path):
    w = ft.Workload(steps=1, warmup=0, **ft.QUICK_SHAPES)
    data_dir = ft.build_pipeline_data(str(tmp_path / "data"), w, 24, 9)
    for autotune in (False, True):
        run_dir = os.path.join(tmp_path, f"run-{autotune}")
        seconds = et.epoch_seconds(data_dir, w, 2, autotune, run_dir)
        assert len(seconds) == 2 and all(s > 0 for s in seconds)


def test_the_on_side_turns_the_optimiser_on(tmp_path):
    w = ft.Workload(steps=1, warmup=0, **ft.QUICK_SHAPES)
    data_dir = ft.build_pipeline_data(str(tmp_path / "data"), w, 24, 9)

    class Task:
        def train_dataset(self, epoch):
            from uaf_tf.data import pipelines

            return pipelines.finetune_train_dataset(data_dir, 8, seed=epoch)

    assert Task().train_dataset(0).options().autotune.enabled is False
    on = et._AutotuneOn(Task()).train_dataset(0)
    assert on.options().autotune.enabled is True
