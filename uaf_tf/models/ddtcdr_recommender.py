"""DDTCDR: dual transfer through an orthogonal map (Li and Tuzhilin 2020)."""

import keras
import tensorflow as tf

from uaf_tf.models.cross_domain_recommender import SOURCE_LOSS
from uaf_tf.models.cross_domain_recommender import CrossDomainRecommender

# Method name (the `--method` flag).
DDTCDR = "ddtcdr"
ORTHOGONALITY_PENALTY = "orthogonality_penalty"


def orthogonality_penalty(matrix):
    """`||X^T X - I||_F^2` of a square matrix `X [C, C]` (0 iff orthogonal).

    DDTCDR's regulariser keeping the latent map X orthogonal, so that
    `X^T` inverts it (the dual direction).
    """
    gram = tf.matmul(matrix, matrix, transpose_a=True)
    identity = tf.eye(tf.shape(matrix)[1], dtype=matrix.dtype)
    return tf.reduce_sum(tf.square(gram - identity))


@keras.saving.register_keras_serializable(package="uaf_tf")
class DDTCDRRecommender(CrossDomainRecommender):
    """The paper's DDTCDR baseline (sec. 4.2; Li and Tuzhilin, WSDM 2020).

    Each domain has its own user encoder; a latent orthogonal map `X [C, C]`
    carries a user representation from the source latent space to the
    target one, and `X^T` carries it back (dual transfer). Each domain's
    prediction combines its own user representation with the transferred
    one of the other domain:

        h_t = (1 - lam) u_t       + lam X   u_s        (target, scored)
        h_s = (1 - lam) u_s_{<=t} + lam X^T u_t_{<=t}  (source, prefixes)
        loss = ranking_loss(h_t) + source_weight * CE(x_{t+1} | h_s)
             + orthogonal_weight * ||X^T X - I||_F^2

    `lam` is `transfer_weight`; X starts orthogonal (`Orthogonal`
    initialiser, as DDTCDR's public code) and the penalty keeps it so.

    Adapted to this data (docs/cross_domain_baselines.md):
    - DDTCDR's per-domain user embeddings come from autoencoders over each
      domain's user features; here the only user input is the source
      sequence, so each domain's encoder is its own backbone over it (two
      randomly initialised backbones of the pretrained architecture,
      `backbone` for the target domain, `source_backbone` for the source),
      mean-pooled: `u_d = mean_t E_d[:, t]`, and the prefix means
      `u_d_{<=t}` for the source objective (`CrossDomainRecommender`);
    - DDTCDR's per-domain MLP over `[user; item]` is the Eq. 7 head on the
      target side (a dot product, so combining the two predictions with
      weights `1 - lam`, `lam` is combining the user representations, as
      above) and a softmax over source items on the source side;
    - one summed step per batch instead of alternating the two domains'
      updates.

    Args:
        backbone: a `SequenceBackbone` (the target domain's encoder; its
            architecture is copied, re-initialised, for the source one).
        num_target_ids: int, T.
        transfer_weight: float in [0, 1], lam, the transferred
            representation's share.
        orthogonal_weight: float >= 0, weight of the orthogonality penalty.
        **kwargs: `CrossDomainRecommender` arguments (`source_weight`,
            `ranking_loss`, `item_bias`).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.ddtcdr_recommender import DDTCDRRecommender
    >>> from uaf_tf.models.ddtcdr_recommender import orthogonality_penalty
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> backbone = NextItNetBackbone(num_items=80, channels=8, dilations=(1,))
    >>> model = DDTCDRRecommender(backbone, num_target_ids=40)
    >>> model(tf.ones([2, 20], "int32"))["user_embedding"].shape
    TensorShape([2, 8])
    >>> float(orthogonality_penalty(model.transfer_matrix)) < 1e-8
    True
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        transfer_weight: float = 0.5,
        orthogonal_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(backbone, num_target_ids, **kwargs)
        if not 0.0 <= transfer_weight <= 1.0:
            raise ValueError(
                "`transfer_weight` must be in [0, 1]. Received: "
                f"transfer_weight={transfer_weight}"
            )
        if not orthogonal_weight >= 0.0:
            raise ValueError(
                "`orthogonal_weight` must be >= 0. Received: "
                f"orthogonal_weight={orthogonal_weight}"
            )
        # === Config ===
        self.transfer_weight = float(transfer_weight)
        self.orthogonal_weight = float(orthogonal_weight)

        # === Layers ===
        config = dict(
            backbone.get_config(), trainable=True, name="source_backbone"
        )
        self.source_backbone = backbone.__class__.from_config(config)
        self._create_target_head(
            extra_log_names=(SOURCE_LOSS, ORTHOGONALITY_PENALTY)
        )

    def _build_layers(self, input_shape) -> None:
        if not self.source_backbone.built:
            self.source_backbone.build(input_shape)
        # X maps source-space rows to the target space: X u_s = u_s X^T.
        self.transfer_matrix = self.add_weight(
            name="transfer_matrix",
            shape=(self.channels, self.channels),
            initializer=keras.initializers.Orthogonal(),
        )

    def encode(self, source_ids, training=False):
        target, target_prefixes = self.pooled_states(
            self.backbone(source_ids, training=training)
        )
        source, source_prefixes = self.pooled_states(
            self.source_backbone(source_ids, training=training)
        )
        lam, x = self.transfer_weight, self.transfer_matrix
        target_user = (1.0 - lam) * target + lam * tf.matmul(
            source, x, transpose_b=True
        )
        source_user = (1.0 - lam) * source_prefixes + lam * tf.tensordot(
            target_prefixes, x, [[-1], [0]]
        )  # [B, L - 1, C]
        return target_user, source_user

    def _extra_losses(self) -> dict:
        penalty = orthogonality_penalty(self.transfer_matrix)
        return {ORTHOGONALITY_PENALTY: (self.orthogonal_weight, penalty)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "transfer_weight": self.transfer_weight,
                "orthogonal_weight": self.orthogonal_weight,
            }
        )
        return config
