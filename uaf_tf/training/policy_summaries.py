"""TensorBoard views of the learned fine-tuning policies (paper Fig. 3-5).

Tags of split `<split>` (`valid` after every epoch, `test` once with the
best weights), all under `<split>/policy/`:

- `block_<l>`, `mean_finetuned_blocks`, `distinct_policies`, ... (scalars):
  the values of `policy_statistics`, written once each, by the trainer
  (`valid/*` of every evaluation) and `summaries.write_final_summaries`
  (`test/*`), never here;
- `y_axis_0`, `y_axis_1` (scalars, constant 0 and 1): they pin the y-axis of
  the custom-scalars chart of all blocks (`write_layout`) to [0, 1], which
  a layout cannot set itself;
- `finetuned_blocks` (histogram): number of fine-tuned blocks per user;
- `distribution` (text): users per distinct policy bit-string, "k of 2^N";
- `utilisation_heatmap` (image): epochs x blocks, the fraction of users
  that fine-tune each block, with labelled axes, colour bar and values (the
  paper's Fig. 3);
- `users_by_length`, `users_by_policy` (images, `per_user_images=True`):
  users x blocks, each user's policy, users sorted by source history
  length or grouped by policy (Fig. 4);
- `sample_users` (text): the policies of users with the shortest, a middle
  and the longest distinct history lengths.

Policies are counted once per user (a user's policy depends on their source
sequence only; instances of one user share it). Soft gates count as
fine-tuned when > 0.5 for the histogram, bits and distribution.

Images are drawn with matplotlib (the `plots` extra), imported when first
needed; without it they are skipped with one warning. Text and histograms
use core TF only (`tf.summary.write` plus each plugin's metadata), see
`uaf_tf.training.summaries`.
"""

import csv

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from uaf_tf.training import summaries

POLICY_CSV_FILE = "test_policies.csv"
# Rows of the `distribution` table; the rest are summed into one row.
DISTRIBUTION_ROWS = 20
# Values are printed in heatmap cells up to this many cells.
MAX_ANNOTATED_CELLS = 600
# Users drawn as their own rows; above, means of 1000 bins of users.
MAX_USER_ROWS = 1000
COLORMAP = "viridis"  # Blue (0) through green to yellow (1), as Fig. 3.
_DPI = 100
_matplotlib_warned = False


# === Per-user statistics ===


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


def policy_bits(policy) -> str:
    """`"0110"` (first block first): the policy thresholded at 0.5."""
    return "".join("1" if v > 0.5 else "0" for v in np.asarray(policy))


def policy_string(policy) -> str:
    """`"01101000"` (first block first) for a hard policy, gate values else."""
    policy = np.asarray(policy, np.float64)
    if np.all((policy == 0.0) | (policy == 1.0)):
        return policy_bits(policy)
    return " ".join(f"{v:.2f}" for v in policy)


