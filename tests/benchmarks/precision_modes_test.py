"""precision_modes times every step in every mode in a round."""

from launch.benchmarks import finetune_throughput as ft
from launch.benchmarks import precision_modes
from launch.benchmarks import pretrain_throughput as pt


def test_every_step_in_every_mode():
    lines = []
    times = precision_modes.time_modes(
        rounds=1,
        steps=1,
        warmup=1,
        progress=lines.append,
        finetune_workload=ft.Workload(
            source_vocab=30,
            target_vocab=20,
            seq_len=5,
            batch_size=4,
            channels=8,
            dilations=(1, 2),
        ),
        pretrain_workload=pt.Workload(
            vocab=30, seq_len=5, batch_size=4, channels=8, dilations=(1, 2)
        ),
    )
    modes = [precision_modes.mode_name(*m) for m in precision_modes.MODES]
    assert set(times) == {"finetune_gumbel", "pretrain_full_softmax"}
    for by_mode in times.values():
        assert list(by_mode) == modes
        for values in by_mode.values():
            assert len(values) == 1 and values[0] > 0
    assert len(lines) == 2 * len(modes)
