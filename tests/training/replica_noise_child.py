"""Child process of `distribute_test.test_replica_noise_*`: draws noise under
MirroredStrategy on two logical CPU devices and writes it as JSON.

Logical devices must be configured before TensorFlow initialises, hence a
process of its own:

    python tests/training/replica_noise_child.py DATA_DIR OUT_JSON

`OUT_JSON` holds, per sampler (`gumbel`: the relaxed sample `alpha` of Eq.
10; `rl`: UAF-RL's sampled actions), `replicas` (the draw of each replica,
two calls in a row), `again` (the same from a fresh sampler of the same
seed) and `single` (the draw of one process without a strategy, same seed,
whole global batch); and `reward_negatives`: the `reward_negatives` each
replica gets of the first distributed batch of a seeded pipeline, twice.
"""

import json
import sys

# Global batch B, blocks N of the draws.
BATCH, BLOCKS, SEED = 8, 4, 7


def main(data_dir: str, out_path: str) -> None:
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from uaf_tf.data import dataset_info
    from uaf_tf.data import pipelines
    from uaf_tf.layers import samplers
    from uaf_tf.training import distribution

    strategy = distribution.make_strategy(distribution.MIRRORED)
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    # Equal logits on every row: any difference between rows is noise.
    logits = tf.zeros([BATCH, BLOCKS, 2])
    draw_fns = {
        "gumbel": (
            lambda: samplers.GumbelSampler(seed=SEED),
            lambda sampler, rows: sampler.relaxed_sample(rows)[..., 1],
        ),
        "rl": (
            lambda: samplers.SelfCriticalSampler(seed=SEED),
            lambda sampler, rows: sampler(rows, training=True),
        ),
    }
    out = {}
    for name, (make, draw) in draw_fns.items():

        def replica_draws():
            with strategy.scope():
                sampler = make()
            local = strategy.experimental_distribute_values_from_function(
                lambda context: logits[: BATCH // 2]
            )
            step = tf.function(
                lambda v: strategy.run(lambda rows: draw(sampler, rows), (v,))
            )
            return [
                [
                    t.numpy().tolist()
                    for t in strategy.experimental_local_results(step(local))
                ]
                for _ in range(2)
            ]

        single = make()
        out[name] = {
            "replicas": replica_draws(),
            "again": replica_draws(),
            "single": [draw(single, logits).numpy().tolist() for _ in range(2)],
        }

    def first_negatives():
        dataset = distribution.distribute_dataset(
            strategy,
            lambda: pipelines.finetune_train_dataset(
                data_dir, BATCH, seed=SEED, num_reward_negatives=5
            ),
        )
        batch = next(iter(dataset))
        return [
            t.numpy().tolist()
            for t in strategy.experimental_local_results(
                batch[dataset_info.REWARD_NEGATIVES]
            )
        ]

    out["reward_negatives"] = [first_negatives(), first_negatives()]
    single_batch = next(
        iter(
            pipelines.finetune_train_dataset(
                data_dir, BATCH, seed=SEED, num_reward_negatives=5
            )
        )
    )
    out["reward_negatives_single"] = (
        single_batch[dataset_info.REWARD_NEGATIVES].numpy().tolist()
    )
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
