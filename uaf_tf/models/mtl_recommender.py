"""MTL: one network trained on the source and target objectives at once."""

import keras

from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.models.finetune_baseline import FinetuneBaseline
from uaf_tf.models.sequence_pretrainer import SequencePretrainer

# Method name (the `--method` flag).
MTL = "mtl"
SOURCE_LOSS = "source_loss"


@keras.saving.register_keras_serializable(package="uaf_tf")
class MTLRecommender(FinetuneBaseline):
    """The paper's MTL baseline (sec. 4.2): hard parameter sharing.

    One backbone, randomly initialised (no pretraining stage), shared by
    two heads trained together:

        loss = ranking_loss(target head, Eq. 8)
             + source_weight * next_item_loss(source head, Eq. 5)

    The target side is `finetune-zero`'s (mean-pooled user state, Eq. 7
    scores); the source side is the pretraining objective, a
    `SequencePretrainer` over the same backbone object, so the source
    softmax head is the only extra weight.

    Adaptation to this data (documented in docs/cross_domain_baselines.md):
    the source loss is computed on the source sequences of each training
    batch, i.e. on the fine-tuning users' own source histories, each
    weighted by how many target instances its user has; the source-only
    pretraining users are not streamed. On the MovieLens construction the
    two user sets almost coincide (ML-1M: 6,030 pretraining and 6,004
    fine-tuning users), so both objectives see nearly the same source data,
    in one summed step per batch rather than alternating batches.

    The pretrained run given to `from_pretrained` supplies the architecture
    only, as for `finetune-zero`.

    Args:
        backbone: a `SequenceBackbone` (used as given; `from_pretrained`
            re-initialises it).
        num_target_ids: int, T.
        source_weight: float >= 0, weight of the source next-item loss.
        mask_padding: exclude padding labels from the source loss.
        **kwargs: `FinetuneBaseline` arguments (`ranking_loss`,
            `item_bias`; everything trains, so `trainable_blocks` and
            `freeze_embedding` keep their defaults).
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        source_weight: float = 1.0,
        mask_padding: bool = True,
        **kwargs,
    ):
        super().__init__(backbone, num_target_ids, **kwargs)
        if not source_weight >= 0.0:
            raise ValueError(
                "`source_weight` must be >= 0. Received: "
                f"source_weight={source_weight}"
            )
        self.source_weight = float(source_weight)
        self.mask_padding = mask_padding
        self.source_model = SequencePretrainer(
            backbone,
            num_items=backbone.num_items,
            mask_padding=mask_padding,
            name="source_model",
        )
        self.log_trackers[SOURCE_LOSS] = keras.metrics.Mean(name=SOURCE_LOSS)

    @classmethod
    def from_pretrained(
        cls, backbone, num_target_ids: int, seq_len=None, **kwargs
    ) -> "MTLRecommender":
        """MTL on a new backbone of `backbone`'s architecture."""
        config = dict(backbone.get_config(), trainable=True)
        model = cls(
            backbone.__class__.from_config(config), num_target_ids, **kwargs
        )
        model.build((None, seq_len))
        return model

    def build(self, input_shape):
        super().build(input_shape)
        if isinstance(input_shape, dict):
            input_shape = input_shape[SOURCE]
        self.source_model.build(input_shape)

    def compute_loss_and_logs(self, x, training=True):
        """`(loss, logs)`: the target ranking loss plus the weighted source
        next-item loss of the batch's source sequences (`source_loss`)."""
        loss, logs = super().compute_loss_and_logs(x, training=training)
        source_loss = self.source_model.compute_loss(
            x[SOURCE], training=training
        )
        loss = loss + self.source_weight * source_loss
        logs.update({"loss": loss, SOURCE_LOSS: source_loss})
        return loss, logs

    def get_config(self):
        config = super().get_config()
        # Everything trains: not options of MTL.
        del config["trainable_blocks"], config["freeze_embedding"]
        config.update(
            {
                "source_weight": self.source_weight,
                "mask_padding": self.mask_padding,
            }
        )
        return config
