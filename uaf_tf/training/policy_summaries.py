"""TensorBoard views of the learned fine-tuning policies (paper Fig. 3-4).

Per split and epoch, under `policy/<split>/`:

- `block_<l>` (scalar): fraction of users whose policy used the fine-tuned
  copy of block l (the mean gate for UAF-Soft);
- `finetuned_blocks` (histogram): number of fine-tuned blocks per user;
- `distinct_policies` (scalar) and `distinct_policies_text` ("k of 2^N");
- `utilisation_heatmap` (image): rows = epochs so far, columns = residual
  blocks, colour = utilisation from blue (0) through green to yellow (1), the
  look of the paper's Fig. 3;
- `sample_users` (text, markdown): policies of users with short, medium and
  long source histories (paper Fig. 4).

Policies are counted once per user (a user's policy depends on their source
sequence only; instances of one user share it). Soft gates count as
fine-tuned when > 0.5 for the histogram, distinct count and bits.

Written with core TF only (`tf.summary.write` plus each TensorBoard plugin's
metadata): `tf.summary.image/text/histogram` raise unless the `tensorboard`
package is importable, and training should not depend on the viewer (which
uaf-tf installs, but a slim serving or training image may leave out); see
`uaf_tf.training.summaries`.
"""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from uaf_tf.training import summaries

# Anchor colours (RGB) of a viridis-like map: 0 -> blue ... 1 -> yellow.
_COLORMAP_ANCHORS = np.array(
    [
        [68, 1, 84],
        [59, 82, 139],
        [33, 145, 140],
        [94, 201, 98],
        [253, 231, 37],
    ],
    dtype=np.float64,
)
# History-length quantiles of the sample users: short, medium, long.
SAMPLE_QUANTILES = (0.1, 0.5, 0.9)


def colormap(values) -> np.ndarray:
    """Maps values in [0, 1] `[...]` to uint8 RGB `[..., 3]` (linear ramp)."""
    values = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    position = values * (len(_COLORMAP_ANCHORS) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(_COLORMAP_ANCHORS) - 1)
    weight = (position - low)[..., None]
    rgb = (1 - weight) * _COLORMAP_ANCHORS[low] + weight * (
        _COLORMAP_ANCHORS[high]
    )
    return np.round(rgb).astype(np.uint8)


def utilisation_heatmap(rows, cell_pixels: int = 16) -> np.ndarray:
    """Image of utilisation `rows [E, N]` as uint8 `[E * s, N * s, 3]`.

    Cell (e, l) is a `cell_pixels` square (nearest-neighbour upscaling) of
    colour `colormap(rows[e, l])`.
    """
    rows = np.asarray(rows, np.float64)
    if rows.ndim != 2:
        raise ValueError(f"`rows` must be [E, N]. Received: {rows.shape}")
    image = colormap(rows)  # [E, N, 3]
    image = np.repeat(image, cell_pixels, axis=0)
    return np.repeat(image, cell_pixels, axis=1)


def unique_users(users, *arrays):
    """First occurrence of each user: `(users, *arrays)` restricted to it."""
    users = np.asarray(users)
    _, first = np.unique(users, return_index=True)
    first = np.sort(first)
    return (users[first], *(np.asarray(a)[first] for a in arrays))


def policy_statistics(policies) -> dict:
    """Utilisation statistics of per-user policies `[U, N]` (python floats).

    Returns `policy/block_<l>` (mean of column l, l from 0),
    `policy/{mean,std,min,max}_finetuned_blocks` (of the per-user sum of
    policy values, i.e. the fine-tuned block count for hard policies; so
    mean = sum of the block utilisations) and `policy/distinct_policies`
    (distinct rows after thresholding at 0.5).
    """
    policies = np.asarray(policies, np.float64)
    num_blocks = policies.shape[1]
    stats = {
        f"policy/block_{block}": float(policies[:, block].mean())
        if len(policies)
        else float("nan")
        for block in range(num_blocks)
    }
    bits = policies > 0.5
    counts = policies.sum(axis=1)  # soft gates count fractionally
    if len(policies):
        stats["policy/mean_finetuned_blocks"] = float(counts.mean())
        stats["policy/std_finetuned_blocks"] = float(counts.std())
        stats["policy/min_finetuned_blocks"] = float(counts.min())
        stats["policy/max_finetuned_blocks"] = float(counts.max())
    stats["policy/distinct_policies"] = float(
        len(np.unique(bits, axis=0)) if len(policies) else 0
    )
    return stats


def policy_string(policy) -> str:
    """`"01101000"` (first block first) for a hard policy, gate values else."""
    policy = np.asarray(policy, np.float64)
    if np.all((policy == 0.0) | (policy == 1.0)):
        return "".join(str(int(v)) for v in policy)
    return " ".join(f"{v:.2f}" for v in policy)


