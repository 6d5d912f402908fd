"""conv_formulations' three formulations compute the same convolution."""

import numpy as np
import pytest
import tensorflow as tf

from launch.benchmarks import conv_formulations as cf
from uaf_tf.layers.causal_dilated_conv import CausalDilatedConv1D


@pytest.mark.parametrize("name", sorted(cf.FORMULATIONS))
@pytest.mark.parametrize("dilation", [1, 2, 3, 4])
def test_formulation_equals_the_layer(name, dilation):
    # L = 7 with k = 3: at d = 4 the first tap's offset (8) passes L.
    rng = np.random.default_rng(dilation)
    x = tf.constant(rng.normal(size=[2, 7, 5]), tf.float32)
    layer = CausalDilatedConv1D(filters=6, dilation_rate=dilation)
    want = layer(x) - layer.bias
    got = cf.FORMULATIONS[name](x, layer.kernel, dilation)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_a_step_gives_every_kernel_a_gradient(jit):
    kernels = [tf.Variable(tf.random.normal([3, 4, 4])) for _ in range(4)]
    x = tf.random.normal([2, 6, 4])
    steps = [
        cf.make_step(f, kernels, jit, dilations=(1, 2))
        for f in cf.FORMULATIONS.values()
    ]
    results = [step(x) for step in steps]
    for loss, grads in results:
        assert len(grads) == 4 and all(g is not None for g in grads)
        np.testing.assert_allclose(loss, results[0][0], rtol=1e-4)
