"""NextItNetBackbone: causality, receptive field, config and .keras saving."""

import os

import numpy as np
import pytest

from uaf_tf import testing
from uaf_tf.models.nextitnet_backbone import PAPER_DILATIONS
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone


def _ids(rng, batch, length, num_items):
    return rng.integers(1, num_items, size=(batch, length)).astype("int32")


def _max_diff(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max()


def test_future_items_never_change_past_outputs():
    rng = np.random.default_rng(0)
    backbone = NextItNetBackbone(num_items=30, channels=16, dilations=(1, 2))
    ids = _ids(rng, 3, 25, 30)
    base = backbone(ids).numpy()
    for t in (0, 7, 23):
        changed = ids.copy()
        changed[:, t + 1 :] = _ids(rng, 3, 25 - t - 1, 30)
        changed[:, t + 1 :] = np.where(
            changed[:, t + 1 :] == ids[:, t + 1 :], 0, changed[:, t + 1 :]
        )
        out = backbone(changed).numpy()
        assert _max_diff(out[:, : t + 1], base[:, : t + 1]) < 1e-6
        assert _max_diff(out[:, t + 1], base[:, t + 1]) > 1e-4


def test_default_stack_receptive_field_is_121():
    # 16 convs with dilations {1, 2, 4, 8} x 4 and k = 3:
    # 1 + sum 2 * d = 1 + 2 * 4 * 15 = 121 positions.
    backbone = NextItNetBackbone(num_items=20)
    assert backbone.dilations == PAPER_DILATIONS
    assert backbone.receptive_field == 121
    length, t = 140, 135
    ids = _ids(np.random.default_rng(1), 1, length, 20)
    backbone(ids)
    # Through 16 convs at init the oldest position's share of position t is
    # about 3^-16, below float32 resolution. Keep only each kernel's oldest
    # tap (weight j = 0, applied at t - 2d) so the one path from t - 120 to t
    # carries an O(1) signal; connectivity is what is tested.
    rng = np.random.default_rng(4)
    for block in backbone.blocks:
        for conv in (block.conv_1, block.conv_2):
            kernel = np.zeros(conv.kernel.shape, "float32")
            kernel[0] = rng.standard_normal(kernel.shape[1:]) / 4
            conv.kernel.assign(kernel)
    base = backbone(ids).numpy()[0, t]

    def output_at_t_after_changing(position):
        changed = ids.copy()
        changed[0, position] = changed[0, position] % 19 + 1  # another item
        return backbone(changed).numpy()[0, t]

    assert _max_diff(output_at_t_after_changing(t - 120), base) > 1e-3
    assert _max_diff(output_at_t_after_changing(t - 121), base) < 1e-6
    assert _max_diff(output_at_t_after_changing(t - 130), base) < 1e-6


def test_layer_contract():
    ids = _ids(np.random.default_rng(2), 2, 9, 25)
    init_kwargs = dict(
        num_items=25, channels=8, dilations=(1, 4), kernel_size=2, name="bb"
    )
    testing.run_layer_test(
        NextItNetBackbone,
        init_kwargs,
        ids,
        expected_output_shape=(2, 9, 8),
        # Item embedding + 2 blocks x 8 weights.
        expected_num_trainable_weights=1 + 2 * 8,
        expected_num_non_trainable_weights=0,
    )
    clone = NextItNetBackbone.from_config(
        NextItNetBackbone(**init_kwargs).get_config()
    )
    assert clone.num_blocks == 2 and clone.blocks[1].dilation_rate == 4


def test_keras_file_save_and_load_gives_identical_outputs(tmp_path):
    backbone = NextItNetBackbone(num_items=25, channels=8, dilations=(1, 2))
    ids = _ids(np.random.default_rng(3), 2, 9, 25)
    loaded = testing.run_model_saving_test(
        backbone, ids, path=os.path.join(tmp_path, "backbone.keras")
    )
    # Every block's weights come back, not only the embedding.
    assert len(loaded.weights) == 1 + 2 * 8


@pytest.mark.parametrize("num_items", [0, 1])
def test_rejects_vocabulary_without_items(num_items):
    with pytest.raises(ValueError, match="num_items"):
        NextItNetBackbone(num_items=num_items)
