"""Exports a fine-tuned UAF run as a TF Serving model version.

    python -m launch.export --run_dir=checkpoints/<run> --export_base=exports

writes `exports/uaf/<timestamp>/` atomically: a SavedModel with signatures
`serving_default` (raw source-item id strings -> top-K target item ids,
scores, policy, user embedding) and `score_items`, the vocabularies as
assets and TF Serving warm-up requests. Serve it with

    docker run -p 8501:8501 \
      --mount type=bind,source=$PWD/exports/uaf,target=/models/uaf \
      -e MODEL_NAME=uaf tensorflow/serving

(see the README section "Serving with TF Serving").
"""

import sys

from absl import app
from absl import flags

from uaf_tf.cli import common_flags
from uaf_tf.serving import run_export
from uaf_tf.serving import saved_model_export


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (names already defined
    there, e.g. `--run_dir` by another launch script, are reused)."""

    def define(kind, name, default, help_text):
        if name not in flag_values:
            getattr(flags, f"DEFINE_{kind}")(
                name, default, help_text, flag_values=flag_values
            )

    define(
        "string",
        "run_dir",
        None,
        "Fine-tuned run directory (checkpoints/<run>) to export.",
    )
    define(
        "string",
        "export_base",
        None,
        "Local directory TF Serving watches; the model is written to "
        "<export_base>/<model_name>/<version>/.",
    )
    define(
        "string",
        "model_name",
        run_export.DEFAULT_MODEL_NAME,
        "TF Serving model name (the MODEL_NAME of the server).",
    )
    define(
        "integer",
        "version",
        None,
        "Integer version directory. Default: the current Unix timestamp.",
    )
    define(
        "integer",
        "top_k",
        saved_model_export.DEFAULT_TOP_K,
        "K, target items returned by `serving_default` (at most the number "
        "of target items).",
    )
    define(
        "bool",
        "overwrite",
        False,
        "Replace <version>/ if it exists (otherwise the export refuses).",
    )
    define(
        "string",
        "weights",
        "best",
        "Weights of the run to export: 'best' or a .weights.h5 path.",
    )


def run(flag_values: flags.FlagValues = flags.FLAGS) -> str:
    """Exports the run the parsed flags name; returns the version dir."""
    fv = flag_values
    if not fv.run_dir or not fv.export_base:
        raise app.UsageError("--run_dir and --export_base are required.")
    version_dir = run_export.export_run(
        fv.run_dir,
        fv.export_base,
        model_name=fv.model_name,
        version=fv.version,
        top_k=fv.top_k,
        overwrite=fv.overwrite,
        weights=fv.weights,
    )
    print(f"Exported {fv.run_dir} -> {version_dir}")
    print(f"Inspect: saved_model_cli show --dir {version_dir} --all")
    return version_dir


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        run(flag_values)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        # A refused export (existing version, bad K, ...) is a user error:
        # one clear line and exit status 1, not a traceback.
        raise SystemExit(f"export.py: error: {error}") from error


def entry_point() -> None:
    """The `uaf-export` command (also `python launch/export.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
