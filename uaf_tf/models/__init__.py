"""Keras models: sequence backbones and the task models built on them.

Importing this package registers every serialisable `uaf_tf` model (and,
through `uaf_tf.layers`, every layer they are built from).
"""

from uaf_tf.models.conet_recommender import CoNetRecommender
from uaf_tf.models.cross_domain_recommender import CrossDomainRecommender
from uaf_tf.models.ddtcdr_recommender import DDTCDRRecommender
from uaf_tf.models.finetune_baseline import FinetuneBaseline
from uaf_tf.models.finetune_recommender import FinetuneRecommender
from uaf_tf.models.mtl_recommender import MTLRecommender
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.peterrec_recommender import PeterRecRecommender
from uaf_tf.models.policy_network import PolicyNetwork
from uaf_tf.models.profile_classifier import FinetuneProfileClassifier
from uaf_tf.models.profile_classifier import UAFProfileClassifier
from uaf_tf.models.sasrec_backbone import SASRecBackbone
from uaf_tf.models.sequence_backbone import SequenceBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.models.uaf_recommender import UAFRecommender

__all__ = [
    "CoNetRecommender",
    "CrossDomainRecommender",
    "DDTCDRRecommender",
    "FinetuneBaseline",
    "FinetuneProfileClassifier",
    "FinetuneRecommender",
    "MTLRecommender",
    "NextItNetBackbone",
    "PeterRecRecommender",
    "PolicyNetwork",
    "SASRecBackbone",
    "SequenceBackbone",
    "SequencePretrainer",
    "UAFProfileClassifier",
    "UAFRecommender",
]
