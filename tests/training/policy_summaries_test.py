"""Tests for the TensorBoard policy views: tags, values, heatmap pixels."""

import glob
import os

import numpy as np
import tensorflow as tf

from uaf_tf.training import policy_summaries


def _read_events(log_dir):
    """{tag: [(step, tensor proto)]} of every event file under log_dir."""
    events = {}
    pattern = os.path.join(log_dir, "**", "events.*")
    for path in glob.glob(pattern, recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                events.setdefault(value.tag, []).append((event.step, value))
    return events


def _scalar(value):
    return float(tf.make_ndarray(value.tensor))


def test_colormap_endpoints_and_monotone_ramp():
    np.testing.assert_array_equal(
        policy_summaries.colormap([0.0, 1.0]), [[68, 1, 84], [253, 231, 37]]
    )
    np.testing.assert_array_equal(
        policy_summaries.colormap(0.5), [33, 145, 140]
    )
    # Halfway between anchors 0 and 1 (value 0.125).
    np.testing.assert_array_equal(
        policy_summaries.colormap(0.125), [64, 42, 112]
    )


def test_heatmap_cells_are_upscaled_colours():
    rows = np.array([[0.0, 0.25, 1.0], [0.5, 0.75, 0.125]])
    image = policy_summaries.utilisation_heatmap(rows, cell_pixels=4)
    assert image.shape == (8, 12, 3) and image.dtype == np.uint8
    for e in range(2):
        for block in range(3):
            cell = image[4 * e : 4 * e + 4, 4 * block : 4 * block + 4]
            assert (cell == policy_summaries.colormap(rows[e, block])).all()


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


def test_sample_users_table_picks_short_medium_long():
    users = np.array([f"u{i}".encode() for i in range(10)])
    lengths = np.arange(10) + 1
    policies = np.zeros([10, 3])
    policies[9] = [1, 0, 1]
    table = policy_summaries.sample_users_table(users, lengths, policies)
    lines = table.splitlines()
    assert lines[2].startswith("| short | u1 | 2 |")
    assert lines[3].startswith("| medium | u5 | 6 |")
    assert lines[4] == "| long | u9 | 10 | `101` | 2 |"
    soft = policy_summaries.policy_string([0.25, 0.5])
    assert soft == "0.25 0.50"


def test_write_produces_every_view(tmp_path):
    num_blocks = 4
    summaries = policy_summaries.PolicySummaries(num_blocks, cell_pixels=2)
    writer = tf.summary.create_file_writer(str(tmp_path))
    users = np.array([f"user{i}".encode() for i in range(8)])
    lengths = np.arange(8) * 3 + 1
    epoch_policies = [
        np.tile([1.0, 0.0, 0.0, 1.0], [8, 1]),
        np.array([[1, 1, 0, 0]] * 4 + [[0, 1, 0, 0]] * 4, np.float64),
    ]
    with writer.as_default():
        for step, policies in enumerate(epoch_policies, start=1):
            summaries.write("valid", users, lengths, policies, step=step)
    writer.close()
    events = _read_events(str(tmp_path))

    block_0 = events["policy/valid/block_0"]
    assert [(s, _scalar(v)) for s, v in block_0] == [(1, 1.0), (2, 0.5)]
    assert _scalar(events["policy/valid/block_1"][-1][1]) == 1.0
    assert _scalar(events["policy/valid/distinct_policies"][-1][1]) == 2.0
    # Step 2: four users fine-tune 2 blocks, four fine-tune 1.
    histogram = events["policy/valid/finetuned_blocks"][-1][1]
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
    text_tags = {
        "policy/valid/sample_users",
        "policy/valid/distinct_policies_text",
    }
    assert text_tags <= set(events)
    text = tf.make_ndarray(events["policy/valid/sample_users"][-1][1].tensor)
    assert b"| long | user7 | 22 | `0100` | 1 |" in text.item()

    # The heatmap of step 2 has one row per epoch so far.
    image_value = events["policy/valid/utilisation_heatmap"][-1][1]
    assert image_value.metadata.plugin_data.plugin_name == "images"
    encoded = tf.make_ndarray(image_value.tensor)  # [width, height, png]
    image = tf.io.decode_png(encoded[2]).numpy()
    assert image.shape == (2 * 2, num_blocks * 2, 3)
    expected_rows = [[1.0, 0.0, 0.0, 1.0], [0.5, 1.0, 0.0, 0.0]]
    for e, row in enumerate(expected_rows):
        for block, value in enumerate(row):
            pixel = image[2 * e, 2 * block]
            np.testing.assert_array_equal(
                pixel, policy_summaries.colormap(value)
            )
