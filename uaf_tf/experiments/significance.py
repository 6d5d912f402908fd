"""Paired two-sided t-tests with `tfp.distributions.StudentT` p-values.

For paired samples `a_i, b_i` (i = 1..n) with differences `d_i = a_i - b_i`:

    t = mean(d) / (std(d) / sqrt(n)),    std with n - 1 degrees of freedom
    p = 2 P(T_{n-1} > |t|)

which is `scipy.stats.ttest_rel(a, b)` without the SciPy dependency.
"""

import dataclasses
import math

import numpy as np
import tensorflow_probability as tfp


@dataclasses.dataclass(frozen=True)
class PairedTTest:
    """The result of `paired_t_test`.

    Attributes:
        n: number of pairs.
        mean_difference: mean of `a - b`.
        t: the t statistic (NaN when undefined: n < 2, or all differences
            equal and non-zero gives +-inf).
        p_value: two-sided p-value (NaN when n < 2 or all differences are
            0; 0.0 when all differences are equal and non-zero).
    """

    n: int
    mean_difference: float
    t: float
    p_value: float


def student_t_two_sided_p(t: float, df: float) -> float:
    """`2 P(T_df > |t|)` for Student's t with `df` degrees of freedom."""
    if not df > 0:
        raise ValueError(f"`df` must be > 0. Received: df={df}")
    if math.isnan(t):
        return math.nan
    distribution = tfp.distributions.StudentT(
        df=np.float64(df), loc=np.float64(0.0), scale=np.float64(1.0)
    )
    # The survival function keeps precision for tiny p-values, where
    # 1 - cdf would round to 0.
    return float(2.0 * distribution.survival_function(np.float64(abs(t))))


def paired_t_test(a, b) -> PairedTTest:
    """Two-sided paired t-test of `a` against `b` (same order, same length).

    Args:
        a: `[n]` values of one method (per instance or per seed).
        b: `[n]` values of the other, paired with `a` element by element.

    Returns:
        A `PairedTTest`.
    """
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(
            "`a` and `b` must be paired (same length). Received: "
            f"len(a)={len(a)}, len(b)={len(b)}"
        )
    n = len(a)
    if n == 0:
        return PairedTTest(0, math.nan, math.nan, math.nan)
    d = a - b
    mean = float(d.mean())
    if n < 2:
        return PairedTTest(n, mean, math.nan, math.nan)
    std = float(d.std(ddof=1))
    if std == 0.0:
        if mean == 0.0:
            return PairedTTest(n, mean, math.nan, math.nan)
        return PairedTTest(n, mean, math.copysign(math.inf, mean), 0.0)
    t = mean / (std / math.sqrt(n))
    return PairedTTest(n, mean, t, student_t_two_sided_p(t, n - 1))
