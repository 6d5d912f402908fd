"""Pretrains, then fine-tunes with UAF-Gumbel, under a `--strategy`.

One process of the distributed checks (`tests/training/distribute*_test.py`,
`launch/multiworker_demo.sh`): run it once per worker with `TF_CONFIG` set
(`--strategy=multi_worker`), or alone (`default`, or `mirrored` with
`--logical_cpus=2`). It writes `<out_dir>/pretrain` and `<out_dir>/finetune`
(worker i > 0: `<out_dir>/pretrain.worker-<i>`, ...) and
`<out_dir>/timing[.worker-<i>].json` (`examples_per_sec` of both runs).

    python launch/distributed_run.py --data_dir=DATA --out_dir=OUT \
        --strategy=mirrored --logical_cpus=2 --steps=3
"""

import argparse
import json
import os
import sys

# Exit status of a process ended by `--interrupt_after_step`.
INTERRUPTED = 3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--strategy", default="default")
    parser.add_argument(
        "--logical_cpus",
        type=int,
        default=0,
        help="split the CPU into this many logical devices (0: no split)",
    )
    parser.add_argument(
        "--steps", type=int, default=0, help="steps per epoch (0: all)"
    )
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--dilations", default="1,2")
    parser.add_argument("--method", default="gumbel")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--checkpoint_every_steps", type=int, default=0)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs in --out_dir from their latest checkpoints",
    )
    parser.add_argument(
        "--interrupt_after_step",
        type=int,
        default=0,
        help=(
            "test hook: end the process (status 3, no clean-up, like a "
            "kill) right after its first checkpoint of this global step"
        ),
    )
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.logical_cpus:
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu,
            [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus,
        )
    from uaf_tf.training import distribution
    from uaf_tf.training import finetune
    from uaf_tf.training import pretrain
    from uaf_tf.training import trainer

    if args.interrupt_after_step:
        _interrupt_after(trainer, args.interrupt_after_step)
    training = trainer.TrainingConfig(
        batch_size=args.batch_size,
        eval_batch_size=64,
        learning_rate=args.learning_rate,
        epochs=1,
        steps_per_epoch=args.steps,
        log_every_steps=0,
        checkpoint_every_steps=args.checkpoint_every_steps,
        jit_compile=False,
        strategy=args.strategy,
    )
    dilations = tuple(int(d) for d in args.dilations.split(","))
    pretrain_dir = os.path.join(args.out_dir, "pretrain")
    pretrained = pretrain.run_pretraining(
        pretrain.PretrainConfig(
            data_dir=args.data_dir,
            channels=args.channels,
            dilations=dilations,
            training=training,
        ),
        pretrain_dir,
        resume=args.resume,
    )
    finetuned = finetune.run_finetuning(
        finetune.FinetuneConfig(
            data_dir=args.data_dir,
            # Each worker fine-tunes its own (identical) pretrained model.
            pretrained=distribution.worker_run_dir(pretrain_dir),
            method=args.method,
            training=training,
        ),
        os.path.join(args.out_dir, "finetune"),
        resume=args.resume,
    )
    index = distribution.worker_index()
    name = "timing.json" if index == 0 else f"timing.worker-{index}.json"
    with open(os.path.join(args.out_dir, name), "w") as f:
        json.dump(
            {
                "pretrain_examples_per_sec": pretrained[
                    "train_examples_per_sec"
                ],
                "finetune_examples_per_sec": finetuned[
                    "train_examples_per_sec"
                ],
            },
            f,
        )


def _interrupt_after(trainer, step: int) -> None:
    """Ends the process right after the first checkpoint of `step`."""
    save = trainer._Loop._save

    def save_then_stop(loop, saved_step):
        save(loop, saved_step)
        if saved_step == step:
            sys.stdout.flush()
            os._exit(INTERRUPTED)

    trainer._Loop._save = save_then_stop


if __name__ == "__main__":
    main()


def weight_differences(path_a: str, path_b: str) -> dict:
    """How far the weights of two `.weights.h5` files of one model differ.

    Returns `max_abs` (max |a - b| over every element), `max_rel` (`max_abs`
    over the largest |b|: the model-level relative difference) and
    `max_rel_per_tensor` (max over weight tensors of max |a - b| / max |b|),
    b being the reference.
    """
    import h5py
    import numpy as np

    arrays = []
    for path in (path_a, path_b):
        found = {}
        with h5py.File(path, "r") as f:
            f.visititems(
                lambda name, obj: (
                    found.__setitem__(name, np.array(obj, dtype=np.float64))
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
        arrays.append(found)
    a, b = arrays
    if sorted(a) != sorted(b) or not a:
        raise ValueError(f"{path_a} and {path_b} hold different weights.")
    max_abs = largest = per_tensor = 0.0
    for name in a:
        diff = float(np.abs(a[name] - b[name]).max(initial=0.0))
        scale = float(np.abs(b[name]).max(initial=0.0))
        max_abs = max(max_abs, diff)
        largest = max(largest, scale)
        per_tensor = max(per_tensor, diff / max(scale, 1e-12))
    return {
        "max_abs": max_abs,
        "max_rel": max_abs / max(largest, 1e-12),
        "max_rel_per_tensor": per_tensor,
    }
