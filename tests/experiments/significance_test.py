"""Paired t-test against hand-computed and closed-form values."""

import math

import numpy as np
import pytest

from uaf_tf.experiments import significance


def test_paired_t_test_matches_hand_computation():
    # d = a - b = [1, 2, 3]: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3.
    # With 2 degrees of freedom the t CDF is closed-form:
    #   P(T > t) = 1/2 - t / (2 sqrt(t^2 + 2)),
    # so p = 1 - t / sqrt(t^2 + 2) = 1 - 2 sqrt 3 / sqrt 14.
    result = significance.paired_t_test([3.0, 5.0, 7.0], [2.0, 3.0, 4.0])
    assert result.n == 3
    assert result.mean_difference == pytest.approx(2.0)
    assert result.t == pytest.approx(2.0 * math.sqrt(3.0))
    expected_p = 1.0 - 2.0 * math.sqrt(3.0) / math.sqrt(14.0)
    assert result.p_value == pytest.approx(expected_p, rel=1e-9)
    assert result.p_value == pytest.approx(0.074180, abs=1e-6)


def test_one_degree_of_freedom_is_cauchy():
    # T_1 is Cauchy: p = 1 - (2 / pi) atan(|t|); for t = 1, p = 0.5.
    assert significance.student_t_two_sided_p(1.0, 1) == pytest.approx(0.5)
    assert significance.student_t_two_sided_p(-3.0, 1) == pytest.approx(
        1.0 - 2.0 / math.pi * math.atan(3.0)
    )


def test_sign_and_symmetry():
    a = np.array([0.2, 0.4, 0.1, 0.5, 0.3])
    b = np.array([0.1, 0.45, 0.0, 0.3, 0.3])
    forward = significance.paired_t_test(a, b)
    backward = significance.paired_t_test(b, a)
    assert forward.t == pytest.approx(-backward.t)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.t > 0


def test_degenerate_cases():
    assert math.isnan(significance.paired_t_test([1.0], [0.0]).p_value)
    same = significance.paired_t_test([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(same.p_value)
    shifted = significance.paired_t_test([2.0, 3.0], [1.0, 2.0])
    assert shifted.p_value == 0.0 and shifted.t == math.inf
    with pytest.raises(ValueError, match="Received"):
        significance.paired_t_test([1.0, 2.0], [1.0])
