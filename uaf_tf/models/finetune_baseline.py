"""The standard fine-tuning baselines of paper sec. 4.2."""

import dataclasses

import keras
from keras import ops

from uaf_tf import losses
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.finetune_recommender import USER_EMBEDDING
from uaf_tf.models.finetune_recommender import FinetuneRecommender

# Method names (the `--method` flag).
FINETUNE_ZERO = "finetune-zero"
FINETUNE_CLS = "finetune-cls"
FINETUNE_LAST1 = "finetune-last1"
FINETUNE_LAST2 = "finetune-last2"
FINETUNE_ALL = "finetune-all"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one baseline trains.

    Attributes:
        trainable_blocks: how many of the last blocks train (None = all).
        freeze_embedding: freeze the backbone's input stage.
        reinitialise: start from a random initialisation of the backbone's
            architecture instead of the pretrained weights.
    """

    trainable_blocks: int | None
    freeze_embedding: bool
    reinitialise: bool = False


# The baselines of paper sec. 4.2 (the target head always trains).
RECIPES = {
    FINETUNE_ZERO: Recipe(None, False, reinitialise=True),
    FINETUNE_CLS: Recipe(0, True),
    FINETUNE_LAST1: Recipe(1, True),
    FINETUNE_LAST2: Recipe(2, True),
    FINETUNE_ALL: Recipe(None, False),
}
METHODS = tuple(RECIPES)


@keras.saving.register_keras_serializable(package="uaf_tf")
class FinetuneBaseline(FinetuneRecommender):
    """Fine-tuning without a policy: a fixed set of the backbone trains.

    Source ids `[B, L]` -> `E_N = backbone(ids)` -> user representation
    `h = mean_t E_N[:, t]` (as `UAFRecommender`) -> Eq. (7) scores, trained
    with the same ranking loss. The baselines of paper sec. 4.2 are
    `RECIPES` (`from_pretrained(..., method=...)`):

    - `finetune-zero`: the pretrained architecture, randomly initialised,
      everything trains (no pretraining);
    - `finetune-cls`: only the target head trains ("the softmax layer");
    - `finetune-last1` / `-last2`: the last 1 / 2 residual blocks and the
      target head train; the input stage and other blocks are frozen;
    - `finetune-all`: everything trains, the source item embedding too.

    Frozen-versus-trainable is object structure: `backbone.trainable` for
    the input stage, `block.trainable` for each block; nothing is selected
    by name.

    Args:
        backbone: a `SequenceBackbone` (its blocks are used in place).
        num_target_ids: int, T.
        trainable_blocks: int, the last `trainable_blocks` blocks train
            (0 = none); None = all.
        freeze_embedding: bool, freeze the input stage (everything of the
            backbone outside its blocks).
        ranking_loss: `"bpr"` (paper Eq. 8) or `"pointwise"` (original).
        item_bias: bool, the per-item bias of Eq. (7) (False: original).

    Call returns a dict:
        `"user_embedding"`: float `[B, C]`, h.
        `"policy"`: float `[B, N]`, constant: 1 for a block whose weights
            train, 0 for a frozen one (the UAF policy's meaning, so the
            evaluation's utilisation and the serving signature's `policy`
            read the same way for every method).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.finetune_baseline import FinetuneBaseline
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> pretrained = NextItNetBackbone(num_items=80, channels=8)
    >>> pretrained.build((None, 20))
    >>> model = FinetuneBaseline.from_pretrained(
    ...     pretrained, num_target_ids=40, method="finetune-last1"
    ... )
    >>> model(tf.ones([2, 20], "int32"))["policy"].numpy()
    array([[0., 0., 0., 0., 0., 0., 0., 1.],
           [0., 0., 0., 0., 0., 0., 0., 1.]], dtype=float32)
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        trainable_blocks: int | None = None,
        freeze_embedding: bool = False,
        ranking_loss: str = losses.BPR,
        item_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            backbone, num_target_ids, ranking_loss, item_bias, **kwargs
        )
        num_blocks = self.num_blocks
        if trainable_blocks is not None and not (
            0 <= trainable_blocks <= num_blocks
        ):
            raise ValueError(
                f"`trainable_blocks` must be None or in [0, {num_blocks}]. "
                f"Received: trainable_blocks={trainable_blocks}"
            )

        # === Config ===
        self.trainable_blocks = trainable_blocks
        self.freeze_embedding = freeze_embedding
        first_trainable = (
            0 if trainable_blocks is None else num_blocks - trainable_blocks
        )
        self._block_trains = tuple(
            index >= first_trainable for index in range(num_blocks)
        )

        # === Layers ===
        # Each `trainable` goes through True first, which reaches every
        # sublayer and variable (see `GatedResidualBlock`).
        self.backbone.trainable = True
        self.backbone.trainable = not freeze_embedding
        for block, trains in zip(
            self.backbone.blocks, self._block_trains, strict=True
        ):
            block.trainable = True
            block.trainable = trains
        self._create_target_head()

    @classmethod
    def from_pretrained(
        cls,
        backbone,
        num_target_ids: int,
        method: str = FINETUNE_ALL,
        seq_len=None,
        **kwargs,
    ) -> "FinetuneBaseline":
        """The baseline `method` (a key of `RECIPES`) on a built backbone.

        `finetune-zero` uses a new backbone of the same architecture
        (`from_config(backbone.get_config())`), randomly initialised.
        """
        if method not in RECIPES:
            raise ValueError(
                f"`method` must be one of {METHODS}. "
                f"Received: method={method!r}"
            )
        if not backbone.built:
            raise ValueError(
                "`from_pretrained` needs a built backbone with pretrained "
                "weights; build it or load its weights first."
            )
        recipe = RECIPES[method]
        if recipe.reinitialise:
            config = dict(backbone.get_config(), trainable=True)
            backbone = backbone.__class__.from_config(config)
        model = cls(
            backbone,
            num_target_ids,
            trainable_blocks=recipe.trainable_blocks,
            freeze_embedding=recipe.freeze_embedding,
            **kwargs,
        )
        model.build((None, seq_len))
        return model

    def build(self, input_shape):
        input_shape = self._build_backbone(input_shape)
        self._build_target_head()
        self.built = True

    def call(self, source_ids, training=False):
        if isinstance(source_ids, dict):  # A batch `{"source": ids, ...}`.
            source_ids = source_ids[SOURCE]
        hidden = self.backbone(source_ids, training=training)  # [B, L, C]
        user = ops.mean(hidden, axis=1)
        row = ops.convert_to_tensor(
            [float(trains) for trains in self._block_trains], user.dtype
        )
        policy = ops.broadcast_to(row, (ops.shape(user)[0], self.num_blocks))
        return {USER_EMBEDDING: user, POLICY: policy}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "trainable_blocks": self.trainable_blocks,
                "freeze_embedding": self.freeze_embedding,
            }
        )
        return config
