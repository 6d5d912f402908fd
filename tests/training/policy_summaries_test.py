"""Tests for the TensorBoard policy views: tags, values, image pixels, CSV."""

import csv
import glob
import os
import sys

import matplotlib
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.training import policy_summaries


def _read_events(log_dir):
    """{tag: [(step, summary value)]} of every event file under log_dir."""
    events = {}
    pattern = os.path.join(log_dir, "**", "events.*")
    for path in glob.glob(pattern, recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                events.setdefault(value.tag, []).append((event.step, value))
    return events


def _scalar(value):
    return float(tf.make_ndarray(value.tensor))


def _text(value):
    return tf.make_ndarray(value.tensor).item().decode()


def _viridis(value):
    rgba = matplotlib.colormaps["viridis"](value)
    return np.round(np.array(rgba[:3]) * 255)


def _cell_pixel(figure, axes, row, block, height):
    """Pixel (y, x) inside cell (row, block), off its centre (the value)."""
    x, y = axes.transData.transform((block - 0.35, row - 0.35))
    return int(round(height - y)), int(round(x))


def test_heatmap_has_labelled_axes_colour_bar_values_and_colours():
    values = np.array([[0.0, 0.25, 1.0], [0.5, 0.75, 0.125]])
    figure, axes = policy_summaries.heatmap_figure(
        values, title="t", ylabel="epoch", row_labels=[3, 4]
    )
    pixels = policy_summaries.figure_pixels(figure)
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3
    assert axes.get_xlabel() == "residual block"
    assert axes.get_ylabel() == "epoch"
    assert [t.get_text() for t in axes.get_yticklabels()] == ["3", "4"]
    assert [int(t) for t in axes.get_xticks()] == [0, 1, 2]
    # The colour bar is the figure's second axes, on a fixed 0-1 scale.
    (colorbar_axes,) = [a for a in figure.axes if a is not axes]
    assert colorbar_axes.get_ylabel().startswith("fraction of users")
    assert colorbar_axes.get_ylim() == (0.0, 1.0)
    # Every cell prints its value, row by row.
    assert [t.get_text() for t in axes.texts] == [
        f"{v:.2f}" for v in values.ravel()
    ]
    height = pixels.shape[0]
    for row in range(2):
        for block in range(3):
            y, x = _cell_pixel(figure, axes, row, block, height)
            np.testing.assert_allclose(
                pixels[y, x], _viridis(values[row, block]), atol=2
            )


def test_many_cells_are_not_annotated():
    values = np.zeros([policy_summaries.MAX_ANNOTATED_CELLS + 1, 1])
    _, axes = policy_summaries.heatmap_figure(values, title="t", ylabel="u")
    assert not axes.texts


def test_policy_statistics_are_per_user():
    users = np.array([b"a", b"b", b"a", b"c"])
    policies = np.array([[1, 0], [1, 1], [1, 0], [0, 0]], np.float64)
    _, per_user = policy_summaries.unique_users(users, policies)
    stats = policy_summaries.policy_statistics(per_user)
    # Users a = 10, b = 11, c = 00.
    assert stats["policy/block_0"] == 2 / 3
    assert stats["policy/block_1"] == 1 / 3
    assert stats["policy/mean_finetuned_blocks"] == 1.0
    assert stats["policy/max_finetuned_blocks"] == 2.0
    assert stats["policy/distinct_policies"] == 3.0


def test_distribution_counts_users_per_policy():
    policies = np.array(
        [[1, 0, 1]] * 5 + [[0, 0, 0]] * 2 + [[1, 1, 1]] * 2 + [[0.9, 0.2, 0.6]]
    )
    # The soft row thresholds to 101: six users.
    assert policy_summaries.policy_distribution(policies) == [
        ("101", 6),
        ("000", 2),
        ("111", 2),
    ]
    lines = policy_summaries.distribution_table(policies, max_rows=2)
    lines = lines.splitlines()
    assert lines[0] == (
        "3 distinct policies of 2^3 = 8 possible, over 10 users."
    )
    assert lines[4] == "| `101` | 2 | 6 | 60.0% |"
    assert lines[5] == "| `000` | 0 | 2 | 20.0% |"
    assert lines[6] == "| 1 other policies | | 2 | 20.0% |"


def test_sample_users_have_distinct_lengths():
    # Histories cut at L = 30: most users have length 30.
    users = np.array([f"u{i}".encode() for i in range(10)])
    lengths = np.array([30, 30, 4, 30, 12, 30, 30, 7, 30, 30])
    policies = np.zeros([10, 3])
    policies[0] = [1, 0, 1]
    table = policy_summaries.sample_users_table(users, lengths, policies)
    lines = table.splitlines()[2:]
    # Distinct lengths 4, 7, 12, 30: shortest, middle (index 2 of 0..3
    # rounded from 1.5), longest; the first user of each.
    assert lines == [
        "| short | u2 | 4 | `000` | 0 |",
        "| medium | u4 | 12 | `000` | 0 |",
        "| long | u0 | 30 | `101` | 2 |",
    ]
    two = policy_summaries.sample_users_table(
        users[:3], lengths[:3], policies[:3]
    )
    assert [line.split(" |")[0] for line in two.splitlines()[2:]] == [
        "| short",
        "| long",
    ]
    assert policy_summaries.policy_string([0.25, 0.5]) == "0.25 0.50"


def test_policy_csv_has_one_row_per_user(tmp_path):
    users = np.array([b"u10", b"u2", b"u10", b"u7"])
    lengths = np.array([30, 5, 30, 12])
    policies = np.array(
        [[0, 1, 1], [1, 0, 0], [0, 1, 1], [0.75, 0.25, 0.5]], np.float64
    )
    path = policy_summaries.write_policy_csv(
        str(tmp_path / "p.csv"), users, lengths, policies
    )
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["user_id"] for r in rows] == ["u10", "u2", "u7"]
    assert [r["history_length"] for r in rows] == ["30", "5", "12"]
    assert [r["policy"] for r in rows] == ["011", "100", "100"]
    assert [r["finetuned_blocks"] for r in rows] == ["2", "1", "1"]
    # Soft gates are kept as values; the bits threshold them at 0.5.
    assert [rows[2][f"block_{b}"] for b in range(3)] == ["0.75", "0.25", "0.5"]