def sample_users_table(users, lengths, policies) -> str:
    """Markdown table of a short-, medium- and long-history user's policy."""
    users, lengths, policies = unique_users(users, lengths, policies)
    lines = [
        "| history | user | length | policy (first block first) | fine-tuned |",
        "|---|---|---|---|---|",
    ]
    if not len(users):
        return "\n".join(lines)
    order = np.argsort(lengths, kind="stable")
    names = ("short", "medium", "long")
    for name, quantile in zip(names, SAMPLE_QUANTILES, strict=True):
        i = order[min(int(quantile * len(order)), len(order) - 1)]
        user = users[i].decode() if isinstance(users[i], bytes) else users[i]
        lines.append(
            f"| {name} | {user} | {int(lengths[i])} | "
            f"`{policy_string(policies[i])}` | "
            f"{int((np.asarray(policies[i]) > 0.5).sum())} |"
        )
    return "\n".join(lines)


class PolicySummaries:
    """Writes the policy views of one split per call; remembers past epochs.

    Call `write(...)` inside `writer.as_default(step=...)` (the trainer's
    `on_epoch_end` already is). The heatmap grows by one row per call.

    Args:
        num_blocks: int, N.
        cell_pixels: int, heatmap cell size in pixels.

    Example:
    >>> import tempfile
    >>> writer = tf.summary.create_file_writer(tempfile.mkdtemp())
    >>> views = PolicySummaries(num_blocks=2)
    >>> users, lengths = [b"u1", b"u2", b"u3"], [3, 5, 8]
    >>> policies = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    >>> with writer.as_default(step=100):
    ...     stats = views.write("valid", users, lengths, policies)
    >>> stats["policy/block_0"], stats["policy/distinct_policies"]
    (0.666..., 3.0)
    """

    def __init__(self, num_blocks: int, cell_pixels: int = 16):
        self.num_blocks = num_blocks
        self.cell_pixels = cell_pixels
        self.rows = {}  # split -> list of utilisation rows [N]

    def write(self, split: str, users, lengths, policies, step=None) -> dict:
        """Writes every view for `policies [I, N]` of instances `I`.

        Args:
            split: `"valid"`, `"test"`, ...
            users: `[I]` user ids (bytes or str) of the instances.
            lengths: int `[I]`, source history lengths (non-padding items).
            policies: float `[I, N]`, the policy used per instance.
            step: summary step; defaults to the writer's default step.

        Returns:
            The per-user statistics (`policy_statistics`).
        """
        users, lengths, policies = unique_users(users, lengths, policies)
        policies = np.asarray(policies, np.float64).reshape(-1, self.num_blocks)
        stats = policy_statistics(policies)
        row = [stats[f"policy/block_{b}"] for b in range(self.num_blocks)]
        self.rows.setdefault(split, []).append(row)
        prefix = f"policy/{split}"
        for block in range(self.num_blocks):
            summaries.scalar(f"{prefix}/block_{block}", row[block], step=step)
        counts = (policies > 0.5).sum(axis=1)
        write_histogram(
            f"{prefix}/finetuned_blocks",
            np.bincount(counts, minlength=self.num_blocks + 1),
            step=step,
        )
        distinct = int(stats["policy/distinct_policies"])
        summaries.scalar(f"{prefix}/distinct_policies", distinct, step=step)
        write_text(
            f"{prefix}/distinct_policies_text",
            f"{distinct} distinct policies of 2^{self.num_blocks} = "
            f"{2**self.num_blocks} possible, over {len(policies)} users",
            step=step,
        )
        image = utilisation_heatmap(self.rows[split], self.cell_pixels)
        write_image(f"{prefix}/utilisation_heatmap", image, step=step)
        write_text(
            f"{prefix}/sample_users",
            sample_users_table(users, lengths, policies),
            step=step,
        )
        return stats


# === Core-TF writers of TensorBoard's text, image and histogram records ===


def _metadata(plugin: str, data_class) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=data_class,
    )


_TEXT_METADATA = _metadata("text", summary_pb2.DATA_CLASS_TENSOR)
_IMAGE_METADATA = _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
_HISTOGRAM_METADATA = _metadata("histograms", summary_pb2.DATA_CLASS_TENSOR)


def write_text(name: str, text: str, step=None) -> bool:
    """A (markdown) text summary, as `tf.summary.text` writes it."""
    return tf.summary.write(
        name, tf.constant(text), step=step, metadata=_TEXT_METADATA
    )


def write_image(name: str, image, step=None) -> bool:
    """One uint8 RGB image `[H, W, 3]`, as `tf.summary.image` writes it.

    The record is the string tensor `[width, height, png]`.
    """
    image = tf.convert_to_tensor(image, tf.uint8)
    height, width = image.shape[0], image.shape[1]
    record = tf.stack(
        [
            tf.constant(str(width)),
            tf.constant(str(height)),
            tf.io.encode_png(image),
        ]
    )
    return tf.summary.write(name, record, step=step, metadata=_IMAGE_METADATA)


def write_histogram(name: str, counts, step=None) -> bool:
    """Histogram of integer values with `counts[v]` occurrences of v.

    The record is TensorBoard's `[k, 3]` float64 `(left, right, count)`
    buckets, one bucket `[v - 0.5, v + 0.5)` per value.
    """
    counts = np.asarray(counts, np.float64)
    values = np.arange(len(counts), dtype=np.float64)
    buckets = np.stack([values - 0.5, values + 0.5, counts], axis=1)
    return tf.summary.write(
        name, tf.constant(buckets), step=step, metadata=_HISTOGRAM_METADATA
    )
