"""Importing uaf_tf has no side effects (the doctests import all of it).

`--doctest-modules` imports every module under `uaf_tf/`; none may touch
the network or change the environment (no `CUDA_VISIBLE_DEVICES`, no
`TF_*` variables set by library code).
"""

import os
import subprocess
import sys

import uaf_tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(uaf_tf.__file__)))

IMPORT_ALL_WITHOUT_NETWORK = r"""
import importlib, pkgutil, socket, sys

def refuse(*args, **kwargs):
    raise RuntimeError("network access at import time")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

import os
environ = dict(os.environ)
import uaf_tf
names = [m.name for m in pkgutil.walk_packages(uaf_tf.__path__, "uaf_tf.")]
for name in names:
    importlib.import_module(name)
changed = sorted(
    k for k in set(environ) | set(os.environ)
    if environ.get(k) != os.environ.get(k)
)
assert not changed, f"importing uaf_tf changed {changed}"
print(len(names))
"""


def test_every_module_imports_without_network_or_environment_changes():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_NETWORK],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Every module of the package was imported (at least the 40 of today).
    assert int(result.stdout.split()[-1]) >= 40


def test_version():
    major, minor, patch = uaf_tf.__version__.split(".")
    assert all(part.isdigit() for part in (major, minor, patch))
