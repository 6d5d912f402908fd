"""Shared pytest setup: the `large` marker, per-test seeding, and the
names every docstring example may use (`tf`, `keras`, `np`, `ops`).

It sits at the repository root so that it covers both `tests/` and the
docstring examples collected from `uaf_tf/` (`--doctest-modules`).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops


def pytest_addoption(parser):
    parser.addoption(
        "--run_large",
        action="store_true",
        default=False,
        help="Also run tests marked `large` (network, big data).",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "large: slow or networked; runs only with --run_large."
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_large"):
        return
    skip = pytest.mark.skip(reason="large test: pass --run_large to run it.")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def seeded():
    """Seeds numpy's and TF's global generators before every test."""
    np.random.seed(0)
    tf.random.set_seed(0)


@pytest.fixture(autouse=True)
def add_doctest_namespace(doctest_namespace):
    """Docstring examples use these without importing them."""
    doctest_namespace.update(tf=tf, keras=keras, np=np, ops=ops)
