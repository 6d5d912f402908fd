"""Shared test harness and test data.

The harness checks the contract every `uaf_tf` layer and model keeps (in
the style of keras-hub's `run_layer_test` and `run_model_saving_test`):

- `run_layer_test`: build, output shape, weight counts, eager and
  `tf.function` outputs equal, gradients reach every trainable weight,
  `get_config`/`from_config` and registered-name round trips give equal
  outputs with copied weights.
- `run_model_saving_test`: a `.keras` file round trip gives the same class,
  the same weights and the same outputs.
- `assert_run_dir`: a run directory holds the files a run must write.

`numpy_causal_conv` is the slow reference the convolution layers are
tested against; the data helpers build planted-signal sequences and tiny
dataset directories.
"""

import os
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf


def run_layer_test(
    cls: type,
    init_kwargs: dict,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    *,
    call_kwargs: dict | None = None,
    run_gradient_check: bool = True,
    atol: float = 1e-6,
    rtol: float = 1e-6,
) -> keras.layers.Layer:
    """Checks a layer class's Keras contract; returns the layer it built.

    The layer is `cls(**init_kwargs)`, called as
    `layer(*inputs, **call_kwargs)`. Checks, in order:

    1. the call builds it, and its output has `expected_output_shape`;
    2. it holds the expected numbers of trainable and non-trainable
       weights (when given);
    3. the same call inside `tf.function` gives the eager output;
    4. every trainable weight gets a gradient of `sum(output ** 2)`;
    5. `cls.from_config(layer.get_config())` with the layer's weights has
       the same config, the same weight counts and the same output;
    6. `keras.saving.serialize_keras_object` names the class by its
       registered name, and deserialising it gives a `cls` that is built
       when the layer was, and gives the same output with copied weights.

    Args:
        cls: the layer class.
        init_kwargs: constructor arguments.
        input_data: one input tensor or array, or a tuple of positional
            call arguments (`(hidden, gate)`).
        expected_output_shape: tuple, the output shape.
        expected_num_trainable_weights: int or `None` (not checked).
        expected_num_non_trainable_weights: int or `None` (not checked).
        call_kwargs: keyword call arguments.
        run_gradient_check: bool, whether to run check 4.
        atol: absolute tolerance of the output comparisons.
        rtol: relative tolerance of the output comparisons.

    Returns:
        The layer built from `init_kwargs`, for further checks.
    """
    inputs = input_data if isinstance(input_data, tuple) else (input_data,)
    call_kwargs = call_kwargs or {}

    def call(layer):
        return layer(*inputs, **call_kwargs)

    def assert_close(actual, expected, what):
        np.testing.assert_allclose(
            np.asarray(actual),
            np.asarray(expected),
            atol=atol,
            rtol=rtol,
            err_msg=f"{cls.__name__}: {what}",
        )

    layer = cls(**init_kwargs)
    output = call(layer)
    assert layer.built, f"{cls.__name__} is not built after a call."
    assert tuple(output.shape) == tuple(expected_output_shape), (
        f"{cls.__name__} output shape {tuple(output.shape)} != "
        f"{tuple(expected_output_shape)}"
    )
    _assert_weight_counts(
        layer,
        expected_num_trainable_weights,
        expected_num_non_trainable_weights,
    )

    assert_close(tf.function(call)(layer), output, "tf.function output")

    if run_gradient_check and layer.trainable_weights:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(call(layer)))
        grads = tape.gradient(loss, layer.trainable_weights)
        missing = [
            w.path
            for w, g in zip(layer.trainable_weights, grads, strict=True)
            if g is None
        ]
        assert not missing, f"{cls.__name__}: no gradient for {missing}"

    config = layer.get_config()
    clone = cls.from_config(config)
    call(clone)  # builds it
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config, (
        f"{cls.__name__}.from_config(get_config()) has another config."
    )
    _assert_weight_counts(
        clone, len(layer.trainable_weights), len(layer.non_trainable_weights)
    )
    assert_close(call(clone), output, "from_config(get_config()) output")

    spec = keras.saving.serialize_keras_object(layer)
    registered = keras.saving.get_registered_name(cls)
    assert keras.saving.get_registered_object(registered) is cls, (
        f"{cls.__name__} is not registered with Keras "
        "(@keras.saving.register_keras_serializable)."
    )
    assert spec["registered_name"] == registered, spec["registered_name"]
    rebuilt = keras.saving.deserialize_keras_object(spec)
    assert type(rebuilt) is cls, type(rebuilt)
    assert rebuilt.built == layer.built, (
        f"{cls.__name__}: the deserialised layer's built is {rebuilt.built} "
        "(build config not restored)."
    )
    if not rebuilt.built:
        call(rebuilt)
    rebuilt.set_weights(layer.get_weights())
    assert_close(call(rebuilt), output, "deserialised output")
    return layer


