"""Exports a fine-tuned UAF run as a TF Serving model version.

    python -m launch.export --run_dir=checkpoints/<run> --export_base=exports

writes `exports/uaf/<timestamp>/` atomically: a SavedModel with signatures
`serving_default` (raw source-item id strings -> top-K target item ids,
scores, policy, user embedding; items of the request's history left out
unless `exclude_history` is false) and `score_items`, the vocabularies as
assets and TF Serving warm-up requests for every batch size of
`--batch_sizes`. Beside it: `exports/uaf.models.config`,
`exports/uaf.batching.config` and `exports/uaf.serve.sh`, which runs

    tensorflow_model_server --port=8500 --rest_api_port=8501 \
      --model_config_file=exports/uaf.models.config --enable_batching=true \
      --batching_parameters_file=exports/uaf.batching.config

(docs/serving.md: request formats, batching, a real request and response).
"""

import shlex
import sys

from absl import app
from absl import flags

from uaf_tf import errors
from uaf_tf.cli import common_flags
from uaf_tf.serving import run_export
from uaf_tf.serving import saved_model_export
from uaf_tf.serving import server_config


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
    define(
        "bool",
        "exclude_history",
        True,
        "Default of serving_default's `exclude_history` input: leave target "
        "items whose raw id is in the request's history out of the top K. "
        "Turn off when the two domains' raw ids name unrelated items.",
    )
    defaults = server_config.BatchingConfig()
    define(
        "list",
        "batch_sizes",
        [str(b) for b in defaults.batch_sizes],
        "TF Serving allowed batch sizes (increasing; the last is "
        "max_batch_size), written to <model_name>.batching.config; the "
        "warm-up requests cover each.",
    )
    define(
        "integer",
        "batch_timeout_micros",
        defaults.batch_timeout_micros,
        "TF Serving batching: longest wait for a batch to fill.",
    )
    define(
        "integer",
        "num_batch_threads",
        defaults.num_batch_threads,
        "TF Serving batching: batches run in parallel (about the server's "
        "CPU cores).",
    )
    define(
        "bool",
        "xla_serving",
        False,
        "XLA-compile the model's forward pass inside both signatures "
        "(about 0.6x the CPU time of a batch-1 request, docs/speed.md). "
        "TF Serving then needs --xla_cpu_compilation_enabled=true "
        "(experimental there), which the printed serve command and "
        "<model_name>.serve.sh pass.",
    )
    define(
        "bool",
        "constant_weights",
        False,
        "Fold the forward pass's weights into the signatures as constants, "
        "so a request does not pass ~150 variables in: with --xla_serving "
        "a batch-1 request took about 0.56x the time (docs/serving.md). "
        "The SavedModel keeps its size; weights over 1 GiB are refused. "
        "The constants are the weights of the exported checkpoint "
        "(--weights).",
    )
    define(
        "string",
        "server_base_path",
        None,
        "The model directory as the server sees it, written into "
        "<model_name>.models.config (e.g. /models/uaf in a container). "
        "Default: the absolute local path.",
    )


def run(flag_values: flags.FlagValues = flags.FLAGS) -> str:
    """Exports the run the parsed flags name; returns the version dir."""
    fv = flag_values
    if not fv.run_dir or not fv.export_base:
        raise app.UsageError("--run_dir and --export_base are required.")
    try:
        batching = server_config.BatchingConfig(
            batch_sizes=tuple(int(b) for b in fv.batch_sizes),
            batch_timeout_micros=fv.batch_timeout_micros,
            num_batch_threads=fv.num_batch_threads,
        )
    except ValueError as error:
        raise errors.UserError(f"--batch_sizes/--batch_*: {error}") from error
    version_dir = run_export.export_run(
        fv.run_dir,
        fv.export_base,
        model_name=fv.model_name,
        version=fv.version,
        top_k=fv.top_k,
        overwrite=fv.overwrite,
        weights=fv.weights,
        exclude_history=fv.exclude_history,
        batching=batching,
        server_base_path=fv.server_base_path,
        jit_compile=fv.xla_serving,
        constant_weights=fv.constant_weights,
    )
    paths = server_config.server_file_paths(fv.export_base, fv.model_name)
    command = server_config.server_command(
        paths["model_config"], paths["batching_config"], xla_cpu=fv.xla_serving
    )
    print(f"Exported {fv.run_dir} -> {version_dir}")
    print(f"Inspect: saved_model_cli show --dir {version_dir} --all")
    print(f"Serve (TF Serving >= 2.14): {shlex.join(command)}")
    print(f"  (the same command: {paths['serve_script']})")
    return version_dir


# Positional arguments are a usage error; a `UserError` (wrong run, bad
# --top_k, an existing version, ...) prints one line and exits with 2.
main = common_flags.main_for(run)


def entry_point() -> None:
    """The `uaf-export` command (also `python launch/export.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
