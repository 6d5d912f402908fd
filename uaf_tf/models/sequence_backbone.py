"""The interface every sequence backbone offers to pretraining and UAF."""

import keras


class SequenceBackbone(keras.Model):
    """Base class: item ids `[B, L]` -> hidden states `[B, L, C]`.

    A backbone is an input stage (`embed`) followed by a list of residual
    `blocks`, each mapping `[B, L, C] -> [B, L, C]`. Task models (the
    pretrainer, the UAF recommender) use only this interface, so UAF wraps the
    blocks of any backbone (NextItNet's dilated convolutions, or later
    SASRec's self-attention) without knowing what is inside them.

    Subclasses create `self.blocks` (a list of layers) and implement
    `embed(item_ids)` and `get_config()`.

    Attributes:
        channels: int, C, width of the hidden states.
        blocks: list of block layers, in application order.
    """

    channels: int
    blocks: list

    def embed(self, item_ids, training=False):
        """Item ids `[B, L]` -> block-stack input `[B, L, C]`."""
        raise NotImplementedError

    def call(self, item_ids, training=False):
        hidden = self.embed(item_ids, training=training)
        for block in self.blocks:
            hidden = block(hidden, training=training)
        return hidden

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)


def deserialize_backbone_in(config: dict) -> dict:
    """A task model's config with its serialised `backbone` made an object.

    Task models (`SequencePretrainer`, `FinetuneRecommender` and its
    subclasses) store the backbone as a nested serialised object; their
    `from_config` calls this before `cls(**config)`.
    """
    config = dict(config)
    config["backbone"] = keras.saving.deserialize_keras_object(
        config["backbone"]
    )
    return config