def run_model_saving_test(
    model: keras.Model,
    input_data,
    *,
    call_kwargs: dict | None = None,
    path: str | None = None,
    atol: float = 0.0,
) -> keras.Model:
    """Saves `model` to a `.keras` file, loads it, and compares.

    Checks that the loaded model has `model`'s class, the same weights
    (shapes and values, in order) and, called on `input_data`, the
    same outputs: bit-identical with the default `atol=0`.

    Args:
        model: a built `keras.Model`.
        input_data: one input, or a tuple of positional call arguments.
        call_kwargs: keyword call arguments.
        path: where to write the file; a temporary directory by default.
        atol: absolute tolerance of the output comparison.

    Returns:
        The loaded model.
    """
    inputs = input_data if isinstance(input_data, tuple) else (input_data,)
    call_kwargs = call_kwargs or {}
    expected = model(*inputs, **call_kwargs)
    with tempfile.TemporaryDirectory() as tmp_dir:
        file_path = path or os.path.join(tmp_dir, "model.keras")
        model.save(file_path)
        loaded = keras.saving.load_model(file_path)
    assert type(loaded) is type(model), type(loaded)
    assert len(loaded.weights) == len(model.weights), (
        f"{len(loaded.weights)} weights loaded, {len(model.weights)} saved"
    )
    for saved, restored in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(
            restored.numpy(), saved.numpy(), err_msg=saved.path
        )
    actual = loaded(*inputs, **call_kwargs)
    keras.tree.map_structure(
        lambda a, e: np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), atol=atol, rtol=0
        ),
        actual,
        expected,
    )
    return loaded


def assert_run_dir(
    path: str, expected_files: Sequence[str], *, exact: bool = False
) -> list[str]:
    """Asserts that a run (or any) directory holds `expected_files`.

    Args:
        path: the directory.
        expected_files: names relative to `path`. A name ending in `/` must
            be a non-empty directory; any other name a non-empty file.
        exact: also assert that `path` holds nothing else.

    Returns:
        The sorted names in `path`.
    """
    assert os.path.isdir(path), f"{path} is not a directory"
    problems = []
    for name in expected_files:
        full = os.path.join(path, name)
        if name.endswith("/"):
            if not os.path.isdir(full) or not os.listdir(full):
                problems.append(f"{name} (not a non-empty directory)")
        elif not os.path.isfile(full):
            problems.append(f"{name} (missing)")
        elif os.path.getsize(full) == 0:
            problems.append(f"{name} (empty)")
    present = sorted(os.listdir(path))
    if exact:
        expected = {name.rstrip("/") for name in expected_files}
        problems += [
            f"{name} (unexpected)" for name in present if name not in expected
        ]
    assert not problems, f"{path}: {problems}"
    return present


def _assert_weight_counts(layer, trainable, non_trainable):
    name = type(layer).__name__
    if trainable is not None:
        assert len(layer.trainable_weights) == trainable, (
            f"{name} has {len(layer.trainable_weights)} trainable weights, "
            f"expected {trainable}"
        )
    if non_trainable is not None:
        assert len(layer.non_trainable_weights) == non_trainable, (
            f"{name} has {len(layer.non_trainable_weights)} non-trainable "
            f"weights, expected {non_trainable}"
        )


def numpy_causal_conv(x, kernel, bias, dilation):
    """Reference causal dilated convolution in explicit NumPy loops.

    `out[t] = bias + sum_j x[t - (k - 1 - j) d] @ kernel[j]`, positions
    before the sequence start contributing 0 (left padding): paper Eq. 2's
    `psi`, written the slow way the layers are tested against.

    Args:
        x: `[B, L, C_in]`.
        kernel: `[k, C_in, C_out]`.
        bias: `[C_out]`.
        dilation: int, d.

    Returns:
        float64 `[B, L, C_out]`.
    """
    batch, length, _ = x.shape
    k, _, c_out = kernel.shape
    out = np.zeros([batch, length, c_out])
    for b in range(batch):
        for t in range(length):
            out[b, t] = bias
            for j in range(k):
                source = t - (k - 1 - j) * dilation
                if source >= 0:
                    out[b, t] += x[b, source] @ kernel[j]
    return out


