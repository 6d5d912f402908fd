"""Keras layers: causal dilated convolutions, residual blocks, samplers,
PeterRec's model patches.

Importing this package registers every serialisable `uaf_tf` layer, so a
saved config that names one (`"uaf_tf>GatedResidualBlock"`) can be
deserialised. `samplers` is also exported as a module, for its `get()`.
"""

from uaf_tf.layers import samplers
from uaf_tf.layers.causal_dilated_conv import CausalDilatedConv1D
from uaf_tf.layers.gated_residual_block import GatedResidualBlock
from uaf_tf.layers.model_patch import ModelPatch
from uaf_tf.layers.patched_residual_block import PatchedResidualBlock
from uaf_tf.layers.residual_block import DilatedResidualBlock
from uaf_tf.layers.samplers import GumbelSampler
from uaf_tf.layers.samplers import RandomSampler
from uaf_tf.layers.samplers import Sampler
from uaf_tf.layers.samplers import SelfCriticalSampler
from uaf_tf.layers.samplers import SoftSampler
from uaf_tf.layers.self_attention_block import SelfAttentionBlock

__all__ = [
    "CausalDilatedConv1D",
    "DilatedResidualBlock",
    "GatedResidualBlock",
    "GumbelSampler",
    "ModelPatch",
    "PatchedResidualBlock",
    "RandomSampler",
    "Sampler",
    "SelfAttentionBlock",
    "SelfCriticalSampler",
    "SoftSampler",
    "samplers",
]
