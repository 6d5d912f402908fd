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


def test_examples_use_real_vocabulary_ids(vocabs):
    examples = warmup.warmup_examples(*vocabs, seq_len=SEQ_LEN)
    assert [name for name, _ in examples] == [
        keys.SERVE,
        keys.SERVE,
        keys.SCORE_ITEMS,
    ]
    assert examples[0][1][keys.SOURCE_ITEMS].tolist() == [SOURCE[:SEQ_LEN]]
    # The batch of two pads its short row with "" to the same length.
    assert examples[1][1][keys.SOURCE_ITEMS].tolist() == [
        SOURCE[:SEQ_LEN],
        SOURCE[:2] + ["", ""],
    ]
    assert examples[2][1][keys.CANDIDATE_ITEMS].tolist() == [TARGET[:5]]


def test_records_are_prediction_logs(vocabs, tmp_path):
    examples = warmup.warmup_examples(*vocabs, seq_len=SEQ_LEN)
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