def planted_sequences(
    num_sequences: int,
    seq_len: int,
    num_ids: int,
    *,
    multiplier: int = 7,
    increment: int = 3,
    min_length: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Left-padded item sequences with a deterministic next-item rule.

    After a random first item, item `x` is always followed by
    `(x * multiplier + increment) % (num_ids - 1) + 1`, so ids stay in
    `[1, num_ids)` and a model that learns the rule ranks every next item
    first. With `min_length`, each sequence keeps a random length in
    `[min_length, seq_len]` and is left-padded with 0.

    Returns:
        int32 `[num_sequences, seq_len]`.
    """
    rng = np.random.default_rng(seed)
    items = num_ids - 1
    out = np.zeros([num_sequences, seq_len], np.int32)
    out[:, 0] = rng.integers(1, num_ids, num_sequences)
    for t in range(1, seq_len):
        out[:, t] = (out[:, t - 1] * multiplier + increment) % items + 1
    if min_length is not None:
        lengths = rng.integers(min_length, seq_len + 1, num_sequences)
        for row, length in zip(out, lengths, strict=True):
            row[:] = np.concatenate(
                [np.zeros(seq_len - length, np.int32), row[:length]]
            )
    return out


def sequence_dataset(
    sequences: np.ndarray,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """`{"source": [B, L]}` batches of `sequences` (the remainder kept)."""
    dataset = tf.data.Dataset.from_tensor_slices({"source": sequences})
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            len(sequences), seed=shuffle_seed, reshuffle_each_iteration=False
        )
    return dataset.batch(batch_size)


def build_tiny_dataset_dir(out_dir: str, **overrides) -> str:
    """A small synthetic dataset directory (`data.preparation.synthetic`).

    Keyword arguments override the small defaults: `WriteOptions` fields
    (`seq_len`, `seed`, `num_shards`...) or planted-data sizes
    (`num_users`...). Returns `out_dir`.
    """
    import dataclasses

    from uaf_tf.data.preparation import synthetic
    from uaf_tf.data.preparation.write_options import WriteOptions

    kwargs = dict(
        num_users=200,
        num_source_items=60,
        num_target_items=40,
        seq_len=12,
        num_eval_negatives=9,
        num_shards=2,
        seed=0,
    )
    kwargs.update(overrides)
    option_names = {f.name for f in dataclasses.fields(WriteOptions)}
    options = WriteOptions(
        **{k: kwargs.pop(k) for k in list(kwargs) if k in option_names}
    )
    synthetic.build_synthetic_dataset(out_dir, options, **kwargs)
    return out_dir


def pretrain_tiny_run(
    data_dir: str,
    run_dir: str,
    *,
    channels: int = 8,
    dilations: tuple[int, ...] = (1, 2),
    epochs: int = 1,
    learning_rate: float | None = None,
) -> str:
    """Pretrains a small NextItNet on `data_dir` into `run_dir` (no XLA, no
    step logs, batch 64): the pretrained run a fine-tuning or profile test
    starts from. Returns `run_dir`."""
    from uaf_tf.training import pretrain
    from uaf_tf.training import trainer

    training = dict(
        batch_size=64, epochs=epochs, log_every_steps=0, jit_compile=False
    )
    if learning_rate is not None:
        training["learning_rate"] = learning_rate
    pretrain.run_pretraining(
        pretrain.PretrainConfig(
            data_dir=data_dir,
            channels=channels,
            dilations=dilations,
            training=trainer.TrainingConfig(**training),
        ),
        run_dir,
    )
    return run_dir


def write_planted_profiles(
    data_dir: str, num_source_items: int, *, skip_users: int = 0
) -> dict[str, tuple[str, str, str]]:
    """Writes `user_profiles.tsv` with labels planted in the source items.

    For a dataset of `build_tiny_dataset_dir` (raw source item ids `"1"` to
    `str(num_source_items)`), each fine-tuning user's labels follow from the
    raw ids of their source sequence: gender `"F"` when more than half of
    them are in the lower half of the items, else `"M"`; age bracket by the
    tertile of their mean (`"0-17"`, `"18-24"`, `"25-34"`); occupation
    uniform over three values (no signal). The first `skip_users` users
    (sorted raw ids) get no row.

    Returns:
        raw user id -> `(gender, age_bracket, occupation)` written.
    """
    from uaf_tf.data import profiles

    users, sources = profiles.user_sources(data_dir)
    with open(os.path.join(data_dir, "source_vocab.txt")) as f:
        raw_ids = np.array([0] + [int(line) for line in f.read().split()])
    rng = np.random.default_rng(0)
    written = {}
    for user, source in list(zip(users, sources, strict=True))[skip_users:]:
        raw = raw_ids[source[source > 0]]
        low = np.mean(raw <= num_source_items // 2)
        tertile = min(int(3 * raw.mean() / (num_source_items + 1)), 2)
        written[user.decode()] = (
            "F" if low > 0.5 else "M",
            ("0-17", "18-24", "25-34")[tertile],
            ("writer", "artist", "other")[rng.integers(3)],
        )
    with open(os.path.join(data_dir, profiles.PROFILE_FILE), "w") as f:
        f.write("\t".join(profiles.PROFILE_HEADER) + "\n")
        for user, row in written.items():
            f.write("\t".join((user, *row)) + "\n")
    return written
