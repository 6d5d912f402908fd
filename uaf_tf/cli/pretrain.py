r"""Pretrains NextItNet on the source domain of a prepared dataset.

    python launch/prepare_data.py --dataset=movielens-100k --out_dir=/tmp/ml100k
    python launch/pretrain.py --flagfile=launch/configs/pretrain_quick.cfg \
        --data_dir=/tmp/ml100k

writes `checkpoints/pretrain-movielens-100k/` (config.json, model.json,
best.weights.h5, ckpt/, tb/, results.json, vocabularies; see
checkpoints/README.md) and prints the validation metrics of the best epoch.
`--resume` continues an interrupted run from its latest checkpoint;
`--config=<run>/config.json` starts a new run with another run's options.
The options are the fields of `uaf_tf.training.pretrain.PretrainConfig`.
"""

import json
import sys

from absl import flags

from uaf_tf import config_flags
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.cli import common_flags
from uaf_tf.training import pretrain


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "dilations" in flag_values:
        return
    config_flags.define_config_flags(pretrain.PretrainConfig, flag_values)
    common_flags.define_common_flags(flag_values)


def config_from_flags(fv: flags.FlagValues) -> pretrain.PretrainConfig:
    return common_flags.config_from_flags(pretrain.PretrainConfig, fv)


def _default_run_name(config: pretrain.PretrainConfig) -> str:
    # Checks --data_dir first: a wrong one ends in one line, no work done.
    info = run_dir_lib.check_dataset_dir(config.data_dir, pretrain.SPLITS)
    return f"pretrain-{info.name or 'dataset'}"


def run(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """Runs the pretraining the parsed flags describe; returns its results."""
    config, run_dir = common_flags.config_and_run_dir(
        pretrain.PretrainConfig, _default_run_name, flag_values
    )
    results = pretrain.run_pretraining(
        config, run_dir, resume=flag_values.resume
    )
    print(f"run_dir: {run_dir}")
    print(
        f"best epoch {results['best_epoch']}/{results['epochs_run']}, "
        f"{results['train_examples_per_sec']:.1f} train ex/s, "
        f"{results['wall_time_s']:.1f} s"
    )
    print("valid (best epoch): " + json.dumps(results["valid"], indent=1))
    return results


main = common_flags.main_for(run)


def entry_point() -> None:
    """The `uaf-pretrain` command (also `python launch/pretrain.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
