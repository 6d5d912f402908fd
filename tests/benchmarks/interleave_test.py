"""interleave.py: rounds rotate the order; ratios pair each round's figures."""

import pytest

from launch.benchmarks import interleave


def test_rounds_rotate_the_order_and_keep_each_sides_figures():
    calls = []

    def timer(name, figures):
        figures = iter(figures)

        def run():
            calls.append(name)
            return next(figures)

        return run

    figures = interleave.rounds(
        {"a": timer("a", [1, 2, 3]), "b": timer("b", [4, 5, 6])}, 3
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert figures == {"a": [1, 2, 3], "b": [4, 5, 6]}


def test_the_ratio_is_the_median_of_each_rounds_ratio():
    # A slow round (the machine drifted) moves both sides together: the
    # per-round ratio stays 2 while the ratio of medians would not.
    slow = [2.0, 20.0, 4.0]
    fast = [1.0, 10.0, 2.0]
    assert interleave.round_ratios(slow, fast) == [2.0, 2.0, 2.0]
    assert interleave.median_ratio(slow, fast) == 2.0
    assert interleave.median_ratio([3.0, 1.0, 8.0], [1.0, 1.0, 1.0]) == 3.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="one figure per round"):
        interleave.round_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one round"):
        interleave.rounds({"a": lambda: 1.0}, 0)
    with pytest.raises(ValueError, match="at least one round"):
        interleave.rounds({}, 2)