def test_users_images_order_by_length_and_by_policy():
    lengths = np.array([9, 3, 5, 3])
    policies = np.array([[1, 1], [0, 1], [1, 1], [0, 0]], np.float64)
    for order in ("length", "policy"):
        image = policy_summaries.users_image(lengths, policies, order)
        assert image.dtype == np.uint8 and image.ndim == 3
    by_length = policy_summaries._user_ticks(
        [3, 3, 5, 9], ["00", "01", "11", "11"], "length"
    )
    # Ticks at the middle of each run of one length.
    assert by_length == (["length 3", "length 5", "length 9"], [0.5, 2, 3])
    # By policy: 11 (2 users) first, then 00 and 01 (1 each).
    by_policy = policy_summaries._user_ticks(
        [5, 9, 3, 3], ["11", "11", "00", "01"], "policy"
    )
    assert by_policy == (["11 (2)", "00 (1)", "01 (1)"], [0.5, 2.0, 3.0])
    with pytest.raises(ValueError, match="Received: order='user'"):
        policy_summaries.users_image(lengths, policies, "user")


def test_write_produces_every_view(tmp_path):
    num_blocks = 4
    summaries = policy_summaries.PolicySummaries(num_blocks)
    writer = tf.summary.create_file_writer(str(tmp_path))
    users = np.array([f"user{i}".encode() for i in range(8)])
    lengths = np.arange(8) * 3 + 1
    epoch_policies = [
        np.tile([1.0, 0.0, 0.0, 1.0], [8, 1]),
        np.array([[1, 1, 0, 0]] * 4 + [[0, 1, 0, 0]] * 4, np.float64),
    ]
    with writer.as_default():
        for step, policies in enumerate(epoch_policies, start=1):
            summaries.write(
                "valid",
                users,
                lengths,
                policies,
                label=step,
                per_user_images=step == 2,
                step=step,
            )
        assert policy_summaries.write_layout(step=0)
    writer.close()
    events = _read_events(str(tmp_path))

    # The policy values themselves are the trainer's (valid/policy/*),
    # written once; here only the constant lines of the 0-1 chart.
    assert not [t for t in events if t.endswith("/block_0")]
    assert [(s, _scalar(v)) for s, v in events["valid/policy/y_axis_1"]] == [
        (1, 1.0),
        (2, 1.0),
    ]
    assert _scalar(events["valid/policy/y_axis_0"][0][1]) == 0.0
    # Step 2: four users fine-tune 2 blocks, four fine-tune 1.
    histogram = events["valid/policy/finetuned_blocks"][-1][1]
    assert histogram.metadata.plugin_data.plugin_name == "histograms"
    np.testing.assert_array_equal(
        tf.make_ndarray(histogram.tensor),
        [
            [-0.5, 0.5, 0],
            [0.5, 1.5, 4],
            [1.5, 2.5, 4],
            [2.5, 3.5, 0],
            [3.5, 4.5, 0],
        ],
    )
    distribution = _text(events["valid/policy/distribution"][-1][1])
    assert distribution.startswith("2 distinct policies of 2^4 = 16")
    assert "| `1100` | 2 | 4 | 50.0% |" in distribution
    sample = _text(events["valid/policy/sample_users"][-1][1])
    assert "| long | user7 | 22 | `0100` | 1 |" in sample

    # Step 2's heatmap has both epochs; per-user images only at step 2.
    image_value = events["valid/policy/utilisation_heatmap"][-1][1]
    assert image_value.metadata.plugin_data.plugin_name == "images"
    width, height, png = tf.make_ndarray(image_value.tensor)
    image = tf.io.decode_png(png).numpy()
    assert image.shape == (int(height), int(width), 3)
    expected = policy_summaries.utilisation_heatmap(
        [[1.0, 0.0, 0.0, 1.0], [0.5, 1.0, 0.0, 0.0]],
        [1, 2],
        title="valid: fraction of users fine-tuning each block",
    )
    np.testing.assert_array_equal(image, expected)
    for tag in ("users_by_length", "users_by_policy"):
        assert [s for s, _ in events[f"valid/policy/{tag}"]] == [2]

    # The layout: one chart holds every block and the two axis lines.
    (layout_value,) = [v for _, v in events["custom_scalars__config__"]]
    from tensorboard.plugins.custom_scalar import layout_pb2

    layout = layout_pb2.Layout.FromString(
        tf.make_ndarray(layout_value.tensor).item()
    )
    chart = layout.category[0].chart[0]
    assert list(chart.multiline.tag) == [
        r"^valid/policy/block_\d+$",
        r"^valid/policy/y_axis_[01]$",
    ]


def test_without_matplotlib_images_are_skipped_with_one_warning(
    tmp_path, monkeypatch
):
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises
    monkeypatch.setattr(policy_summaries, "_matplotlib_warned", False)
    warnings = []
    monkeypatch.setattr(
        policy_summaries.logging, "warning", lambda *a: warnings.append(a)
    )
    summaries = policy_summaries.PolicySummaries(2)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=1):
        for _ in range(2):
            stats = summaries.write(
                "test", [b"a"], [3], [[1.0, 0.0]], per_user_images=True
            )
    writer.close()
    assert stats["policy/block_0"] == 1.0
    assert len(warnings) == 1 and "matplotlib" in warnings[0][0]
    tags = set(_read_events(str(tmp_path)))
    assert "test/policy/distribution" in tags
    assert not [t for t in tags if "heatmap" in t or "users_by" in t]
