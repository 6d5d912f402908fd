r"""Load test: N concurrent callers on the exported SavedModel.

    python launch/benchmarks/serving_load.py                # random model
    python launch/benchmarks/serving_load.py --saved_model_dir=exports/uaf/1

N threads (`--threads`) share one `tf.saved_model.load`ed model, the closest
stand-in here for TF Serving's own session, and call `serving_default` with
requests of each batch size in `--batch_sizes` (the export's batching
configuration), histories of exactly L raw ids. Per batch size it stops
after `--requests` calls or `--max_seconds`, whichever comes first, and
prints p50/p99 latency per request, requests/s and users/s, and each
figure relative to batch 1 of the same run.

When `tensorflow_model_server` is on PATH it also starts it on loopback
with the export's model config and batching parameters and sends the same
load to its REST port (`/v1/models/<name>:predict`, columnar "inputs"
format). The binary is not installable from the package registries this
project uses, so without it that part prints a skip line and nothing else.

Without `--saved_model_dir` it exports the randomly initialised model of
`serving_latency.py` (flags `--channels`, `--num_blocks`, ... as there).
Not a test: figures depend on the machine and on what else runs on it; the
script prints the load average so a reader can tell.
"""

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import serving_latency
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf.serving import server_config
from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving.id_lookup import read_vocab_head

MODEL_NAME = "uaf"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """`serving_latency.py`'s flags plus this script's."""
    serving_latency.define_flags(flag_values)
    fv = {"flag_values": flag_values}
    flags.DEFINE_integer("threads", 8, "Concurrent caller threads.", **fv)
    flags.DEFINE_list(
        "batch_sizes",
        [str(b) for b in server_config.BatchingConfig().batch_sizes],
        "Request batch sizes (default: the export's batching sizes).",
        **fv,
    )
    flags.DEFINE_integer(
        "requests", 400, "Calls per batch size, at most.", **fv
    )
    flags.DEFINE_float(
        "max_seconds", 20.0, "Seconds per batch size, at most.", **fv
    )


def make_requests(source_ids, batch_size, seq_len, rng, count=8):
    """`count` requests of `batch_size` histories of L raw ids."""
    pool = np.array(source_ids, dtype=object)
    return [rng.choice(pool, size=(batch_size, seq_len)) for _ in range(count)]


def run_load(call, requests, threads, max_requests, max_seconds):
    """Runs `call(request)` from `threads` threads; returns latencies (s)
    and the wall time, bounded by `max_requests` calls and `max_seconds`."""
    latencies, lock = [], threading.Lock()
    issued = [0]
    stop_at = time.perf_counter() + max_seconds

    def worker(index):
        n = index
        while time.perf_counter() < stop_at:
            with lock:
                if issued[0] >= max_requests:
                    return
                issued[0] += 1
            request = requests[n % len(requests)]
            n += threads
            start = time.perf_counter()
            call(request)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return np.array(latencies), time.perf_counter() - start


def report(label, batch_size, latencies, wall, base):
    p50, p99 = (1e3 * np.percentile(latencies, q) for q in (50, 99))
    rps = len(latencies) / wall
    users = rps * batch_size
    line = (
        f"{label} batch {batch_size:4d}: {len(latencies):4d} requests, "
        f"p50 {p50:8.2f} ms, p99 {p99:8.2f} ms, {rps:8.1f} req/s, "
        f"{users:9.0f} users/s"
    )
    if base is None:
        base = (p50, users)
    else:
        line += (
            f"  | vs batch 1: p50 x{p50 / base[0]:.1f}, "
            f"users/s x{users / base[1]:.1f}"
        )
    print(line, flush=True)
    return base


