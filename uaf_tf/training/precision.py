"""Numeric precision of training and serving: Keras dtype policies.

`TrainingConfig.precision` (flag `--precision`) picks the global Keras
dtype policy the model is built under:

- `"float32"` (default): every weight and computation in float32.
- `"mixed_bfloat16"`: weights in float32, the layers' matmuls and
  convolutions in bfloat16 (fast on CPUs with AVX512_BF16 / AMX, and on
  TPUs and recent GPUs). Policy logits, the policy samplers, scores, losses,
  rewards and metrics stay float32 (`UAFRecommender.policy_logits`,
  `samplers.Sampler`, `FinetuneRecommender.score_items`,
  `SequencePretrainer._logits`), so only the network body runs in
  bfloat16. bfloat16 has float32's exponent range: no loss scaling.

A layer takes the global policy when it is constructed, so models are
built inside `policy_scope`; a model saved under a policy keeps it in its
`model.json` (each layer's config names its dtype policy), and
`load_pretrained_backbone(..., precision=...)` rebuilds a pretrained
backbone under another one.
"""

import contextlib

import keras

FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"
PRECISIONS = (FLOAT32, MIXED_BFLOAT16)


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. "
            f"Received: precision={precision!r}"
        )


@contextlib.contextmanager
def policy_scope(precision: str | None):
    """Keras's global dtype policy is `precision` inside the block.

    Args:
        precision: one of `PRECISIONS`, or None to keep the global policy
            as it is.
    """
    if precision is None:
        yield
        return
    check_precision(precision)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def respec(spec, precision: str):
    """A copy of a serialised model `spec` whose layers use `precision`.

    Every dtype policy of the spec (`{"class_name": "DTypePolicy", "config":
    {"name": ...}}`) named one of `PRECISIONS` is renamed `precision`; ints
    and other policies are kept. For loading a backbone saved under one
    precision to fine-tune it under another (the weights are float32 under
    both).
    """
    check_precision(precision)
    if isinstance(spec, list):
        return [respec(item, precision) for item in spec]
    if not isinstance(spec, dict):
        return spec
    if (
        spec.get("class_name") == "DTypePolicy"
        and spec.get("config", {}).get("name") in PRECISIONS
    ):
        return {**spec, "config": {**spec["config"], "name": precision}}
    return {key: respec(value, precision) for key, value in spec.items()}
