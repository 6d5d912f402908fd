"""Flags and start-up shared by the commands of `uaf_tf.cli`.

`uaf_tf.cli.commands` calls `quiet_startup()` before a command's module
imports TensorFlow. Each command defines its config's flags with
`uaf_tf.config_flags.define_config_flags`, then `define_common_flags()`
for the run-directory flags, and in `main` builds its config with
`config_from_flags` and its run directory with `resolve_run_dir`. Flags
already defined on the same `FlagValues` (by the config or another script
in the same process) are left as they are.

Flags defined here count as defined by the calling script, so they show in
its `--help` (not only in `--helpfull`).
"""

import contextlib
import json
import logging as py_logging
import os
import re
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

from uaf_tf import config_flags
from uaf_tf import errors

# The common flags are key flags of the script that defines them.
flags.disclaim_key_flags()

# Default parent of run directories, relative to the working directory.
CHECKPOINT_ROOT = "checkpoints"

# Keys of a run's config.json that describe the run, not options of it;
# `--config` skips them.
RUN_METADATA_KEYS = (
    "task",
    "environment",
    "dataset_name",
    "seq_len",
    "num_source_ids",
    "resume_history",  # run_dir.RESUME_HISTORY_KEY
)
# A run directory's config (run_dir.CONFIG_FILE; that module imports
# TensorFlow, which this one must not, see quiet_startup).
_RUN_CONFIG_FILE = "config.json"


