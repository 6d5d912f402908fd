"""mixed_bfloat16: training, fine-tuning from a float32 run, serving.

The body of the network runs in bfloat16; policy logits, sampling,
scores, losses and metrics stay float32. The checks compare a bfloat16
model with the float32 model of the same weights at bfloat16 tolerance
(8 mantissa bits: relative error ~ 2^-8 per operation).
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from uaf_tf import config_flags
from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.data import dataset_info
from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.serving import export_run
from uaf_tf.serving import signature_keys as keys
from uaf_tf.training import finetune
from uaf_tf.training import precision
from uaf_tf.training import pretrain
from uaf_tf.training import trainer

BF16 = precision.MIXED_BFLOAT16
SEQ_LEN = 6


def test_respec_renames_float_policies_only():
    def policy(name):
        return {"class_name": "DTypePolicy", "config": {"name": name}}

    spec = {
        "class_name": "M",
        "config": {
            "dtype": policy("float32"),
            "layers": [
                {"config": {"dtype": policy("mixed_bfloat16")}},
                {"config": {"dtype": policy("int32"), "input_dtype": "int32"}},
            ],
        },
    }
    out = precision.respec(spec, BF16)
    assert out["config"]["dtype"] == policy(BF16)
    assert out["config"]["layers"][0]["config"]["dtype"] == policy(BF16)
    assert out["config"]["layers"][1] == spec["config"]["layers"][1]
    assert spec["config"]["dtype"] == policy("float32")  # not modified
    with pytest.raises(ValueError, match="Received: precision='float16'"):
        precision.respec(spec, "float16")


def test_precision_is_a_checked_training_option():
    assert trainer.TrainingConfig().precision == precision.FLOAT32
    with pytest.raises(config_flags.ConfigError, match="precision"):
        trainer.TrainingConfig(precision="float16")
    config = trainer.TrainingConfig(precision=BF16)
    assert config.precision == BF16
    # The policy is set inside the scope only.
    before = keras.config.dtype_policy().name
    with precision.policy_scope(BF16):
        assert keras.config.dtype_policy().name == BF16
        assert samplers.GumbelSampler().compute_dtype == "float32"
    assert keras.config.dtype_policy().name == before


def _models(method):
    """The same random UAF model of `method` in float32 and bfloat16."""
    built = {}
    for name in (precision.FLOAT32, BF16):
        keras.utils.set_random_seed(0)
        with precision.policy_scope(name):
            backbone = NextItNetBackbone(40, 16, dilations=(1, 2))
            backbone.build((None, SEQ_LEN))
            config = finetune.FinetuneConfig(
                data_dir="",
                pretrained="",
                method=method,
                rl_curriculum_epochs=0,
                rl_num_negatives=5,
            )
            model = finetune.model_for_method(
                config, backbone, 30, seq_len=SEQ_LEN
            )
        built[name] = (config, model)
    built[BF16][1].set_weights(built[precision.FLOAT32][1].get_weights())
    return built


def _batch():
    rng = np.random.default_rng(0)
    return {
        dataset_info.SOURCE: tf.constant(
            rng.integers(1, 40, (8, SEQ_LEN)), tf.int32
        ),
        dataset_info.TARGET: tf.constant(rng.integers(1, 30, 8), tf.int32),
        dataset_info.NEGATIVE: tf.constant(rng.integers(1, 30, 8), tf.int32),
        dataset_info.REWARD_NEGATIVES: tf.constant(
            rng.integers(1, 30, (8, 5)), tf.int32
        ),
    }


@pytest.mark.parametrize("method", ["gumbel", "rl"])
def test_bf16_model_trains_and_matches_float32(method):
    built = _models(method)
    model32, model16 = built[precision.FLOAT32][1], built[BF16][1]
    conv = model16.gated_blocks[0].finetuned
    assert conv.compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model16.weights)
    batch = _batch()
    ids = batch[dataset_info.SOURCE]
    out32, out16 = model32(ids), model16(ids)
    assert out16["user_embedding"].dtype == tf.bfloat16
    assert out16["policy_logits"].dtype == tf.float32
    assert out16["policy"].dtype == tf.float32
    # The bfloat16 body: outputs within a few bfloat16 ulps of float32.
    np.testing.assert_allclose(
        out16["policy_logits"], out32["policy_logits"], rtol=0.05, atol=0.02
    )
    user32 = out32["user_embedding"].numpy()
    user16 = tf.cast(out16["user_embedding"], tf.float32).numpy()
    scale = np.abs(user32).max()
    assert np.abs(user16 - user32).max() < 0.03 * scale
    scores = model16.score_all_items(out16["user_embedding"])
    assert scores.dtype == tf.float32
    # One train step each: float32 loss and logs; the same weights move.
    changed, losses = {}, {}
    for name, (config, model) in built.items():
        task = finetune.FinetuneTask(config, model, info=None)
        before = [v.numpy() for v in model.trainable_variables]
        logs = tf.function(task.train_step)(batch)
        assert {v.dtype for v in logs.values()} == {tf.float32}
        losses[name] = float(logs["loss"])
        changed[name] = [
            not np.array_equal(b, v.numpy())
            for b, v in zip(before, model.trainable_variables, strict=True)
        ]
    assert np.isfinite(losses[BF16])
    assert losses[BF16] == pytest.approx(losses[precision.FLOAT32], rel=0.05)
    assert changed[BF16] == changed[precision.FLOAT32]
    assert sum(changed[BF16]) > 0


def _policies(spec) -> set:
    found = set()
    if isinstance(spec, list):
        for item in spec:
            found |= _policies(item)
    elif isinstance(spec, dict):
        if spec.get("class_name") == "DTypePolicy":
            found.add(spec["config"]["name"])
        for value in spec.values():
            found |= _policies(value)
    return found


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory):
    """Float32 pretraining, then UAF-Gumbel fine-tuned under bfloat16."""
    root = tmp_path_factory.mktemp("bf16")
    data_dir = testing.build_tiny_dataset_dir(str(root / "data"))
    small = dict(epochs=1, log_every_steps=0, jit_compile=False, batch_size=64)
    pretrain.run_pretraining(
        pretrain.PretrainConfig(
            data_dir=data_dir,
            channels=8,
            dilations=(1, 2),
            training=trainer.TrainingConfig(**small),
        ),
        str(root / "pretrain"),
    )
    results = finetune.run_finetuning(
        finetune.FinetuneConfig(
            data_dir=data_dir,
            pretrained=str(root / "pretrain"),
            training=trainer.TrainingConfig(**small, precision=BF16),
        ),
        str(root / "finetune"),
    )
    return root, results


def test_finetuning_under_bf16_from_a_float32_pretraining(bf16_run):
    root, results = bf16_run
    with open(root / "pretrain" / run_dir_lib.MODEL_FILE) as f:
        assert _policies(json.load(f)) == {"float32"}
    with open(root / "finetune" / run_dir_lib.MODEL_FILE) as f:
        # The body is bfloat16, the sampler float32.
        assert _policies(json.load(f)) == {BF16, "float32"}
    with open(root / "finetune" / "config.json") as f:
        assert json.load(f)["training"]["precision"] == BF16
    for key in ("sampled/mrr@5", "full/mrr@5"):
        assert 0.0 <= results["test"][key] <= 1.0


def test_bf16_export_serves_close_to_float32(bf16_run, tmp_path):
    root, _ = bf16_run
    run = str(root / "finetune")
    requests = {
        keys.SOURCE_ITEMS: tf.constant(
            [["1", "2", "3"], ["4", "5", ""]], tf.string
        ),
        keys.EXCLUDE_HISTORY: tf.constant([False, False]),
    }
    with open(os.path.join(run, dataset_info.SOURCE_VOCAB_FILE)) as f:
        vocab = [line.rstrip("\n") for line in f][:5]
    requests[keys.SOURCE_ITEMS] = tf.constant(
        [vocab[:3], vocab[3:5] + [""]], tf.string
    )
    outputs = {}
    for name in (BF16, precision.FLOAT32):
        model = run_dir_lib.load_model(run, precision=name)
        path = export_run(
            run,
            str(tmp_path / name),
            version=1,
            top_k=3,
            model=model,
        )
        serve = tf.saved_model.load(path).signatures[keys.SERVE]
        outputs[name] = {k: v.numpy() for k, v in serve(**requests).items()}
    out16, out32 = outputs[BF16], outputs[precision.FLOAT32]
    assert out16[keys.TOP_K_SCORES].dtype == np.float32
    np.testing.assert_array_equal(out16[keys.POLICY], out32[keys.POLICY])
    user32 = out32[keys.USER_EMBEDDING]
    scale = np.abs(user32).max()
    assert np.abs(out16[keys.USER_EMBEDDING] - user32).max() < 0.03 * scale
    scores32 = out32[keys.TOP_K_SCORES]
    assert np.abs(out16[keys.TOP_K_SCORES] - scores32).max() < 0.05 * (
        np.abs(scores32).max()
    )
