"""Side-by-side timing: every side of a ratio timed in alternating rounds.

On a shared machine a ratio of two timings taken minutes apart measures the
machine's drift as much as the code: two idle runs of `report.py` on one
day put UAF-RL over UAF-Gumbel at 1.37 and then 0.94, and the pipeline over
the bare step at 0.51 and then 1.06, because each side had been timed in
its own stretch of minutes. Here each side is timed once per round, the
order rotating from round to round (A B, B A, ...), so the two sides of one
round ran seconds apart; a ratio is the median of the rounds' ratios.
"""

import statistics
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence


def rounds(
    timers: Mapping[str, Callable[[], float]], num_rounds: int
) -> dict[str, list[float]]:
    """Calls every timer once per round for `num_rounds` rounds.

    Args:
        timers: name -> a call that runs one measurement and returns its
            figure (seconds, or a rate).
        num_rounds: how many rounds; round `r` starts with timer
            `r mod len(timers)` and goes on in the mapping's order.

    Returns:
        name -> its `num_rounds` figures, in round order.
    """
    if num_rounds < 1 or not timers:
        raise ValueError(
            "Need at least one round and one timer. Received: "
            f"num_rounds={num_rounds}, timers={list(timers)}"
        )
    names = list(timers)
    figures = {name: [] for name in names}
    for r in range(num_rounds):
        first = r % len(names)
        for name in names[first:] + names[:first]:
            figures[name].append(timers[name]())
    return figures


def round_ratios(
    numerators: Sequence[float], denominators: Sequence[float]
) -> list[float]:
    """The ratio of each round's figures, `numerators[i] / denominators[i]`."""
    if len(numerators) != len(denominators):
        raise ValueError(
            "Both sides need one figure per round. Received: "
            f"{len(numerators)} and {len(denominators)}"
        )
    return [n / d for n, d in zip(numerators, denominators)]


def median_ratio(
    numerators: Sequence[float], denominators: Sequence[float]
) -> float:
    """The median over rounds of `numerators[i] / denominators[i]`."""
    return statistics.median(round_ratios(numerators, denominators))