def saved_model_caller(export_dir):
    serve = tf.saved_model.load(export_dir).signatures[keys.SERVE]
    exclude = tf.constant([True])

    def call(request):
        out = serve(source_items=tf.constant(request), exclude_history=exclude)
        return out[keys.TOP_K_ITEMS].numpy()

    return call


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest_caller(port, model_name):
    url = f"http://127.0.0.1:{port}/v1/models/{model_name}:predict"

    def call(request):
        body = json.dumps(
            {
                "signature_name": keys.SERVE,
                "inputs": {
                    keys.SOURCE_ITEMS: request.tolist(),
                    keys.EXCLUDE_HISTORY: [True] * len(request),
                },
            }
        ).encode()
        post = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(post, timeout=60) as response:
            return json.load(response)["outputs"]

    return call


def start_model_server(export_base, model_name, batching):
    """Starts `tensorflow_model_server` on loopback; returns (proc, port)."""
    paths = server_config.write_server_files(export_base, model_name, batching)
    grpc_port, rest_port = _free_port(), _free_port()
    command = server_config.server_command(
        paths["model_config"],
        paths["batching_config"],
        grpc_port=grpc_port,
        rest_port=rest_port,
    )
    proc = subprocess.Popen(command)
    status_url = f"http://127.0.0.1:{rest_port}/v1/models/{model_name}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                states = json.load(response)["model_version_status"]
            if any(s["state"] == "AVAILABLE" for s in states):
                return proc, rest_port
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {proc.returncode}")
        time.sleep(0.5)
    proc.kill()
    raise TimeoutError("tensorflow_model_server did not load the model")


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    fv = flag_values
    batch_sizes = [int(b) for b in fv.batch_sizes]
    print("command: " + " ".join([os.path.basename(sys.executable)] + sys.argv))
    with tempfile.TemporaryDirectory() as tmp:
        if fv.saved_model_dir:
            export_dir = fv.saved_model_dir
        else:
            os.makedirs(os.path.join(tmp, MODEL_NAME))
            export_dir = serving_latency.export_random_model(
                fv, os.path.join(tmp, MODEL_NAME)
            )
        source_ids = read_vocab_head(
            os.path.join(export_dir, "assets", "source_vocab.txt"), 100_000
        )
        seq_len = fv.seq_len
        info_path = os.path.join(export_dir, "assets.extra", "uaf_export.json")
        if os.path.exists(info_path):  # an export_run version: its own L
            with open(info_path) as f:
                seq_len = json.load(f)["seq_len"]
        rng = np.random.default_rng(fv.seed)
        requests = {
            b: make_requests(source_ids, b, seq_len, rng) for b in batch_sizes
        }
        print(
            f"machine: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, tensorflow {tf.__version__}; load "
            "average before (1, 5, 15 min): "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        )
        print(
            f"{fv.threads} threads; per batch size at most {fv.requests} "
            f"requests or {fv.max_seconds:g} s; histories of {seq_len} ids"
        )

        call = saved_model_caller(export_dir)
        for b in batch_sizes:  # warm-up, untimed
            call(requests[b][0])
        base = None
        for b in batch_sizes:
            latencies, wall = run_load(
                call, requests[b], fv.threads, fv.requests, fv.max_seconds
            )
            base = report("saved_model", b, latencies, wall, base)
        print(
            "load average after (1, 5, 15 min): "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        )

        if shutil.which(server_config.SERVER_BINARY) is None:
            print(
                f"rest: skipped, {server_config.SERVER_BINARY} is not on "
                "PATH (not installable from this project's registries)."
            )
            return
        # <export_base>/<model_name>/<version>: serve its model directory.
        model_dir = os.path.dirname(os.path.abspath(export_dir))
        export_base, model_name = os.path.split(model_dir)
        batching = server_config.BatchingConfig(batch_sizes=tuple(batch_sizes))
        proc, port = start_model_server(export_base, model_name, batching)
        try:
            call = rest_caller(port, model_name)
            base = None
            for b in batch_sizes:
                latencies, wall = run_load(
                    call, requests[b], fv.threads, fv.requests, fv.max_seconds
                )
                base = report("rest", b, latencies, wall, base)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    define_flags()
    app.run(main)
