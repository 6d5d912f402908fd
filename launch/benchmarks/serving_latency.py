r"""Latency and throughput of the exported SavedModel, as TF Serving runs it.

    python launch/benchmarks/serving_latency.py            # standard shape
    python launch/benchmarks/serving_latency.py --saved_model_dir=exports/uaf/1

Without `--saved_model_dir` it builds a randomly initialised UAFRecommender
of the standard shape (C=128, 8 NextItNet blocks, L=30, 20K source / 5K
target items; random weights time the same as trained ones), exports it with
`uaf_tf.serving.export_saved_model` into a temporary directory, and times
that. The timed path is the one a server runs: `tf.saved_model.load` + the
`serving_default` signature, string ids in, top-K ids out. Reports batch-1
latency p50/p99 and batch-256 throughput (users/s). Not a test.
"""

import os
import platform
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

# Run as a script: the repository root, for `launch.benchmarks`.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[os.pardir] * 3)))
from launch.benchmarks import interleave
from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import PAPER_DILATIONS
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import UAFRecommender
from uaf_tf.serving import export_saved_model
from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving.id_lookup import read_vocab_head


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values`."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_string(
        "saved_model_dir",
        None,
        "Exported version dir to time; default: export a random model of "
        "the shape below.",
        **fv,
    )
    flags.DEFINE_string(
        "method", "gumbel", "UAF method of the random model.", **fv
    )
    flags.DEFINE_integer("channels", 128, "C of the random model.", **fv)
    flags.DEFINE_integer(
        "num_blocks", 8, "N, blocks of the random model.", **fv
    )
    flags.DEFINE_integer("seq_len", 30, "L of the random model.", **fv)
    flags.DEFINE_integer("num_source_items", 20_000, "Source items.", **fv)
    flags.DEFINE_integer("num_target_items", 5_000, "Target items.", **fv)
    flags.DEFINE_integer("top_k", 10, "K of the export.", **fv)
    flags.DEFINE_integer("latency_requests", 500, "Timed batch-1 calls.", **fv)
    flags.DEFINE_integer("batch_size", 256, "Throughput batch size.", **fv)
    flags.DEFINE_integer("throughput_batches", 40, "Timed large batches.", **fv)
    flags.DEFINE_integer("seed", 0, "Seeds the model and the requests.", **fv)
    flags.DEFINE_bool(
        "xla_serving",
        False,
        "Export the random model with its forward pass XLA-compiled "
        "(uaf-export --xla_serving).",
        **fv,
    )
    flags.DEFINE_integer(
        "compare_rounds",
        0,
        "If > 0: export the random model once per --compare_exports and "
        "time batch-1 requests of each in this many interleaved rounds "
        "(--latency_requests / rounds requests each per round); prints "
        "p50 wall and CPU ms of each and, for each after the first, the "
        "median of the rounds' p50 ratios to the first.",
        **fv,
    )
    flags.DEFINE_alias(
        "compare_xla_rounds", "compare_rounds", flag_values=flag_values
    )
    flags.DEFINE_list(
        "compare_exports",
        ["graph", "xla"],
        "The exports --compare_rounds times, the first the reference: "
        "`graph`, `xla` (uaf-export --xla_serving), `graph_constants` and "
        "`xla_constants` (the same with --constant_weights).",
        **fv,
    )


# --compare_exports names -> (jit_compile, constant_weights) of the export.
EXPORTS = {
    "graph": (False, False),
    "xla": (True, False),
    "graph_constants": (False, True),
    "xla_constants": (True, True),
}


def export_random_model(
    fv, out_dir: str, jit_compile: bool = False, constant_weights: bool = False
) -> str:
    """Writes vocabularies + the SavedModel of a random model (its forward
    pass XLA-compiled when `jit_compile`, its weights constants when
    `constant_weights`); returns it."""
    os.makedirs(out_dir, exist_ok=True)
    vocab_paths = {}
    for name, count in (
        ("source", fv.num_source_items),
        ("target", fv.num_target_items),
    ):
        vocab_paths[name] = os.path.join(out_dir, f"{name}_vocab.txt")
        with open(vocab_paths[name], "w") as f:
            f.write("".join(f"{name[0]}{n:06d}\n" for n in range(1, count + 1)))
    keras.utils.set_random_seed(fv.seed)
    dilations = (PAPER_DILATIONS * fv.num_blocks)[: fv.num_blocks]
    backbone = NextItNetBackbone(
        fv.num_source_items + 1, fv.channels, dilations=dilations
    )
    backbone.build((None, fv.seq_len))
    model = UAFRecommender.from_pretrained(
        backbone,
        fv.num_target_items + 1,
        seq_len=fv.seq_len,
        sampler=samplers.from_options(fv.method, seed=fv.seed),
    )
    export_dir = os.path.join(out_dir, "1")
    export_saved_model(
        model,
        export_dir,
        vocab_paths["source"],
        vocab_paths["target"],
        fv.seq_len,
        fv.top_k,
        jit_compile=jit_compile,
        constant_weights=constant_weights,
    )
    return export_dir


def random_histories(source_ids, batch, seq_len, rng):
    """`[batch, seq_len]` raw-id strings drawn from the vocabulary."""
    return tf.constant(
        rng.choice(np.array(source_ids, dtype=object), size=(batch, seq_len))
    )


def benchmark(export_dir: str, fv) -> dict:
    serve = tf.saved_model.load(export_dir).signatures[keys.SERVE]
    source_ids = read_vocab_head(
        os.path.join(export_dir, "assets", "source_vocab.txt"), 100_000
    )
    seq_len = fv.seq_len
    rng = np.random.default_rng(fv.seed)
    single = [random_histories(source_ids, 1, seq_len, rng) for _ in range(50)]
    large = [
        random_histories(source_ids, fv.batch_size, seq_len, rng)
        for _ in range(4)
    ]
    exclude = tf.constant([True])  # the SignatureDef default
    for request in single[:10] + large[:2]:  # warm-up, untimed
        serve(source_items=request, exclude_history=exclude)

    latencies = []
    for i in range(fv.latency_requests):
        request = single[i % len(single)]
        start = time.perf_counter()
        serve(source_items=request, exclude_history=exclude)[
            keys.TOP_K_ITEMS
        ].numpy()
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(fv.throughput_batches):
        serve(source_items=large[i % len(large)], exclude_history=exclude)[
            keys.TOP_K_ITEMS
        ].numpy()
    elapsed = time.perf_counter() - start
    latencies_ms = 1e3 * np.array(latencies)
    return {
        "batch1_p50_ms": float(np.percentile(latencies_ms, 50)),
        "batch1_p99_ms": float(np.percentile(latencies_ms, 99)),
        "batch1_mean_ms": float(latencies_ms.mean()),
        "throughput_users_per_s": fv.throughput_batches
        * fv.batch_size
        / elapsed,
    }


def _directory_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def compare_exports(fv, out_dir: str) -> dict:
    """Batch-1 latency of the `--compare_exports` exports, interleaved.

    Returns:
        `{name: {...} for each export, "round_ratios": {name: [...]},
        "median_ratio": {name: float}}`: per export the p50 wall and CPU ms
        over all its requests and the SavedModel's size
        (`saved_model_mb`); the ratios are each export's p50 over the
        first export's, per round, for every export after the first.
    """
    unknown = set(fv.compare_exports) - set(EXPORTS)
    if unknown or len(fv.compare_exports) < 2:
        raise app.UsageError(
            f"--compare_exports needs 2 or more of {sorted(EXPORTS)}. "
            f"Received: {fv.compare_exports}"
        )
    serves, sizes, singles = {}, {}, None
    for name in fv.compare_exports:
        jit, constants = EXPORTS[name]
        export_dir = export_random_model(
            fv, os.path.join(out_dir, name), jit, constants
        )
        serves[name] = tf.saved_model.load(export_dir).signatures[keys.SERVE]
        sizes[name] = _directory_bytes(export_dir)
        if singles is None:
            source_ids = read_vocab_head(
                os.path.join(export_dir, "assets", "source_vocab.txt"), 100_000
            )
            rng = np.random.default_rng(fv.seed)
            singles = [
                random_histories(source_ids, 1, fv.seq_len, rng)
                for _ in range(50)
            ]
    exclude = tf.constant([True])
    per_round = max(1, fv.latency_requests // fv.compare_rounds)
    wall = {name: [] for name in serves}
    cpu = {name: [] for name in serves}

    def timer(name):
        def run():
            serve, times = serves[name], []
            for i in range(per_round):
                request = singles[i % len(singles)]
                start, cpu_start = time.perf_counter(), time.process_time()
                serve(source_items=request, exclude_history=exclude)[
                    keys.TOP_K_ITEMS
                ].numpy()
                times.append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - cpu_start)
            wall[name] += times
            return float(np.median(times))

        return run

    for name in serves:  # warm-up (XLA compiles here), untimed
        for request in singles[:10]:
            serves[name](source_items=request, exclude_history=exclude)
    figures = interleave.rounds(
        {name: timer(name) for name in serves}, fv.compare_rounds
    )
    result = {
        name: {
            "p50_ms": float(1e3 * np.median(wall[name])),
            "p99_ms": float(1e3 * np.percentile(wall[name], 99)),
            "cpu_p50_ms": float(1e3 * np.median(cpu[name])),
            "requests": len(wall[name]),
            "saved_model_mb": sizes[name] / 2**20,
        }
        for name in serves
    }
    reference, *others = fv.compare_exports
    result["round_ratios"] = {
        name: interleave.round_ratios(figures[name], figures[reference])
        for name in others
    }
    result["median_ratio"] = {
        name: interleave.median_ratio(figures[name], figures[reference])
        for name in others
    }
    return result


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    fv = flag_values
    print("command: " + " ".join([os.path.basename(sys.executable)] + sys.argv))
    if fv.compare_rounds > 0:
        with tempfile.TemporaryDirectory() as tmp:
            result = compare_exports(fv, tmp)
        print(
            f"random UAF-{fv.method} (C={fv.channels}, N={fv.num_blocks}, "
            f"L={fv.seq_len}), batch 1, {fv.compare_rounds} interleaved "
            f"rounds; machine {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.1f}"
        )
        reference, *others = fv.compare_exports
        for name in fv.compare_exports:
            r = result[name]
            print(
                f"  {name:<15} p50 {r['p50_ms']:.2f} ms, p99 "
                f"{r['p99_ms']:.2f} ms, CPU p50 {r['cpu_p50_ms']:.2f} ms "
                f"({r['requests']} requests; SavedModel "
                f"{r['saved_model_mb']:.1f} MiB)"
            )
        for name in others:
            print(
                f"  {name} / {reference} batch-1 p50: "
                f"{result['median_ratio'][name]:.2f} (median of rounds: "
                + ", ".join(f"{x:.2f}" for x in result["round_ratios"][name])
                + ")"
            )
        return
    with tempfile.TemporaryDirectory() as tmp:
        if fv.saved_model_dir:
            export_dir, what = fv.saved_model_dir, fv.saved_model_dir
        else:
            export_dir = export_random_model(fv, tmp, fv.xla_serving)
            what = (
                f"random UAF-{fv.method} (C={fv.channels}, N={fv.num_blocks} "
                f"blocks, L={fv.seq_len}, {fv.num_source_items} source / "
                f"{fv.num_target_items} target items, K={fv.top_k})"
            )
        results = benchmark(export_dir, fv)
    print(f"model: {what}")
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, tensorflow {tf.__version__}, "
        f"GPUs: {len(tf.config.list_physical_devices('GPU'))}"
    )
    print(
        f"batch 1   ({fv.latency_requests} requests): "
        f"p50 {results['batch1_p50_ms']:.2f} ms, "
        f"p99 {results['batch1_p99_ms']:.2f} ms, "
        f"mean {results['batch1_mean_ms']:.2f} ms"
    )
    print(
        f"batch {fv.batch_size} ({fv.throughput_batches} batches): "
        f"{results['throughput_users_per_s']:.0f} users/s"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
