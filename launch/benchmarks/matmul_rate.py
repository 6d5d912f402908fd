r"""This machine's dense matmul rate, the yardstick of the step benchmarks.

    python launch/benchmarks/matmul_rate.py

Times `tf.linalg.matmul` of two random 2048 x 2048 float32 matrices (2 n^3
= 17.2 GFLOP per product), one product per timed call, and reports the
median over `repeats` calls after `warmup` untimed ones. The step
benchmarks (`pretrain_throughput.py`, `finetune_throughput.py`,
`report.py`) express their achieved GFLOP/s as a share of this rate
measured in the same process, not of a fixed peak: on a shared machine
the rate moves from day to day and with the load.
"""

import statistics
import time

import tensorflow as tf
from absl import app

SIZE = 2048
REPEATS = 20


def median_seconds(run, *, warmup: int, repeats: int) -> float:
    """Median wall-clock seconds of `run()` over `repeats` calls, after
    `warmup` untimed ones. `run` must return only once its work is done
    (fetch its outputs)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_product(size: int = SIZE, dtype: str = "float32"):
    """A call that computes one `size` x `size` product of two fixed random
    matrices in `dtype` and returns once it is done (`2 size^3` FLOPs)."""
    a = tf.cast(tf.random.stateless_normal([size, size], seed=[0, 1]), dtype)
    b = tf.cast(tf.random.stateless_normal([size, size], seed=[0, 2]), dtype)
    # The sum keeps the result out of the copy back to Python.
    product = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))
    return lambda: product(a, b).numpy()


def matmul_gflops(
    size: int = SIZE,
    repeats: int = REPEATS,
    warmup: int = 3,
    dtype: str = "float32",
) -> dict:
    """Median GFLOP/s of a `size` x `size` matmul in `dtype`.

    Returns:
        `{"name", "size", "dtype", "repeats", "median_ms",
        "gflops_per_sec"}`; FLOPs per product are `2 size^3`.
    """
    if size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            "`size` and `repeats` must be >= 1 and `warmup` >= 0. Received: "
            f"size={size}, repeats={repeats}, warmup={warmup}"
        )
    seconds = median_seconds(
        matmul_product(size, dtype), warmup=warmup, repeats=repeats
    )
    return {
        "name": f"matmul_{size}_{dtype}",
        "size": size,
        "dtype": dtype,
        "repeats": repeats,
        "median_ms": 1e3 * seconds,
        "gflops_per_sec": 2 * size**3 / seconds / 1e9,
    }


def main(argv):
    del argv
    for dtype in ("float32", "bfloat16"):
        r = matmul_gflops(dtype=dtype)
        print(
            f"{r['name']}: {r['median_ms']:.1f} ms (median of "
            f"{r['repeats']}), {r['gflops_per_sec']:.1f} GFLOP/s"
        )


if __name__ == "__main__":
    app.run(main)
