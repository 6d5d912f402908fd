r"""Prints the real requests and responses quoted in docs/serving.md.

    python launch/serving_examples.py                     # tiny run, trained
    python launch/serving_examples.py --run_dir=checkpoints/<run>

Without `--run_dir` it trains the tiny pipeline of tests/cli/export_test.py
(synthetic data: 120 users, 60 source / 40 target items, L=12; pretraining
and UAF-Gumbel fine-tuning, C=8, 2 blocks, 1 epoch each) in a temporary
directory. It exports the run with `export_run` (K=5), loads the version
with `tf.saved_model.load` and sends each request through the signature a
TF Serving request names. It prints each request as TF Serving's REST API
takes it and the answer laid out as the REST API lays it out
("instances" -> "predictions", "inputs" -> "outputs"), then the same call
as a gRPC `PredictRequest` / `PredictResponse` in protobuf text format.
Floats are rounded to 6 significant digits. No server is involved: the
server's JSON and proto encodings are reproduced, not captured.
"""

import json
import os
import sys
import tempfile

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf import testing
from uaf_tf.serving import export_run
from uaf_tf.serving import signature_keys as keys
from uaf_tf.training import finetune
from uaf_tf.training import pretrain
from uaf_tf.training import trainer

flags.DEFINE_string("run_dir", None, "Fine-tuned run; default: train one.")
flags.DEFINE_string(
    "work_dir",
    None,
    "Where the tiny run is trained (reused if it is there); default: a "
    "temporary directory.",
)
FLAGS = flags.FLAGS
TOP_K = 5


def tiny_run(root: str) -> str:
    data_dir = testing.build_tiny_dataset_dir(
        os.path.join(root, "data"),
        num_users=120,
        num_eval_negatives=20,
        min_seq_len=3,
        num_shards=1,
    )
    tiny = dict(
        training=trainer.TrainingConfig(
            epochs=1, batch_size=64, jit_compile=False, log_every_steps=0
        )
    )
    pretrain.run_pretraining(
        pretrain.PretrainConfig(
            data_dir=data_dir, channels=8, dilations=(1, 2), **tiny
        ),
        os.path.join(root, "pretrain"),
    )
    run_dir = os.path.join(root, "finetune")
    finetune.run_finetuning(
        finetune.FinetuneConfig(
            data_dir=data_dir,
            pretrained=os.path.join(root, "pretrain"),
            method="gumbel",
            **tiny,
        ),
        run_dir,
    )
    return run_dir


def _round(value):
    if value == keys.UNKNOWN_ITEM_SCORE:
        return float(f"{value:.9g}")  # the sentinel, exactly
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def call(loaded, signature, inputs):
    fn = loaded.signatures[signature]
    specs = fn.structured_input_signature[1]
    tensors = {
        name: tf.constant(value, dtype=specs[name].dtype)
        for name, value in inputs.items()
    }
    return {k: _round(v.numpy().tolist()) for k, v in fn(**tensors).items()}


def rest_row_example(loaded, signature, instances, defaults):
    """An "instances" request and its "predictions" answer."""
    inputs = {
        name: [row.get(name, defaults.get(name)) for row in instances]
        for name in instances[0]
    }
    for name, value in defaults.items():  # what TF Serving fills in
        inputs.setdefault(name, value)
    outputs = call(loaded, signature, inputs)
    predictions = [
        {name: outputs[name][b] for name in sorted(outputs)}
        for b in range(len(instances))
    ]
    request = {"signature_name": signature, "instances": instances}
    return request, {"predictions": predictions}


def grpc_example(loaded, model_name, signature, inputs):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    fn = loaded.signatures[signature]
    specs = fn.structured_input_signature[1]
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(
            tf.make_tensor_proto(value, dtype=specs[name].dtype)
        )
    outputs = fn(**{k: tf.make_ndarray(v) for k, v in request.inputs.items()})
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name in sorted(outputs):
        value = outputs[name].numpy()
        if value.dtype == np.float32:
            value = np.vectorize(lambda x: float(f"{x:.6g}"))(value)
            value = value.astype(np.float32)
        # TF Serving's default: typed value fields (`AsProtoField`).
        tensor = tf.make_tensor_proto(value)
        if value.dtype == np.float32:
            tensor.ClearField("tensor_content")
            tensor.float_val.extend(value.ravel().tolist())
        response.outputs[name].CopyFrom(tensor)
    return request, response


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as root:
        run_dir = FLAGS.run_dir
        if run_dir is None:
            work_dir = FLAGS.work_dir or root
            run_dir = os.path.join(work_dir, "finetune")
            if not os.path.exists(os.path.join(run_dir, "results.json")):
                run_dir = tiny_run(work_dir)
        version_dir = export_run(
            run_dir, os.path.join(root, "exports"), version=1, top_k=TOP_K
        )
        loaded = tf.saved_model.load(version_dir)
        with open(os.path.join(version_dir, "assets", "source_vocab.txt")) as f:
            source = f.read().splitlines()
        with open(os.path.join(version_dir, "assets", "target_vocab.txt")) as f:
            target = set(f.read().splitlines())

        print(f"run: {'tiny (trained here)' if not FLAGS.run_dir else run_dir}")
        # A history holding two items this user's top K would otherwise
        # hold (raw ids of both vocabularies), so exclusion shows.
        base = source[5:8]
        top = call(
            loaded,
            keys.SERVE,
            {keys.SOURCE_ITEMS: [base], keys.EXCLUDE_HISTORY: [False]},
        )[keys.TOP_K_ITEMS][0]
        seen = [item for item in top if item in source][:2]
        history = base + seen
        short = source[10:12] + [""] * 3
        shared = [item for item in source if item in target]
        print(
            f"history items also in the top {TOP_K} without exclusion: {seen}"
        )
        default_on = {keys.EXCLUDE_HISTORY: [True]}

        print("\n=== REST, row format, exclude_history omitted (default) ===")
        request, response = rest_row_example(
            loaded,
            keys.SERVE,
            [{keys.SOURCE_ITEMS: history}, {keys.SOURCE_ITEMS: short}],
            default_on,
        )
        print(_json(request))
        print(_json(response))

        print("\n=== REST, row format, exclude_history false ===")
        request, response = rest_row_example(
            loaded,
            keys.SERVE,
            [{keys.SOURCE_ITEMS: history, keys.EXCLUDE_HISTORY: False}],
            {},
        )
        print(_json(request))
        print(_json(response))

        print("\n=== REST, columnar format, score_items ===")
        candidates = [sorted(target)[0], shared[0], "never-seen"]
        inputs = {
            keys.SOURCE_ITEMS: [history],
            keys.CANDIDATE_ITEMS: [candidates],
        }
        outputs = call(loaded, keys.SCORE_ITEMS, inputs)
        print(_json({"signature_name": keys.SCORE_ITEMS, "inputs": inputs}))
        print(_json({"outputs": outputs}))

        print("\n=== gRPC PredictRequest / PredictResponse (text format) ===")
        request, response = grpc_example(
            loaded,
            "uaf",
            keys.SERVE,
            {keys.SOURCE_ITEMS: [history], keys.EXCLUDE_HISTORY: [True]},
        )
        print(request)
        print("---")
        print(response)
    print("command: " + " ".join([os.path.basename(sys.executable)] + sys.argv))


if __name__ == "__main__":
    app.run(main)
