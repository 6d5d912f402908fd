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


DEFAULT_BATCH_SIZES = (1, 2)


def warmup_examples(
    source_vocab_path: str,
    target_vocab_path: str,
    seq_len: int,
    batch_sizes=DEFAULT_BATCH_SIZES,
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Realistic requests: `(signature_name, {input_name: array})`.

    One request per signature and batch size in `batch_sizes` (pass the
    server's allowed batch sizes, `server_config.BatchingConfig`, so every
    shape a batching server runs is warmed). Every input has one row per
    user, as TF Serving's batching requires, and histories are exactly L
    entries wide (short ones padded with the padding token ""), as the
    batching configuration asks clients to send them. `exclude_history`
    alternates between rows.
    """
    sizes = tuple(int(b) for b in batch_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(
            "`batch_sizes` must be positive integers. "
            f"Received: batch_sizes={batch_sizes}"
        )
    source = read_vocab_head(source_vocab_path, 2 * seq_len)
    target = read_vocab_head(target_vocab_path, 5)

    def history(row):
        # Rotate through the vocabulary; odd rows are half padding.
        items = [source[(row + j) % len(source)] for j in range(seq_len)]
        if row % 2:
            keep = max(1, seq_len // 2)
            items = [keys.PADDING_TOKEN] * (seq_len - keep) + items[:keep]
        return items

    def strings(rows):
        return np.array(rows, dtype=object)

    examples = []
    for size in sizes:
        histories = strings([history(row) for row in range(size)])
        examples.append(
            (
                keys.SERVE,
                {
                    keys.SOURCE_ITEMS: histories,
                    keys.EXCLUDE_HISTORY: np.arange(size) % 2 == 0,
                },
            )
        )
        examples.append(
            (
                keys.SCORE_ITEMS,
                {
                    keys.SOURCE_ITEMS: histories,
                    keys.CANDIDATE_ITEMS: strings([target] * size),
                },
            )
        )
    return examples


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
                dtype = tf.bool if array.dtype == bool else tf.string
                request.inputs[input_name].CopyFrom(
                    tf.make_tensor_proto(array, dtype=dtype)
                )
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
