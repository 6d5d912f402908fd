"""CoNet: two domain networks joined by cross connections (Hu et al. 2018)."""

import keras
from keras import ops

from uaf_tf.models.cross_domain_recommender import SOURCE_LOSS
from uaf_tf.models.cross_domain_recommender import CrossDomainRecommender

# Method name (the `--method` flag).
CONET = "conet"
DEFAULT_NUM_LAYERS = 2


@keras.saving.register_keras_serializable(package="uaf_tf")
class CoNetRecommender(CrossDomainRecommender):
    """The paper's CoNet baseline (sec. 4.2; Hu, Zhang and Yang, CIKM 2018).

    Two feed-forward towers, one per domain, whose hidden layers are joined
    by cross connections with one transfer matrix `H^l` per layer shared by
    both directions (CoNet Eq. 2):

        a_t^{l+1} = sigma(W_t^l a_t^l + H^l a_s^l + b_t^l)
        a_s^{l+1} = sigma(W_s^l a_s^l + H^l a_t^l + b_s^l)

    `sigma` is ReLU on hidden layers and the identity on the last one (the
    output representation). Every layer is `C` wide. Both losses train
    every weight: the target loss reaches the source tower through `H`, and
    the other way round; that is CoNet's transfer.

    Adapted to this data (docs/cross_domain_baselines.md):
    - the towers' input is the user representation `a_t^0 = a_s^0 = u`,
      the mean-pooled backbone states of the source sequence (randomly
      initialised, as MTL's), not a user-id embedding: target users are
      known only by their source sequence;
    - the item enters at the output, not the input: the target tower's
      output `h_t = a_t^L` is scored by the Eq. 7 head like every other
      method (`<h_t, W_y> + b_y`), so the sampled and full rankings and
      the serving signatures apply unchanged; the source tower's output
      for each prefix mean `u_{<=t}` scores the next source item by a
      softmax (`CrossDomainRecommender`);
    - the BPR loss (Eq. 8) on the target side, as every method.

    Args:
        backbone: a `SequenceBackbone`.
        num_target_ids: int, T.
        num_layers: int >= 1, L, cross-connected layers per tower.
        **kwargs: `CrossDomainRecommender` arguments (`source_weight`,
            `ranking_loss`, `item_bias`).

    Example:
    >>> import tensorflow as tf
    >>> from uaf_tf.models.conet_recommender import CoNetRecommender
    >>> from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
    >>> backbone = NextItNetBackbone(num_items=80, channels=8, dilations=(1,))
    >>> model = CoNetRecommender(backbone, num_target_ids=40)
    >>> out = model(tf.ones([2, 20], "int32"))
    >>> out["user_embedding"].shape, out["policy"].numpy().tolist()
    (TensorShape([2, 8]), [[1.0], [1.0]])
    """

    def __init__(
        self,
        backbone,
        num_target_ids: int,
        num_layers: int = DEFAULT_NUM_LAYERS,
        **kwargs,
    ):
        super().__init__(backbone, num_target_ids, **kwargs)
        if not (isinstance(num_layers, int) and num_layers >= 1):
            raise ValueError(
                "`num_layers` must be an integer >= 1. Received: "
                f"num_layers={num_layers}"
            )
        # === Config ===
        self.num_layers = num_layers

        # === Layers ===
        width = self.channels
        self.target_layers = [
            keras.layers.Dense(width, name=f"target_layer_{i}")
            for i in range(num_layers)
        ]
        self.source_layers = [
            keras.layers.Dense(width, name=f"source_layer_{i}")
            for i in range(num_layers)
        ]
        # H^l: shared by both directions, no bias (CoNet's cross unit).
        self.cross_layers = [
            keras.layers.Dense(width, use_bias=False, name=f"cross_{i}")
            for i in range(num_layers)
        ]
        self._create_target_head(extra_log_names=(SOURCE_LOSS,))

    def _build_layers(self, input_shape) -> None:
        for layer in (
            *self.target_layers,
            *self.source_layers,
            *self.cross_layers,
        ):
            if not layer.built:
                layer.build((None, self.channels))

    def towers(self, user):
        """`(a_t^L, a_s^L)` `[..., C]` each for the input `u [..., C]`."""
        target, source = user, user
        for index, (w_t, w_s, cross) in enumerate(
            zip(
                self.target_layers,
                self.source_layers,
                self.cross_layers,
                strict=True,
            )
        ):
            target, source = (
                w_t(target) + cross(source),
                w_s(source) + cross(target),
            )
            if index < self.num_layers - 1:
                target, source = ops.relu(target), ops.relu(source)
        return target, source

    def encode(self, source_ids, training=False):
        hidden = self.backbone(source_ids, training=training)  # [B, L, C]
        user, prefixes = self.pooled_states(hidden)
        target_user, _ = self.towers(user)  # [B, C]
        _, source_user = self.towers(prefixes)  # [B, L - 1, C]
        return target_user, source_user

    def get_config(self):
        config = super().get_config()
        config.update({"num_layers": self.num_layers})
        return config
