"""The per-instance test ranks file: format, round trip, validation."""

import numpy as np
import pytest

from uaf_tf.experiments import instances


def test_write_then_read(tmp_path):
    path = instances.write_test_instances(
        str(tmp_path),
        index=np.array([7, 2, 5]),
        user=np.array([b"u7", b"u2", b"u5"]),
        sampled_rank=np.array([0, 4, 99]),
        full_rank=np.array([3, 0, 1000]),
    )
    # Sorted by index, ranks written 1-based.
    assert open(path).read() == (
        "index\tuser\tsampled_rank\tfull_rank\n"
        "2\tu2\t5\t1\n"
        "5\tu5\t100\t1001\n"
        "7\tu7\t1\t4\n"
    )
    table = instances.read_test_instances(str(tmp_path))
    np.testing.assert_array_equal(table["index"], [2, 5, 7])
    assert table["user"] == ["u2", "u5", "u7"]
    np.testing.assert_array_equal(table["sampled_rank"], [5, 100, 1])
    np.testing.assert_array_equal(table["full_rank"], [1, 1001, 4])
    assert instances.read_test_instances(str(tmp_path / "none")) is None


def test_per_instance_metrics_of_one_based_ranks():
    ranks = [1, 2, 5, 6]
    np.testing.assert_allclose(
        instances.reciprocal_rank_at(ranks, 5), [1.0, 0.5, 0.2, 0.0]
    )
    np.testing.assert_array_equal(instances.hit_at(ranks, 5), [1, 1, 1, 0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(
                index=[1, 2], user=["a"], sampled_rank=[0, 0], full_rank=[0, 0]
            ),
            "same length",
        ),
        (
            dict(
                index=[1, 1],
                user=["a", "b"],
                sampled_rank=[0, 0],
                full_rank=[0, 0],
            ),
            "repeated",
        ),
        (
            dict(index=[1], user=["a"], sampled_rank=[-1], full_rank=[0]),
            "0-based",
        ),
    ],
)
def test_invalid_input(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        instances.write_test_instances(str(tmp_path), **kwargs)
