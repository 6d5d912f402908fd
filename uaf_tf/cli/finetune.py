r"""Fine-tunes a pretrained backbone on the target domain with UAF.

    python launch/finetune.py --flagfile=launch/configs/finetune_quick.cfg \
        --data_dir=/tmp/ml100k \
        --pretrained=checkpoints/pretrain-movielens-100k \
        --method=gumbel

writes `checkpoints/finetune-<method>-<dataset>/` (config.json, model.json,
best.weights.h5, ckpt/, tb/ with the policy views, results.json,
vocabularies) and prints test MRR@5 / HR@5 and the per-block utilisation of
the fine-tuned copies. `--resume` continues an interrupted run;
`--config=<run>/config.json` starts a new run with another run's options.
The options are the fields of `uaf_tf.training.finetune.FinetuneConfig`.
"""

import json
import sys

from absl import flags

from uaf_tf import config_flags
from uaf_tf.cli import common_flags
from uaf_tf.training import finetune


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "method" in flag_values:
        return
    config_flags.define_config_flags(finetune.FinetuneConfig, flag_values)
    common_flags.define_common_flags(flag_values)


def config_from_flags(fv: flags.FlagValues) -> finetune.FinetuneConfig:
    return common_flags.config_from_flags(finetune.FinetuneConfig, fv)


def _default_run_name(config: finetune.FinetuneConfig) -> str:
    # Checks --data_dir and --pretrained first: a wrong one ends in one
    # line, no work done.
    info = finetune.check_inputs(config)
    return f"finetune-{config.method}-{info.name or 'dataset'}"


def run(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """Runs the fine-tuning the parsed flags describe; returns its results."""
    config, run_dir = common_flags.config_and_run_dir(
        finetune.FinetuneConfig, _default_run_name, flag_values
    )
    results = finetune.run_finetuning(
        config, run_dir, resume=flag_values.resume
    )
    test = results["test"]
    print(f"run_dir: {run_dir}")
    print(
        f"best epoch {results['best_epoch']}/{results['epochs_run']}, "
        f"{results['train_examples_per_sec']:.1f} train ex/s, "
        f"{results['wall_time_s']:.1f} s"
    )
    if test is None:
        # A non-chief worker of --strategy=multi_worker.
        print("test: evaluated by worker 0 (the chief)")
        return results
    print(
        f"test ({int(test['num_examples'])} instances): "
        f"sampled/mrr@5 {test['sampled/mrr@5']:.4f} "
        f"sampled/hr@5 {test['sampled/hr@5']:.4f} "
        f"full/hr@20 {test['full/hr@20']:.4f} "
        f"full_filtered/hr@20 {test['full_filtered/hr@20']:.4f}"
    )
    blocks = sorted(
        (k for k in test if k.startswith("policy/block_")),
        key=lambda k: int(k.rsplit("_", 1)[1]),
    )
    print(
        "fine-tuned block utilisation: "
        + " ".join(f"{test[k]:.2f}" for k in blocks)
        + f" (mean {test['policy/mean_finetuned_blocks']:.2f} blocks, "
        f"{int(test['policy/distinct_policies'])} distinct policies)"
    )
    print("test: " + json.dumps(test, indent=1))
    return results


main = common_flags.main_for(run)


def entry_point() -> None:
    """The `uaf-finetune` command (also `python launch/finetune.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
