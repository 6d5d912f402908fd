"""Flags shared by the training launch scripts (pretrain, finetune, ...).

Every script calls `define_common_flags()` inside its `define_flags()` and
`resolve_run_dir(default_name)` in `main`. Flags already defined on the same
`FlagValues` (by another script in the same process) are left as they are.
"""

import os

from absl import flags

# Default parent of run directories, relative to the working directory.
CHECKPOINT_ROOT = "checkpoints"


def define_common_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines --data_dir --run_dir --run_name --seed --resume
    --log_every_steps --checkpoint_every_steps on `flag_values`."""
    fv = flag_values

    def define(kind, name, default, help_text):
        if name not in fv:
            getattr(flags, f"DEFINE_{kind}")(
                name, default, help_text, flag_values=fv
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
        "Steps between progress lines and TensorBoard train scalars (0: none).",
    )
    define(
        "integer",
        "checkpoint_every_steps",
        0,
        "Steps between mid-epoch checkpoints (0: at epoch ends only).",
    )


def resolve_run_dir(
    default_name: str, flag_values: flags.FlagValues = flags.FLAGS
) -> str:
    """--run_dir, else checkpoints/<--run_name or default_name>."""
    if flag_values.run_dir:
        return flag_values.run_dir
    return os.path.join(CHECKPOINT_ROOT, flag_values.run_name or default_name)
