"""Keras layers: causal dilated convolutions, residual blocks, samplers.

Importing this package registers every serialisable `uaf_tf` layer, so a
saved config that names one (`"uaf_tf>GatedResidualBlock"`) can be
deserialised. The samplers are exported as the `policy_samplers` module.
"""

from uaf_tf.layers import policy_samplers
from uaf_tf.layers.causal_dilated_conv import CausalDilatedConv1D
from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.layers.residual_block import DilatedResidualBlock

__all__ = [
    "CausalDilatedConv1D",
    "DilatedResidualBlock",
    "GatedResidualBlock",
    "policy_samplers",
]
