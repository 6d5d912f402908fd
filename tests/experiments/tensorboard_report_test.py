"""TensorBoard summaries: test scalars per seed, mean curves, the table."""

import glob
import os

import tensorflow as tf

from uaf_tf.experiments import report
from uaf_tf.experiments import tensorboard_report


def _events(directory):
    values = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                values.setdefault(value.tag, []).append((event.step, tensor))
    return values


def _run(seed, mrr):
    return report.Run(
        "gumbel",
        1.0,
        seed,
        "unused",
        {
            "test": {"sampled/mrr@5": mrr, "num_examples": 10},
            "history": [{"epoch": 1, "valid": {"sampled/mrr@5": mrr / 2}}],
        },
    )


def test_write(tmp_path):
    runs = [_run(0, 0.25), _run(2, 0.5)]
    log_dir = tensorboard_report.write(str(tmp_path), runs, [1.0], "| t |")
    # Rewriting replaces the directory instead of appending duplicates.
    log_dir = tensorboard_report.write(str(tmp_path), runs, [1.0], "| t |")

    gumbel = _events(os.path.join(log_dir, "gumbel"))
    assert [
        (step, float(v)) for step, v in gumbel["test_frac1.0/sampled/mrr@5"]
    ] == [(0, 0.25), (2, 0.5)]
    assert "test_frac1.0/num_examples" not in gumbel
    # Epoch 1 of the mean curve: (0.125 + 0.25) / 2.
    ((step, value),) = gumbel["valid_frac1.0/sampled/mrr@5"]
    assert (step, float(value)) == (1, 0.1875)
    ((_, text),) = _events(os.path.join(log_dir, "report"))["results"]
    assert text.item().decode() == "| t |"
