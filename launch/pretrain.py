r"""Pretrains NextItNet on the source domain of a prepared dataset.

    python launch/prepare_data.py --dataset=movielens-100k --out_dir=/tmp/ml100k
    python launch/pretrain.py --flagfile=launch/configs/pretrain_quick.cfg \
        --data_dir=/tmp/ml100k

writes `checkpoints/pretrain-movielens-100k/` (config.json, model.json,
best.weights.h5, ckpt/, tb/, results.json, vocabularies; see
checkpoints/README.md) and prints the validation metrics of the best epoch.
`--resume` continues an interrupted run from its latest checkpoint.
"""

import json

from absl import app
from absl import flags

from uaf_tf.data import dataset_info
from uaf_tf.models.nextitnet_backbone import PAPER_DILATIONS
from uaf_tf.training import pretrain

try:  # `python -m launch.pretrain` or an import from the tests.
    from launch import common_flags
except ImportError:  # `python launch/pretrain.py`: launch/ is on sys.path.
    import common_flags

_JIT_CHOICES = {"auto": None, "true": True, "false": False}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "dilations" in flag_values:
        return
    fv = {"flag_values": flag_values}
    common_flags.define_common_flags(flag_values)
    # === Architecture ===
    flags.DEFINE_integer(
        "channels", 128, "C, item embedding and hidden width.", **fv
    )
    flags.DEFINE_list(
        "dilations",
        [str(d) for d in PAPER_DILATIONS],
        "Base dilation of each residual block (block d has convs with "
        "dilations d and 2d); paper: 1,4,1,4,1,4,1,4.",
        **fv,
    )
    flags.DEFINE_integer("kernel_size", 3, "k, convolution taps.", **fv)
    # === Training ===
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate.", **fv)
    flags.DEFINE_integer("batch_size", 256, "Training batch size.", **fv)
    flags.DEFINE_integer(
        "eval_batch_size", 256, "Batch size of validation ranking.", **fv
    )
    flags.DEFINE_integer("epochs", 20, "Training epochs.", **fv)
    flags.DEFINE_integer(
        "steps_per_epoch",
        0,
        "Batches per epoch (0: one pass over the training users).",
        **fv,
    )
    flags.DEFINE_bool(
        "mask_padding",
        True,
        "Exclude padding labels from the loss (--nomask_padding: the "
        "original's unmasked loss).",
        **fv,
    )
    flags.DEFINE_integer(
        "num_sampled",
        0,
        "Sampled-softmax negatives per position (0: full softmax).",
        **fv,
    )
    flags.DEFINE_integer(
        "max_checkpoints", 3, "Checkpoints kept in <run_dir>/ckpt.", **fv
    )
    flags.DEFINE_string(
        "selection_metric",
        pretrain.SELECTION_METRIC,
        "Validation value that picks the best epoch: 'loss' (next-item "
        "cross-entropy of held-out users, minimised) or a ranking metric "
        "such as 'full/mrr@5' (maximised).",
        **fv,
    )
    flags.DEFINE_enum(
        "jit_compile",
        "auto",
        sorted(_JIT_CHOICES),
        "XLA-compile the train step: auto tries and falls back.",
        **fv,
    )


def config_from_flags(fv: flags.FlagValues) -> pretrain.PretrainConfig:
    if not fv.data_dir:
        raise app.UsageError("--data_dir is required.")
    return pretrain.PretrainConfig(
        data_dir=fv.data_dir,
        channels=fv.channels,
        dilations=tuple(int(d) for d in fv.dilations),
        kernel_size=fv.kernel_size,
        batch_size=fv.batch_size,
        eval_batch_size=fv.eval_batch_size,
        learning_rate=fv.learning_rate,
        epochs=fv.epochs,
        seed=fv.seed,
        mask_padding=fv.mask_padding,
        num_sampled=fv.num_sampled,
        log_every_steps=fv.log_every_steps,
        checkpoint_every_steps=fv.checkpoint_every_steps,
        max_checkpoints=fv.max_checkpoints,
        steps_per_epoch=fv.steps_per_epoch,
        jit_compile=_JIT_CHOICES[fv.jit_compile],
        selection_metric=fv.selection_metric,
    )


def run(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """Runs the pretraining the parsed flags describe; returns its results."""
    config = config_from_flags(flag_values)
    info = dataset_info.DatasetInfo.load(config.data_dir)
    run_dir = common_flags.resolve_run_dir(
        f"pretrain-{info.name or 'dataset'}", flag_values
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


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    run(flag_values)


if __name__ == "__main__":
    define_flags()
    app.run(main)
