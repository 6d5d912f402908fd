import sys

import numpy as np
import pytest
import tensorflow as tf

from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving import warmup

prediction_log_pb2 = pytest.importorskip(
    "tensorflow_serving.apis.prediction_log_pb2"
)

SOURCE = [f"s{n}" for n in range(1, 9)]
TARGET = [f"t{n}" for n in range(1, 9)]
SEQ_LEN = 4


@pytest.fixture
def vocabs(tmp_path):
    source = tmp_path / "source_vocab.txt"
    target = tmp_path / "target_vocab.txt"
    source.write_text("".join(f"{s}\n" for s in SOURCE))
    target.write_text("".join(f"{t}\n" for t in TARGET))
    return str(source), str(target)


def test_examples_cover_every_batch_size_with_real_ids(vocabs):
    sizes = (1, 3, 8)
    examples = warmup.warmup_examples(*vocabs, SEQ_LEN, batch_sizes=sizes)
    assert [
        (name, len(inputs[keys.SOURCE_ITEMS])) for name, inputs in examples
    ] == [
        (keys.SERVE, 1),
        (keys.SCORE_ITEMS, 1),
        (keys.SERVE, 3),
        (keys.SCORE_ITEMS, 3),
        (keys.SERVE, 8),
        (keys.SCORE_ITEMS, 8),
    ]
    for name, inputs in examples:
        rows = inputs[keys.SOURCE_ITEMS]
        # Exactly L entries per row (what a batching server needs), real
        # ids or the padding token.
        assert rows.shape == (len(rows), SEQ_LEN)
        assert set(rows.ravel()) <= set(SOURCE) | {""}
        for input_name, array in inputs.items():
            assert len(array) == len(rows), input_name  # one row per user
    _, serve_3 = examples[2]
    assert (
        serve_3[keys.SOURCE_ITEMS].tolist()
        == [
            SOURCE[0:4],
            ["", ""] + SOURCE[1:3],  # odd rows: half padding
            SOURCE[2:6],
        ]
    )
    assert serve_3[keys.EXCLUDE_HISTORY].tolist() == [True, False, True]
    assert examples[3][1][keys.CANDIDATE_ITEMS].tolist() == [TARGET[:5]] * 3


def test_bad_batch_sizes_are_rejected(vocabs):
    with pytest.raises(ValueError, match="batch_sizes"):
        warmup.warmup_examples(*vocabs, SEQ_LEN, batch_sizes=(0, 4))


def test_records_are_prediction_logs(vocabs, tmp_path):
    examples = warmup.warmup_examples(*vocabs, SEQ_LEN, batch_sizes=(1, 2))
    path = warmup.write_warmup_requests(str(tmp_path), "uaf", examples)
    assert path == str(tmp_path / "assets.extra" / "tf_serving_warmup_requests")
    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    assert len(records) == len(examples)
    for record, (signature_name, inputs) in zip(records, examples):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        assert request.model_spec.name == "uaf"
        assert request.model_spec.signature_name == signature_name
        assert set(request.inputs) == set(inputs)
        for name, array in inputs.items():
            decoded = tf.make_ndarray(request.inputs[name])
            if array.dtype == bool:
                assert decoded.dtype == bool
                np.testing.assert_array_equal(decoded, array)
            else:
                np.testing.assert_array_equal(
                    decoded, np.vectorize(str.encode)(array.astype(str))
                )


def test_missing_serving_api_skips_with_warning(vocabs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    warnings = []
    monkeypatch.setattr(
        warmup.logging, "warning", lambda msg, *a: warnings.append(msg)
    )
    examples = warmup.warmup_examples(*vocabs, seq_len=SEQ_LEN)
    assert warmup.write_warmup_requests(str(tmp_path), "uaf", examples) is None
    assert len(warnings) == 1 and "warm-up" in warnings[0]
    assert not (tmp_path / "assets.extra").exists()