def policy_distribution(policies) -> list[tuple[str, int]]:
    """`[(bits, users), ...]` of per-user `policies [U, N]`, most users first
    (ties: bit-string order)."""
    bits = [policy_bits(p) for p in np.asarray(policies)]
    names, counts = np.unique(np.asarray(bits, dtype=str), return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
    return [(str(names[i]), int(counts[i])) for i in order]


def distribution_table(policies, max_rows: int = DISTRIBUTION_ROWS) -> str:
    """Markdown: a "k of 2^N" line and users per policy (most first)."""
    policies = np.asarray(policies)
    num_users, num_blocks = policies.shape
    distribution = policy_distribution(policies)
    lines = [
        f"{len(distribution)} distinct policies of 2^{num_blocks} = "
        f"{2**num_blocks} possible, over {num_users} users.",
        "",
        "| policy (first block first) | fine-tuned | users | share |",
        "|---|---|---|---|",
    ]
    for bits, count in distribution[:max_rows]:
        lines.append(
            f"| `{bits}` | {bits.count('1')} | {count} "
            f"| {count / num_users:.1%} |"
        )
    rest = distribution[max_rows:]
    if rest:
        count = sum(c for _, c in rest)
        lines.append(
            f"| {len(rest)} other policies | | {count} "
            f"| {count / num_users:.1%} |"
        )
    return "\n".join(lines)


def _decode(user) -> str:
    return user.decode() if isinstance(user, bytes) else str(user)


def sample_users_table(users, lengths, policies) -> str:
    """Markdown table of the policies of users of three history lengths.

    The lengths are the shortest, the middle and the longest of the
    *distinct* lengths (histories are cut at L, so many users share the
    longest), one user each (the first in user order); fewer rows when
    there are fewer distinct lengths.
    """
    users, lengths, policies = unique_users(users, lengths, policies)
    lines = [
        "| history | user | length | policy (first block first) | fine-tuned |",
        "|---|---|---|---|---|",
    ]
    if not len(users):
        return "\n".join(lines)
    distinct = np.unique(lengths)
    picks = dict.fromkeys(  # Ordered, without repeats.
        int(distinct[round(q * (len(distinct) - 1))]) for q in (0, 0.5, 1)
    )
    names = {1: ("all",), 2: ("short", "long")}.get(
        len(picks), ("short", "medium", "long")
    )
    for name, length in zip(names, picks, strict=True):
        i = int(np.flatnonzero(lengths == length)[0])
        lines.append(
            f"| {name} | {_decode(users[i])} | {length} | "
            f"`{policy_string(policies[i])}` | "
            f"{int((np.asarray(policies[i]) > 0.5).sum())} |"
        )
    return "\n".join(lines)


def write_policy_csv(path: str, users, lengths, policies) -> str:
    """Writes one row per user: their policy, joinable with user data.

    Columns: `user_id` (the raw id of the data files), `history_length`
    (non-padding source items the policy saw, after the cut at L),
    `policy` (bits, first block first, thresholded at 0.5), `finetuned_blocks`
    (ones in `policy`) and `block_0` ... `block_<N-1>` (the policy values:
    0/1, or UAF-Soft's gates). Rows sorted by user id. Read `policy` as a
    string (`pandas.read_csv(..., dtype={"policy": str})`), or its leading
    zeros are lost.

    Args:
        path: output file.
        users: `[I]` user ids of the instances (bytes or str).
        lengths: int `[I]`, source history lengths.
        policies: float `[I, N]`.

    Returns:
        `path`.
    """
    users, lengths, policies = unique_users(users, lengths, policies)
    policies = np.asarray(policies, np.float64)
    names = [_decode(u) for u in users]
    order = sorted(range(len(names)), key=lambda i: names[i])
    num_blocks = policies.shape[1] if policies.ndim == 2 else 0
    with tf.io.gfile.GFile(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(
            [
                "user_id",
                "history_length",
                "policy",
                "finetuned_blocks",
                *(f"block_{b}" for b in range(num_blocks)),
            ]
        )
        for i in order:
            bits = policy_bits(policies[i])
            writer.writerow(
                [
                    names[i],
                    int(lengths[i]),
                    bits,
                    bits.count("1"),
                    *(f"{v:g}" for v in policies[i]),
                ]
            )
    return path


# === Images (matplotlib) ===


def _matplotlib():
    """`(Figure, FigureCanvasAgg)`, or None (warned once) without matplotlib.

    The object-oriented API only: no pyplot, so no global figure state and
    no interactive backend.
    """
    global _matplotlib_warned
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        if not _matplotlib_warned:
            logging.warning(
                "matplotlib is not installed: TensorBoard policy images are "
                "skipped (pip install 'uaf-tf[plots]')."
            )
            _matplotlib_warned = True
        return None
    return Figure, FigureCanvasAgg


def heatmap_figure(
    values,
    *,
    title: str,
    ylabel: str,
    row_labels=None,
    colorbar_label: str = "fraction of users fine-tuning the block",
    annotate: bool | None = None,
    height: float | None = None,
    num_rows: int | None = None,
):
    """A matplotlib `Figure` of `values [R, N]` in [0, 1], rows x blocks.

    Cell (r, l) has the colour of `values[r, l]` on a fixed 0-1 viridis
    scale (blue 0 ... yellow 1, the colour bar), and its value printed in it
    (`annotate`; default: at most `MAX_ANNOTATED_CELLS` cells). The x-axis
    is the residual block (0 = nearest the input), the y-axis `ylabel` with
    `row_labels` (default: row numbers from 1).

    `num_rows` (default R) stretches the R rows over that many row
    positions, for rows that are means of bins of rows.

    Returns:
        `(figure, axes)`, or None without matplotlib.
    """
    classes = _matplotlib()
    if classes is None:
        return None
    figure_cls, _ = classes
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(f"`values` must be [R, N]. Received: {values.shape}")
    rows, num_blocks = values.shape
    if annotate is None:
        annotate = values.size <= MAX_ANNOTATED_CELLS
    width = 2.6 + 0.65 * num_blocks
    if height is None:
        height = min(1.6 + 0.32 * rows, 14.0)
    figure = figure_cls(figsize=(max(width, 4.0), height), dpi=_DPI)
    axes = figure.add_subplot()
    image = axes.imshow(
        values,
        cmap=COLORMAP,
        vmin=0.0,
        vmax=1.0,
        aspect="auto",
        interpolation="nearest",
        extent=(-0.5, num_blocks - 0.5, (num_rows or rows) - 0.5, -0.5),
    )
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("residual block")
    axes.set_ylabel(ylabel)
    axes.set_xticks(range(num_blocks))
    if row_labels is not None:
        axes.set_yticks(range(rows), [str(label) for label in row_labels])
    elif rows <= 40:
        axes.set_yticks(range(rows), [str(r + 1) for r in range(rows)])
    if annotate:
        for r in range(rows):
            for block in range(num_blocks):
                value = values[r, block]
                axes.text(
                    block,
                    r,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if value > 0.5 else "white",
                )
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label(colorbar_label)
    return figure, axes


def figure_pixels(figure) -> np.ndarray:
    """uint8 RGB `[H, W, 3]` of a matplotlib figure (Agg rendering)."""
    _, canvas_cls = _matplotlib()
    canvas = canvas_cls(figure)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def utilisation_heatmap(rows, row_labels=None, title: str = ""):
    """Image `[H, W, 3]` of per-epoch utilisation `rows [E, N]`, or None."""
    drawn = heatmap_figure(
        rows,
        title=title or "Fraction of users fine-tuning each block",
        ylabel="epoch",
        row_labels=row_labels,
    )
    return None if drawn is None else figure_pixels(drawn[0])


def users_image(lengths, policies, order: str, title: str = ""):
    """Image of per-user `policies [U, N]`, users as rows, or None.

    Args:
        lengths: int `[U]`, source history lengths.
        policies: float `[U, N]`.
        order: `"length"` (shortest history on top; ties by policy) or
            `"policy"` (users of one policy together, most common policy
            on top; within it by length).
    """
    lengths = np.asarray(lengths)
    policies = np.asarray(policies, np.float64)
    bits = [policy_bits(p) for p in policies]
    if order == "length":
        index = sorted(range(len(bits)), key=lambda i: (lengths[i], bits[i]))
        ylabel = "users, by source history length"
    elif order == "policy":
        rank = {b: r for r, (b, _) in enumerate(policy_distribution(policies))}
        index = sorted(
            range(len(bits)), key=lambda i: (rank[bits[i]], lengths[i])
        )
        ylabel = "users, grouped by policy"
    else:
        raise ValueError(
            f"`order` must be 'length' or 'policy'. Received: order={order!r}"
        )
    values = policies[index]
    labels, ticks = _user_ticks(
        [lengths[i] for i in index], [bits[i] for i in index], order
    )
    num_users = len(index)
    if num_users > MAX_USER_ROWS:
        # Means of consecutive users: every user counts, none is dropped
        # by subsampling rows into too few pixels.
        values = np.stack(
            [
                part.mean(axis=0)
                for part in np.array_split(values, MAX_USER_ROWS)
            ]
        )
    # At least a pixel per user (12 for a readable few), 3-12 inches.
    pixels = num_users * (12 if num_users <= 40 else 1.5)
    drawn = heatmap_figure(
        values,
        title=title or f"Policy of each of {num_users} users",
        ylabel=ylabel,
        colorbar_label="fine-tuned (1) or frozen (0) block",
        annotate=values.size <= MAX_ANNOTATED_CELLS and num_users <= 40,
        height=1.6 + min(max(pixels / _DPI, 3.0), 12.0),
        num_rows=num_users,
    )
    if drawn is None:
        return None
    figure, axes = drawn
    axes.set_yticks(ticks, labels, fontsize=7)
    return figure_pixels(figure)


def _user_ticks(lengths, bits, order: str, max_ticks: int = 24):
    """Y tick labels and positions of a users image: at the middle of each
    run of one history length (`order="length"`, at most `max_ticks`, every
    k-th), or of each policy group, with its bits and size."""
    keys = lengths if order == "length" else bits
    groups = []  # (first, last, key) of runs of equal keys
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            groups.append((start, i - 1, keys[start]))
            start = i
    if order == "length":
        step = max(1, -(-len(groups) // max_ticks))
        groups = groups[::step]
        labels = [f"length {key}" for _, _, key in groups]
    else:  # The most common policies are first.
        groups = groups[:max_ticks]
        labels = [f"{key} ({last - first + 1})" for first, last, key in groups]
    return labels, [(first + last) / 2 for first, last, _ in groups]


# === The writer ===


class PolicySummaries:
    """Writes the policy views of one split per call; remembers past epochs.

    Call `write(...)` inside `writer.as_default(step=...)` (the trainer's
    `on_epoch_end` already is). The heatmap grows by one row per call.

    Args:
        num_blocks: int, N.

    Example:
    >>> import tempfile
    >>> writer = tf.summary.create_file_writer(tempfile.mkdtemp())
    >>> views = PolicySummaries(num_blocks=2)
    >>> users, lengths = [b"u1", b"u2", b"u3"], [3, 5, 8]
    >>> policies = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    >>> with writer.as_default(step=100):
    ...     stats = views.write("valid", users, lengths, policies, label=1)
    >>> stats["policy/block_0"], stats["policy/distinct_policies"]
    (0.666..., 3.0)
    """

    def __init__(self, num_blocks: int):
        self.num_blocks = num_blocks
        self.rows = {}  # split -> list of utilisation rows [N]
        self.labels = {}  # split -> list of row labels

    def write(
        self,
        split: str,
        users,
        lengths,
        policies,
        *,
        label=None,
        per_user_images: bool = False,
        step=None,
    ) -> dict:
        """Writes every view for `policies [I, N]` of instances `I`.

        Args:
            split: `"valid"`, `"test"`, ...
            users: `[I]` user ids (bytes or str) of the instances.
            lengths: int `[I]`, source history lengths (non-padding items).
            policies: float `[I, N]`, the policy used per instance.
            label: the heatmap row's label (e.g. the epoch; default: the
                row number from 1).
            per_user_images: also draw the users x blocks images.
            step: summary step; defaults to the writer's default step.

        Returns:
            The per-user statistics (`policy_statistics`).
        """
        users, lengths, policies = unique_users(users, lengths, policies)
        policies = np.asarray(policies, np.float64).reshape(-1, self.num_blocks)
        stats = policy_statistics(policies)
        row = [stats[f"policy/block_{b}"] for b in range(self.num_blocks)]
        rows = self.rows.setdefault(split, [])
        rows.append(row)
        labels = self.labels.setdefault(split, [])
        labels.append(len(rows) if label is None else label)
        prefix = f"{split}/policy"
        summaries.scalar(f"{prefix}/y_axis_0", 0.0, step=step)
        summaries.scalar(f"{prefix}/y_axis_1", 1.0, step=step)
        counts = (policies > 0.5).sum(axis=1)
        write_histogram(
            f"{prefix}/finetuned_blocks",
            np.bincount(counts, minlength=self.num_blocks + 1),
            step=step,
        )
        write_text(
            f"{prefix}/distribution", distribution_table(policies), step=step
        )
        write_text(
            f"{prefix}/sample_users",
            sample_users_table(users, lengths, policies),
            step=step,
        )
        heatmap = utilisation_heatmap(
            rows,
            labels,
            title=f"{split}: fraction of users fine-tuning each block",
        )
        if heatmap is None:  # No matplotlib: no image at all.
            return stats
        write_image(f"{prefix}/utilisation_heatmap", heatmap, step=step)
        if per_user_images and len(policies):
            for order in ("length", "policy"):
                image = users_image(
                    lengths,
                    policies,
                    order,
                    title=f"{split}: policy of each of {len(policies)} users",
                )
                write_image(f"{prefix}/users_by_{order}", image, step=step)
        return stats


# === Custom-scalars layout ===


def custom_scalars_layout():
    """The `layout_pb2.Layout` of the Custom Scalars dashboard.

    All blocks' validation utilisation on one chart, whose y-axis the
    constant `valid/policy/y_axis_{0,1}` series pin to [0, 1] (a layout has
    no axis range; the two lines are 1/(N + 2) of the points each, so
    TensorBoard's outlier clipping, which drops the top and bottom 5%,
    keeps them for N < 18 blocks). Also: fine-tuned blocks per user, and
    the validation ranking metrics at every cut-off on one chart.
    """
    from tensorboard.plugins.custom_scalar import layout_pb2

    def chart(title, *tags):
        return layout_pb2.Chart(
            title=title, multiline=layout_pb2.MultilineChartContent(tag=tags)
        )

    return layout_pb2.Layout(
        category=[
            layout_pb2.Category(
                title="policy (validation, per epoch)",
                chart=[
                    chart(
                        "fraction of users fine-tuning each block (0-1)",
                        r"^valid/policy/block_\d+$",
                        r"^valid/policy/y_axis_[01]$",
                    ),
                    chart(
                        "fine-tuned blocks per user: mean, min, max",
                        r"^valid/policy/(mean|min|max)_finetuned_blocks$",
                    ),
                    chart(
                        "distinct policies",
                        r"^valid/policy/distinct_policies$",
                    ),
                ],
            ),
            layout_pb2.Category(
                title="ranking (validation, per epoch)",
                chart=[
                    chart("sampled HR@K", r"^valid/sampled/hr@\d+$"),
                    chart("sampled MRR@K", r"^valid/sampled/mrr@\d+$"),
                    chart("full HR@K", r"^valid/full/hr@\d+$"),
                    chart("train loss", r"^train/(epoch_)?loss$"),
                ],
            ),
        ]
    )


def write_layout(step=None) -> bool:
    """Writes `custom_scalars_layout()` to the default writer, once per run.

    TensorBoard merges the layouts of all runs it shows, dropping repeated
    charts, so a sweep's runs share one dashboard.

    Returns False (with a warning) when the `tensorboard` package, which
    defines the layout proto, is not installed.
    """
    try:
        from tensorboard.plugins.custom_scalar import summary as layout_summary
    except ImportError:
        logging.warning(
            "tensorboard is not installed: no custom-scalars layout written."
        )
        return False
    proto = layout_summary.pb(custom_scalars_layout())
    return tf.summary.experimental.write_raw_pb(
        proto.SerializeToString(), step=step
    )


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
