"""The README's "Python API" example runs as written.

The code block is read from README.md's `## Python API` section, or from
docs/python_api.md (where that section's text lives until it is pasted
into the README), so the test keeps checking whichever users read.
"""

import os
import re

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SECTION = "## Python API"


def example_code() -> tuple[str, str]:
    """`(file name, code)` of the section's first python block."""
    for name in ("README.md", os.path.join("docs", "python_api.md")):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        match = re.search(
            rf"^{re.escape(SECTION)}\n(.*?)(?=^## |\Z)", text, re.M | re.S
        )
        if match:
            code = re.search(r"```python\n(.*?)```", match.group(1), re.S)
            assert code, f"{name}: no python block in {SECTION!r}"
            return name, code.group(1)
    raise AssertionError(f"No {SECTION!r} section in README.md or docs/.")


def test_python_api_example_runs(capsys):
    name, code = example_code()
    namespace = {"__name__": "python_api_example"}
    exec(compile(code, name, "exec"), namespace)
    out = capsys.readouterr().out
    run, recs, test = namespace["run"], namespace["recs"], namespace["test"]
    # What the example's comments claim.
    assert test == run.results["test"]
    assert str(run.results["test"]["sampled/mrr@5"]) in out
    num_users, k = recs.items.shape
    assert (num_users, k) == recs.scores.shape == (2, 3)
    num_blocks = len(namespace["pretrained"].config["dilations"])
    assert recs.policy.shape == (2, num_blocks)
    with open(os.path.join(run.path, "target_vocab.txt")) as f:
        target_ids = set(f.read().split())
    assert set(recs.items.ravel()) <= target_ids  # Raw ids, no padding.
    assert np.all(np.diff(recs.scores, axis=1) <= 0)  # Best first.
    assert set(np.unique(recs.policy)) <= {0.0, 1.0}  # Gumbel: hard.
