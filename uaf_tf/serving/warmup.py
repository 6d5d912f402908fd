"""TF Serving warm-up requests (`assets.extra/tf_serving_warmup_requests`).

TF Serving replays these `PredictionLog` records when it loads a version,
before marking it available, so the first real request does not pay for
graph optimisation and table initialisation. They are built from real ids of
the model's own vocabularies. The protos come from the optional
`tensorflow-serving-api` package (`pip install uaf-tf[serving]`); without it
the export still works and only the warm-up file is skipped.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving.id_lookup import read_vocab_head

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def warmup_examples(
    source_vocab_path: str, target_vocab_path: str, seq_len: int
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """A few realistic requests: `(signature_name, {input_name: array})`.

    Covers both signatures, a batch of one, and a batch of two whose shorter
    row is padded with the padding token "".
    """
    source = read_vocab_head(source_vocab_path, seq_len)
    target = read_vocab_head(target_vocab_path, 5)
    short = source[: max(1, len(source) // 2)]
    padded_short = short + [keys.PADDING_TOKEN] * (len(source) - len(short))

    def strings(rows):
        return np.array(rows, dtype=object)

    return [
        (keys.SERVE, {keys.SOURCE_ITEMS: strings([source])}),
        (keys.SERVE, {keys.SOURCE_ITEMS: strings([source, padded_short])}),
        (
            keys.SCORE_ITEMS,
            {
                keys.SOURCE_ITEMS: strings([source]),
                keys.CANDIDATE_ITEMS: strings([target]),
            },
        ),
    ]


def write_warmup_requests(
    export_dir: str,
    model_name: str,
    examples: list[tuple[str, dict[str, np.ndarray]]],
) -> str | None:
    """Writes `examples` as `PredictionLog` records into `export_dir`.

    Args:
        export_dir: str, the SavedModel directory (the version directory).
        model_name: str, the model name the requests address.
        examples: output of `warmup_examples`.

    Returns:
        The path written, or None (with a logged warning) when
        `tensorflow-serving-api` is not installed.
    """
    try:
        from tensorflow_serving.apis import model_pb2
        from tensorflow_serving.apis import predict_pb2
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError:
        logging.warning(
            "tensorflow-serving-api is not installed (pip install "
            "'uaf-tf[serving]'): skipped writing TF Serving warm-up requests."
        )
        return None
    warmup_dir = os.path.join(export_dir, WARMUP_DIR)
    tf.io.gfile.makedirs(warmup_dir)
    path = os.path.join(warmup_dir, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in examples:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(
                    name=model_name, signature_name=signature_name
                )
            )
            for input_name, array in inputs.items():
                request.inputs[input_name].CopyFrom(
                    tf.make_tensor_proto(array, dtype=tf.string)
                )
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
