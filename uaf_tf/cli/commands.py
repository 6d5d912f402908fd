"""Console-script entry points (setup.py), one per command.

Each one quiets TensorFlow's C++ start-up lines (`common_flags.quiet_startup`)
before it imports its command's module, which imports TensorFlow, then calls
that module's `entry_point`. This module imports no TensorFlow itself.
"""

import importlib

from uaf_tf.cli import common_flags

# Console-script name -> module of `uaf_tf.cli`.
COMMANDS = {
    "uaf-prepare-data": "prepare_data",
    "uaf-pretrain": "pretrain",
    "uaf-finetune": "finetune",
    "uaf-export": "export",
    "uaf-reproduce": "reproduce",
    "uaf-profile": "profile",
}


def _run(module_name: str) -> None:
    common_flags.quiet_startup()
    module = importlib.import_module(f"uaf_tf.cli.{module_name}")
    module.entry_point()


def prepare_data() -> None:
    """`uaf-prepare-data`: raw interaction logs -> a dataset directory."""
    _run("prepare_data")


def pretrain() -> None:
    """`uaf-pretrain`: pretrains the source-domain backbone."""
    _run("pretrain")


def finetune() -> None:
    """`uaf-finetune`: fine-tunes a pretrained backbone with UAF."""
    _run("finetune")


def export() -> None:
    """`uaf-export`: a run directory -> a TF Serving SavedModel."""
    _run("export")


def reproduce() -> None:
    """`uaf-reproduce`: the paper's tables, methods x seeds x fractions."""
    _run("reproduce")


def profile() -> None:
    """`uaf-profile`: predicts a user profile label (paper Table 9)."""
    _run("profile")
