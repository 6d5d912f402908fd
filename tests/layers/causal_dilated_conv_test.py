"""CausalDilatedConv1D against explicit NumPy loops (paper Eq. 2's psi)."""

import keras
import numpy as np
import pytest

from uaf_tf import testing
from uaf_tf.layers.causal_dilated_conv import CausalDilatedConv1D


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 2), (2, 3)])
def test_conv_matches_numpy_loops(kernel_size, dilation):
    rng = np.random.default_rng(0)
    conv = CausalDilatedConv1D(5, kernel_size, dilation)
    x = rng.standard_normal([2, 11, 3]).astype("float32")
    conv.build(x.shape)
    kernel = rng.standard_normal([kernel_size, 3, 5]).astype("float32")
    bias = rng.standard_normal([5]).astype("float32")
    conv.set_weights([kernel, bias])
    np.testing.assert_allclose(
        conv(x).numpy(),
        testing.numpy_causal_conv(x, kernel, bias, dilation),
        rtol=1e-5,
        atol=1e-5,
    )
    assert conv.receptive_field == (kernel_size - 1) * dilation + 1


def test_layer_contract():
    x = np.random.default_rng(3).standard_normal([2, 7, 6]).astype("float32")
    testing.run_layer_test(
        CausalDilatedConv1D,
        dict(filters=6, kernel_size=2, dilation_rate=3, name="conv"),
        x,
        expected_output_shape=(2, 7, 6),
        # kernel, bias.
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )
    # model.json names it under the project's package.
    assert (
        keras.saving.get_registered_name(CausalDilatedConv1D)
        == "uaf_tf>CausalDilatedConv1D"
    )
