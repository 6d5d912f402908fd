r"""Predicts a user profile label from the source sequence (paper Table 9).

    python launch/profile.py --data_dir=data/movielens-1m \
        --pretrained=checkpoints/pretrain-movielens-1m \
        --profile_label=gender --method=gumbel

fine-tunes the pretrained backbone with `--method` (a UAF variant or a
Finetune baseline) under a softmax classifier of the label's classes, on
an 80/10/10 split of the fine-tuning users (`uaf_tf.data.profiles`), and
writes `checkpoints/profile-<label>-<method>-<dataset>/` (config.json,
model.json, best.weights.h5, ckpt/, tb/, results.json). It prints the test
accuracy and macro-F1 beside the majority-class baseline on the same
users. `--resume` continues an interrupted run. The options are the fields
of `uaf_tf.training.profile.ProfileConfig`.
"""

import sys

from absl import flags

from uaf_tf import config_flags
from uaf_tf.cli import common_flags
from uaf_tf.training import finetune
from uaf_tf.training import profile


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "profile_label" in flag_values:
        return
    config_flags.define_config_flags(profile.ProfileConfig, flag_values)
    common_flags.define_common_flags(flag_values)


def _default_run_name(config: profile.ProfileConfig) -> str:
    info = finetune.check_inputs(config)
    return (
        f"profile-{config.profile_label}-{config.method}-"
        f"{info.name or 'dataset'}"
    )


def run(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """Runs the profile prediction the parsed flags describe."""
    config, run_dir = common_flags.config_and_run_dir(
        profile.ProfileConfig, _default_run_name, flag_values
    )
    results = profile.run_profile_prediction(
        config, run_dir, resume=flag_values.resume
    )
    test = results["test"]
    print(f"run_dir: {run_dir}")
    print(
        f"best epoch {results['best_epoch']}/{results['epochs_run']}, "
        f"{results['wall_time_s']:.1f} s"
    )
    print(
        f"test ({int(test['num_examples'])} users, "
        f"{config.profile_label}): accuracy {test['accuracy']:.4f} "
        f"macro-F1 {test['macro_f1']:.4f}; majority class "
        f"{results['profile']['majority_class']!r}: accuracy "
        f"{test['majority/accuracy']:.4f} macro-F1 "
        f"{test['majority/macro_f1']:.4f}"
    )
    return results


main = common_flags.main_for(run)


def entry_point() -> None:
    """The `uaf-profile` command (also `python launch/profile.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
