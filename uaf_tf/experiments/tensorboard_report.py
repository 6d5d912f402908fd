"""A reproduction's numbers as TensorBoard summaries under `<out_dir>/tb`.

```
tb/<method>/    test_frac<f>/sampled/mrr@5 ...   one point per seed (step)
                valid_frac<f>/sampled/mrr@5      mean learning curve (step
                                                 = epoch), overlaid across
                                                 methods by TensorBoard
tb/report/      text `results`: the Markdown tables
```

The directory is derived data: `write` replaces it on every call, so a
rerun of the reproduction never duplicates points.
"""

import os
import shutil
from collections.abc import Sequence

import tensorflow as tf

from uaf_tf.experiments import grid
from uaf_tf.experiments import plots
from uaf_tf.experiments import report

TENSORBOARD_DIR = "tb"
_TEST_PREFIXES = ("sampled/", "full/", "policy/")


def write(
    out_dir: str,
    runs: Sequence[report.Run],
    fractions: Sequence[float],
    markdown: str,
) -> str:
    """Writes the summaries; returns the TensorBoard log directory."""
    log_dir = os.path.join(out_dir, TENSORBOARD_DIR)
    shutil.rmtree(log_dir, ignore_errors=True)
    methods = report.ordered_methods(sorted({r.method for r in runs}))
    for method in methods:
        writer = tf.summary.create_file_writer(os.path.join(log_dir, method))
        with writer.as_default():
            for run in sorted(runs, key=lambda r: (r.fraction, r.seed)):
                if run.method != method:
                    continue
                prefix = f"test_frac{grid.format_fraction(run.fraction)}"
                for key, value in sorted(run.results["test"].items()):
                    if key.startswith(_TEST_PREFIXES):
                        tf.summary.scalar(
                            f"{prefix}/{key}", float(value), step=run.seed
                        )
            for fraction in fractions:
                curves = plots.learning_curves(runs, fraction)
                if method not in curves:
                    continue
                epochs, values, _ = curves[method]
                name = (
                    f"valid_frac{grid.format_fraction(fraction)}/"
                    f"{plots.CURVE_METRIC}"
                )
                for epoch, value in zip(epochs, values, strict=True):
                    tf.summary.scalar(name, float(value), step=int(epoch))
        writer.close()
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "report"))
    with writer.as_default():
        tf.summary.text("results", markdown, step=0)
    writer.close()
    return log_dir
