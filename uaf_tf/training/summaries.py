"""TensorBoard scalars without the `tensorboard` package.

TF 2.21 no longer installs `tensorboard`, and `tf.summary.scalar` raises
`TBNotInstalledError` without it; uaf-tf installs it for viewing, but
training must not fail in an environment that left the viewer out.
`scalar` writes the same event record (`tf.summary.write` plus the "scalars"
plugin metadata) with core TF only, so TensorBoard shows it as a scalar and
tests read it back with
`tf.compat.v1.train.summary_iterator`.
"""

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)


def scalar(name: str, value, step=None) -> bool:
    """Writes scalar `value` as `name` to the default summary writer.

    Args:
        name: tag, e.g. `"train/loss"`.
        value: a Python number or scalar tensor (stored as float32).
        step: int64 step; `None` uses the default set by
            `writer.as_default(step=...)`.

    Returns:
        True if a default writer took the value (as `tf.summary.write`).
    """
    return tf.summary.write(
        name,
        tf.cast(value, tf.float32),
        step=step,
        metadata=_SCALAR_METADATA,
    )


def read_scalars(event_file_or_dir: str) -> dict:
    """`{tag: [(step, value), ...]}` from event file(s), for tests/reports."""
    if tf.io.gfile.isdir(event_file_or_dir):
        paths = sorted(
            tf.io.gfile.glob(f"{event_file_or_dir}/events.out.tfevents.*")
        )
    else:
        paths = [event_file_or_dir]
    scalars = {}
    for path in paths:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = tf.make_ndarray(value.tensor).item()
                scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars
