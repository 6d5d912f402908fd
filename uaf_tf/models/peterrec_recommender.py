"""PeterRec (Yuan et al., SIGIR 2020) on the UAF backbone and target head."""

import keras
from keras import ops

from uaf_tf import losses
from uaf_tf.data.dataset_info import SOURCE
from uaf_tf.layers.patched_residual_block import PatchedResidualBlock
from uaf_tf.layers.residual_block import DilatedResidualBlock
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.finetune_recommender import USER_EMBEDDING
from uaf_tf.models.finetune_recommender import FinetuneRecommender

# Method name (the `--method` flag).
PETERREC = "peterrec"


@keras.saving.register_keras_serializable(package="uaf_tf")
class PeterRecRecommender(FinetuneRecommender):
    """PeterRec: model patches in a frozen pretrained NextItNet (sec. 4.2).

    Yuan et al., "Parameter-Efficient Transfer from Sequential Behaviors
    for User Modeling and Recommendation", SIGIR 2020, the baseline of
    paper sec. 4.2 ("fine-tune a small-sized adapter neural network
    inserted in the pretrained network"). Source ids `[B, L]` ->
    `E_0 = backbone.embed(ids)` (frozen) -> each pretrained block with a
    `ModelPatch` after each of its dilated convolutions
    (`PatchedResidualBlock`, the code's serial insertion) -> user
    representation `h = mean_t E_N[:, t]` -> Eq. (7) scores, trained with
    the same ranking loss as UAF. Only the patches, the blocks' layer norms
    and the target head train; the pretrained item embedding and
    convolutions stay bit-identical.

    Adaptations from the public PeterRec code
    (github.com/fajieyuan/sigir2020_peterrec, `PeterRec_cau_serial.py`,
    `ops.peter_2mp_serial`, `ops.get_mp`), so that PeterRec differs from the
    other methods only in what it trains:

    - user representation: the mean over all positions, as UAF (the code
      reads the last position's state);
    - target head, loss, negatives, optimiser, learning rate and model
      selection: UAF's (the code: pointwise logistic loss, an L2 penalty
      0.02 on the target table, lr 5e-4);
    - layer norms: both of every block train (the code trains the second
      only, `layer_norm2`, and comments that training it is "not very
      necessary"); they are trainable copies initialised with the
      pretrained values, so the backbone object itself stays frozen;
    - the patch is `ModelPatch` (its docstring lists its own adaptations).

    Args:
        backbone: a `NextItNetBackbone` (its blocks must be
            `DilatedResidualBlock`s); set non-trainable in place.
        num_target_ids: int, T.
        bottleneck_dim: the patches' H; None = `C // 4` (the code's).
        ranking_loss: `"bpr"` (paper Eq. 8) or `"pointwise"` (original).
        item_bias: bool, the per-item bias of Eq. (7) (False: original).

    Call returns a dict:
        `"user_embedding"`: float `[B, C]`, h.
        `"policy"`: float `[B, N]`, all 0: no pretrained block weight is
            fine-tuned (the UAF policy's meaning; the patches are added).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> from uaf_tf.models.peterrec_recommender import PeterRecRecommender
    >>> backbone = NextItNetBackbone(num_items=100, channels=16)
    >>> backbone.build((None, 30))
    >>> model = PeterRecRecommender.from_pretrained(backbone, 50)
    >>> model(tf.ones([2, 30], "int32"))["user_embedding"].shape
    TensorShape([2, 16])
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        bottleneck_dim: int | None = None,
        ranking_loss: str = losses.BPR,
        item_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            backbone, num_target_ids, ranking_loss, item_bias, **kwargs
        )

        # === Config ===
        self.bottleneck_dim = bottleneck_dim

        # === Layers ===
        for block in backbone.blocks:
            if not isinstance(block, DilatedResidualBlock):
                raise ValueError(
                    "PeterRec patches NextItNet's dilated residual blocks "
                    "only; pretrain with --backbone=nextitnet. Received: a "
                    f"backbone block of class {block.__class__.__name__}"
                )
        # Through True first: see `GatedResidualBlock`.
        self.backbone.trainable = True
        self.backbone.trainable = False
        self.patched_blocks = [
            PatchedResidualBlock(
                block, bottleneck_dim, name=f"patched_{block.name}"
            )
            for block in backbone.blocks
        ]
        self._create_target_head()

    @classmethod
    def from_pretrained(
        cls, backbone, num_target_ids: int, seq_len=None, **kwargs
    ) -> "PeterRecRecommender":
        """Patches a pretrained (built) backbone; the norms get its values."""
        model = cls._built_around(backbone, num_target_ids, seq_len, **kwargs)
        for patched in model.patched_blocks:
            patched.copy_pretrained_weights()
        return model

    def build(self, input_shape):
        input_shape = self._build_backbone(input_shape)
        hidden_shape = (*input_shape, self.channels)
        for patched in self.patched_blocks:
            patched.build(hidden_shape)
        self._build_target_head()
        self.built = True

    def call(self, source_ids, training=False):
        if isinstance(source_ids, dict):  # A batch `{"source": ids, ...}`.
            source_ids = source_ids[SOURCE]
        hidden = self.backbone.embed(source_ids, training=training)
        for patched in self.patched_blocks:
            hidden = patched(hidden, training=training)
        user = ops.mean(hidden, axis=1)
        policy = ops.zeros((ops.shape(user)[0], self.num_blocks), user.dtype)
        return {USER_EMBEDDING: user, POLICY: policy}

    def get_config(self):
        config = super().get_config()
        config.update({"bottleneck_dim": self.bottleneck_dim})
        return config