def define_common_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines --config --data_dir --run_dir --run_name --seed --resume
    --log_every_steps --checkpoint_every_steps on `flag_values` (those not
    defined yet)."""
    fv = flag_values

    def define(kind, name, default, help_text):
        if name not in fv:
            getattr(flags, f"DEFINE_{kind}")(
                name, default, help_text, flag_values=fv
            )

    define(
        "string",
        "config",
        None,
        "A run's config.json whose values are the defaults of this run's "
        "options (flags given explicitly still win), e.g. "
        "--config=checkpoints/pretrain-movielens-100k/config.json.",
    )
    define(
        "string",
        "data_dir",
        None,
        "Dataset directory made by launch/prepare_data.py (holds "
        "dataset.json).",
    )
    define(
        "string",
        "run_dir",
        None,
        f"Output directory of the run. Default: {CHECKPOINT_ROOT}/<run_name>.",
    )
    define(
        "string",
        "run_name",
        None,
        "Name of the run directory under checkpoints/. Default: "
        "<task>-<dataset name>, e.g. pretrain-movielens-100k.",
    )
    define(
        "integer",
        "seed",
        0,
        "Seeds weight initialisation, shuffling and sampling.",
    )
    define(
        "bool",
        "resume",
        False,
        "Continue from the latest checkpoint in the run directory (epoch, "
        "step, optimizer and RNG state); starts fresh if there is none.",
    )
    define(
        "integer",
        "log_every_steps",
        50,
        "Steps between TensorBoard train scalars (0: none).",
    )
    define(
        "integer",
        "checkpoint_every_steps",
        0,
        "Steps between mid-epoch checkpoints (0: at epoch ends only).",
    )


def main_for(run):
    """The absl `main(argv, flag_values)` of a command whose work is
    `run(flag_values)`: positional arguments are a usage error, and a
    `uaf_tf.errors.UserError` prints one line and exits with status 2 (a
    `config_flags.ConfigError` in terms of the flag, `--x=value: reason`)."""

    def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
        try:
            run(flag_values)
        except errors.UserError as error:
            # The user's to fix: one line, no traceback (uaf_tf.errors).
            if isinstance(error, config_flags.ConfigError):
                error = errors.UserError(error.flag_message())
            print(errors.format_error(error), file=sys.stderr, flush=True)
            sys.exit(errors.EXIT_STATUS)

    return main


def run_command(module, define_flags, main) -> None:
    """Runs a command module's `main` with `app.run`, its flags defined.

    The flags count as defined by `module`; they are also made key flags
    of the program's main module (a console script or a `launch/` wrapper,
    named by `sys.argv[0]`), and `module.__doc__` becomes the usage text, so
    `--help` shows them and the command's description.

    Args:
        module: the command's module (`uaf_tf.cli.<command>`).
        define_flags: its `define_flags`, called on `flags.FLAGS`.
        main: its `main(argv)`.
    """
    define_flags()
    for flag in flags.FLAGS.get_key_flags_for_module(module.__name__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    sys.modules["__main__"].__doc__ = module.__doc__
    app.run(main)


def resolve_run_dir(
    default_name: str, flag_values: flags.FlagValues = flags.FLAGS
) -> str:
    """--run_dir, else checkpoints/<--run_name or default_name>."""
    if flag_values.run_dir:
        return flag_values.run_dir
    return os.path.join(CHECKPOINT_ROOT, flag_values.run_name or default_name)


def read_config_file(
    config_cls: type, path: str, *, label: str | None = None
) -> dict:
    """A run's config.json as `{flag name: value}` for `config_cls`.

    Keys in `RUN_METADATA_KEYS` are skipped. Errors start with `label`
    (default `--config=<path>`).

    Raises:
        config_flags.FlagError: the file is unreadable, or holds a key that
            is not a field of `config_cls` (the message names the file and
            key).
    """
    label = label or f"--config={path}"
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, ValueError) as error:
        raise config_flags.FlagError(f"{label}: {error}") from None
    if not isinstance(values, dict):
        raise config_flags.FlagError(f"{label}: not a JSON object of options")
    try:
        return config_flags.flatten_config_dict(
            config_cls, values, ignore=RUN_METADATA_KEYS
        )
    except KeyError as error:
        raise config_flags.FlagError(f"{label}: {error.args[0]}") from None


def config_from_flags(
    config_cls: type,
    flag_values: flags.FlagValues = flags.FLAGS,
    *,
    resumed_run: str | None = None,
):
    """`config_cls` from parsed flags, over `--config`'s values if given.

    Precedence: flags given on the command line or in a flagfile, then the
    config.json of `resumed_run` (the run `--resume` continues, if it has
    one), then the `--config` file, then the dataclass defaults. So a
    resumed run changes only what is given explicitly (and of that, only
    `run_dir.RESUMABLE_OPTIONS`, see `run_dir.start_run`).
    """
    defaults = {}
    if flag_values.config:
        defaults.update(read_config_file(config_cls, flag_values.config))
    if resumed_run:
        saved = os.path.join(resumed_run, _RUN_CONFIG_FILE)
        if os.path.isfile(saved):
            defaults.update(
                read_config_file(config_cls, saved, label=f"--resume: {saved}")
            )
    return config_flags.config_from_flags(
        config_cls, flag_values, defaults=defaults
    )


def config_and_run_dir(
    config_cls: type,
    default_name,
    flag_values: flags.FlagValues = flags.FLAGS,
):
    """The config and run directory of a command.

    Args:
        config_cls: the command's config dataclass.
        default_name: `config -> str`, the run name when neither `--run_dir`
            nor `--run_name` is given (it may check the config's paths).
        flag_values: parsed flags.

    Returns:
        `(config, run_dir)`. With `--resume`, options not given explicitly
        come from the run's own config.json (`config_from_flags`).
    """
    fv = flag_values
    config = config_from_flags(
        config_cls, fv, resumed_run=fv.run_dir if fv.resume else None
    )
    run_dir = resolve_run_dir(default_name(config), fv)
    if fv.resume and not fv.run_dir:
        config = config_from_flags(config_cls, fv, resumed_run=run_dir)
    return config, run_dir


# === Start-up output ===

# Lines TensorFlow writes while it is imported and finds its devices, through
# absl C++ logging that is not initialised yet and so ignores
# TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442): three INFO lines per
# TF shared library, and on machines without a GPU driver one cuInit error.
_STARTUP_NOISE = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called "
    r"are written to STDERR",
    r"I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\..*",
    r"I\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers .*",
)
_NO_DRIVER_CUINIT = (
    r"E\d{4} [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*"
)


def quiet_startup() -> None:
    """Keeps TensorFlow's C++ start-up lines out of a launch script's output.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` unless it is set, then imports TensorFlow
    and lists its devices with stderr captured, and writes back every
    captured line except the known start-up INFO lines (and the cuInit
    error of a machine that has no CUDA driver at all, which TF reports just
    before). With `TF_CPP_MIN_LOG_LEVEL` set below 2 nothing is filtered.
    Also shortens absl log lines and drops TensorFlow's Python INFO lines.

    For launch scripts only; the library sets no environment or logging.
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if level.strip() in ("2", "3"):
        with _filtered_stderr():
            import tensorflow as tf

            # Physical, not logical: listing logical devices initialises
            # the TF runtime, after which `--strategy=multi_worker` can no
            # longer configure its collectives (nor a script its logical
            # devices).
            tf.config.list_physical_devices()
    else:
        import tensorflow as tf  # noqa: F401
    handler = logging.get_absl_handler()
    handler.addFilter(_no_tensorflow_info)
    # `I 00:34:28 trainer] message` instead of absl's
    # `I1128 00:34:28.231434 140707832466304 trainer.py:371] message`.
    handler.setFormatter(
        py_logging.Formatter(
            "%(levelname).1s %(asctime)s %(module)s] %(message)s",
            datefmt="%H:%M:%S",
        )
    )


def _no_tensorflow_info(record: py_logging.LogRecord) -> bool:
    """Drops INFO records of TensorFlow's own Python code (e.g. one
    "Sharding callback duration" line per checkpoint save)."""
    inside_tf = f"{os.sep}tensorflow{os.sep}" in record.pathname
    return record.levelno >= py_logging.WARNING or not inside_tf


@contextlib.contextmanager
def _filtered_stderr():
    """Captures file descriptor 2 (C++ writes too), then replays it filtered."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            sys.stderr.write(_drop_startup_noise(text))
            sys.stderr.flush()


def _drop_startup_noise(text: str) -> str:
    lines = text.splitlines(keepends=True)
    no_driver = any("Could not find cuda drivers" in line for line in lines)
    kept = []
    for line in lines:
        stripped = line.rstrip("\n")
        if any(re.fullmatch(p, stripped) for p in _STARTUP_NOISE):
            continue
        if no_driver and re.fullmatch(_NO_DRIVER_CUINIT, stripped):
            continue
        kept.append(line)
    return "".join(kept)
