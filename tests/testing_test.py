"""The shared harness fails on each broken contract it claims to check."""

import os

import keras
import numpy as np
import pytest

from uaf_tf import testing


@keras.saving.register_keras_serializable(package="uaf_tf_test")
class ScaleLayer(keras.layers.Layer):
    """x * w + offset, with `offset` optionally left out of the config."""

    def __init__(self, offset=0.0, drop_offset=False, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset
        self.drop_offset = drop_offset

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w + self.offset

    def get_config(self):
        config = {**super().get_config(), "drop_offset": self.drop_offset}
        if not self.drop_offset:
            config["offset"] = self.offset
        return config


@keras.saving.register_keras_serializable(package="uaf_tf_test")
class EagerOnlyLayer(ScaleLayer):
    def call(self, x):
        import tensorflow as tf

        return x * self.w + (0.0 if tf.executing_eagerly() else 1.0)


@keras.saving.register_keras_serializable(package="uaf_tf_test")
class UnusedWeightLayer(ScaleLayer):
    def build(self, input_shape):
        super().build(input_shape)
        self.unused = self.add_weight(shape=(), initializer="zeros")


class UnregisteredLayer(ScaleLayer):
    pass


X = np.arange(6, dtype="float32").reshape(2, 3)


def test_a_correct_layer_passes_and_is_returned():
    layer = testing.run_layer_test(ScaleLayer, {"offset": 2.0}, X, (2, 3), 1, 0)
    np.testing.assert_array_equal(layer(X), X + 2.0)


@pytest.mark.parametrize(
    "cls, init_kwargs, expected, match",
    [
        (ScaleLayer, {"offset": 2.0}, (2, 4), "output shape"),
        (
            ScaleLayer,
            {"offset": 2.0, "drop_offset": True},
            (2, 3),
            "from_config",
        ),
        (EagerOnlyLayer, {}, (2, 3), "tf.function"),
        (UnusedWeightLayer, {}, (2, 3), "no gradient"),
        (UnregisteredLayer, {}, (2, 3), "not registered"),
    ],
    ids=["shape", "config", "tf_function", "gradient", "registration"],
)
def test_each_broken_contract_fails(cls, init_kwargs, expected, match):
    with pytest.raises(AssertionError, match=match):
        testing.run_layer_test(cls, init_kwargs, X, expected)


def test_wrong_weight_counts_fail():
    with pytest.raises(AssertionError, match="1 trainable weights, expected 2"):
        testing.run_layer_test(ScaleLayer, {}, X, (2, 3), 2, 0)
    with pytest.raises(AssertionError, match="0 non-trainable weights, exp"):
        testing.run_layer_test(ScaleLayer, {}, X, (2, 3), 1, 1)


def _model(offset):
    inputs = keras.Input((3,))
    return keras.Model(inputs, ScaleLayer(offset, drop_offset=True)(inputs))


def test_model_saving_round_trip(tmp_path):
    model = _model(0.0)
    model.layers[-1].w.assign([1.0, 2.0, 3.0])
    path = os.path.join(tmp_path, "m.keras")
    loaded = testing.run_model_saving_test(model, X, path=path)
    assert os.path.exists(path)
    np.testing.assert_array_equal(loaded(X), X * [1.0, 2.0, 3.0])
    # An offset the config does not carry is lost on reload.
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        testing.run_model_saving_test(_model(1.0), X)


def test_assert_run_dir(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "ckpt-1.index").write_text("x")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "tb").mkdir()
    assert testing.assert_run_dir(str(tmp_path), ["config.json", "ckpt/"]) == [
        "ckpt",
        "config.json",
        "empty.txt",
        "tb",
    ]
    for names, match in (
        (["model.json"], "model.json .missing"),
        (["empty.txt"], "empty.txt .empty"),
        (["tb/"], "tb/ .not a non-empty directory"),
    ):
        with pytest.raises(AssertionError, match=match):
            testing.assert_run_dir(str(tmp_path), names)
    with pytest.raises(AssertionError, match="empty.txt .unexpected"):
        testing.assert_run_dir(
            str(tmp_path), ["config.json", "ckpt/", "tb"], exact=True
        )
