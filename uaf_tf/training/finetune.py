"""Fine-tuning: config, the training task per method, `run_finetuning`.

```
run_finetuning(FinetuneConfig(data_dir=..., pretrained=..., method="rl"),
               run_dir)
```
loads the pretrained backbone of `pretrained` (a pretraining run directory),
wraps it in the model of `method` (`model_for_method`: a `UAFRecommender`,
or a baseline of paper sec. 4.2), trains it on the dataset's fine-tuning split
with `trainer.fit` (selection on validation `sampled/mrr@5`, test once with
the best weights) and writes, besides the trainer's files, `config.json`,
`model.json`, the vocabularies, TensorBoard policy views, the per-instance
test ranks (`test_instances.tsv`) and the test users' policies
(`test_policies.csv`).
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from uaf_tf import config_flags
from uaf_tf import errors
from uaf_tf import losses
from uaf_tf import metrics
from uaf_tf import rewards
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.data import pipelines
from uaf_tf.experiments import instances as test_instances
from uaf_tf.layers import samplers
from uaf_tf.models import conet_recommender
from uaf_tf.models import ddtcdr_recommender
from uaf_tf.models import finetune_baseline
from uaf_tf.models import mtl_recommender
from uaf_tf.models import peterrec_recommender
from uaf_tf.models.conet_recommender import CoNetRecommender
from uaf_tf.models.ddtcdr_recommender import DDTCDRRecommender
from uaf_tf.models.finetune_baseline import FinetuneBaseline
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.finetune_recommender import TRAINING_FEATURES
from uaf_tf.models.finetune_recommender import USER_EMBEDDING
from uaf_tf.models.finetune_recommender import FinetuneRecommender
from uaf_tf.models.mtl_recommender import MTLRecommender
from uaf_tf.models.peterrec_recommender import PeterRecRecommender
from uaf_tf.models.uaf_recommender import UAFRecommender
from uaf_tf.training import distribution
from uaf_tf.training import objective_task
from uaf_tf.training import policy_config
from uaf_tf.training import policy_summaries
from uaf_tf.training import precision
from uaf_tf.training import trainer

VALID = "valid"
TEST = "test"
# The dataset splits fine-tuning reads (`run_dir.check_dataset_dir`).
SPLITS = ("finetune/train", "finetune/valid", "finetune/test")

# Every `--method`: the UAF variants (a `UAFRecommender` with that sampler,
# `samplers.get`) and the baselines of paper sec. 4.2. `build_model` maps
# each to its model; nothing else dispatches on the method.
UAF_METHODS = samplers.METHODS
BASELINE_METHODS = (
    *finetune_baseline.METHODS,
    mtl_recommender.MTL,
    conet_recommender.CONET,
    ddtcdr_recommender.DDTCDR,
    peterrec_recommender.PETERREC,
)
METHODS = (*UAF_METHODS, *BASELINE_METHODS)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(policy_config.PolicyRunConfig):
    """Everything a UAF fine-tuning run depends on (saved as config.json).

    The data, pretrained run, policy and training fields are
    `policy_config.PolicyRunConfig`'s; these are fine-tuning's own.

    Attributes:
        method: UAF variant, the policy sampler (`uaf_tf.layers.samplers`):
            gumbel (Gumbel-softmax, sec. 3.3.1), rl (self-critical
            REINFORCE, 3.3.2), soft (sigmoid gates, 3.3.3), random
            (Bernoulli 0.5 policy, 5.3.1); or a baseline of sec. 4.2:
            finetune-zero (random init, everything trains), finetune-cls
            (target head only), finetune-last1 / finetune-last2 (last 1 / 2
            blocks + head), finetune-all (everything), peterrec (model
            patches in the frozen network), mtl (one randomly initialised
            network trained on the source next-item and the target ranking
            loss together; the pretrained run gives the architecture only),
            conet (two towers joined by cross connections, CoNet) or ddtcdr
            (two domain encoders joined by an orthogonal map, DDTCDR), both
            trained on the target ranking and the source next-item loss
            from a random initialisation (docs/cross_domain_baselines.md).
        stochastic_eval: keep sampling Gumbel policies at evaluation like
            the original (default: argmax, deterministic).
        loss: ranking loss: bpr (paper Eq. 8) or pointwise (the original's
            default head, -log s(o+) - log(1 - s(o-))).
        rl_num_negatives: UAF-RL negatives per instance ranked with the
            positive to compute the reward.
        rl_reward_cutoff: UAF-RL reward's hit threshold: the positive must
            rank in the top K (paper: 5).
        train_fraction: fraction of the training instances used (paper sec.
            5.4: 0.1, 0.5).
        shuffle_buffer: size of the training instances' shuffle buffer.
        item_bias: per-item bias b_n in the target score <h, W_n> + b_n
            (Eq. 7, paper); --noitem_bias is the original's bias-free dot
            product.
        mtl_source_weight: MTL's weight of the source next-item loss beside
            the target ranking loss.
        cross_domain_source_weight: CoNet's and DDTCDR's weight of the
            source next-item loss beside the target ranking loss.
        conet_layers: CoNet's cross-connected layers per tower.
        ddtcdr_transfer_weight: DDTCDR's share lam of the transferred user
            representation, h = (1 - lam) u_own + lam X u_other.
        ddtcdr_orthogonal_weight: DDTCDR's weight of the orthogonality
            penalty ||X^T X - I||_F^2 of its latent map X.
        eval_chunk_size: target items scored at once by the full rankings
            (`metrics.rank_among_all_items_chunked`); memory is
            `[eval_batch_size, eval_chunk_size]` floats, results do not
            depend on it.
    """

    method: str = dataclasses.field(
        default=samplers.GUMBEL,
        metadata={config_flags.CHOICES: METHODS},
    )
    stochastic_eval: bool = False
    loss: str = dataclasses.field(
        default=losses.BPR, metadata={config_flags.CHOICES: losses.LOSSES}
    )
    rl_num_negatives: int = samplers.DEFAULT_NUM_REWARD_NEGATIVES
    rl_reward_cutoff: int = rewards.REWARD_CUTOFF
    train_fraction: float = 1.0
    shuffle_buffer: int = 10_000
    item_bias: bool = True
    mtl_source_weight: float = 1.0
    cross_domain_source_weight: float = 1.0
    conet_layers: int = conet_recommender.DEFAULT_NUM_LAYERS
    ddtcdr_transfer_weight: float = 0.5
    ddtcdr_orthogonal_weight: float = 1.0
    eval_chunk_size: int = metrics.DEFAULT_CHUNK_SIZE

    def __post_init__(self):
        super().__post_init__()
        config_flags.check_at_least(
            self, metrics.MIN_CHUNK_SIZE, "eval_chunk_size"
        )
        config_flags.check_fraction(self, "train_fraction")
        config_flags.check_non_negative(
            self,
            "mtl_source_weight",
            "cross_domain_source_weight",
            "ddtcdr_orthogonal_weight",
        )
        # A share: [0, 1] (0 = no transfer), not check_fraction's (0, 1].
        transfer = self.ddtcdr_transfer_weight
        if not (
            isinstance(transfer, (int, float))
            and not isinstance(transfer, bool)
            and 0 <= transfer <= 1
        ):
            raise config_flags.ConfigError(
                "ddtcdr_transfer_weight",
                self.ddtcdr_transfer_weight,
                "in [0, 1]",
            )
        config_flags.check_at_least(
            self, 1, "rl_num_negatives", "rl_reward_cutoff", "shuffle_buffer"
        )
        config_flags.check_at_least(self, 1, "conet_layers")

    def trainer_config(self) -> trainer.TrainerConfig:
        return self.training.trainer_config(
            selection_metric="sampled/mrr@5", selection_mode="max"
        )

    def sampler(self) -> samplers.Sampler:
        """A new sampler of UAF `method` with this config's settings."""
        return super().sampler(
            stochastic_eval=self.stochastic_eval,
            reward_cutoff=self.rl_reward_cutoff,
            num_reward_negatives=self.rl_num_negatives,
        )

    def model_kwargs(self) -> dict:
        """Keyword arguments of `UAFRecommender` set by this config (UAF
        methods only)."""
        return dict(
            **self.policy_kwargs(),
            ranking_loss=self.loss,
            item_bias=self.item_bias,
        )


class FinetuneTask(objective_task.ObjectiveTask):
    """The `trainer.Task` of fine-tuning: drives the model's objective.

    The objective of every method is the model's `compute_loss_and_logs`
    (`FinetuneRecommender`: the ranking loss, plus the self-critical term
    for UAF-RL); the task only
    runs it under a tape with its own Adam (checkpointed with the RL
    curriculum's epoch; every negative comes from the seeded input
    pipeline), so a run can resume mid-epoch exactly. It also evaluates
    (sampled and full ranking, policy utilisation) and writes the
    TensorBoard policy views.

    Args:
        config: a `FinetuneConfig`.
        model: a built `FinetuneRecommender` (UAF or a baseline).
        info: the dataset's `DatasetInfo` (checked against the model), or
            None when only `train_step` is used.
    """

    def __init__(
        self,
        config: FinetuneConfig,
        model: FinetuneRecommender,
        info: dataset_info.DatasetInfo | None,
    ):
        if info is not None and info.num_target_ids != model.num_target_ids:
            raise ValueError(
                f"The model scores {model.num_target_ids} target ids; the "
                f"dataset has {info.num_target_ids}."
            )
        super().__init__(model, config.training.learning_rate)
        self.config = config
        self.info = info
        self.summaries = policy_summaries.PolicySummaries(model.num_blocks)
        self.last_policies = {}  # split -> (users, lengths, policies)
        # split -> {"index", "user", "sampled_rank", "full_rank"}, 0-based.
        self.last_ranks = {}
        self._eval_fn = None
        self._known_items = None  # metrics.KnownItems, on first evaluate.

    # === Task protocol ===

    def train_dataset(self, epoch: int) -> tf.data.Dataset:
        self.model.current_epoch.assign(epoch)
        model = self.model
        dataset = pipelines.finetune_train_dataset(
            self.config.data_dir,
            self.config.training.batch_size,
            seed=self.config.training.seed + epoch,
            train_fraction=self.config.train_fraction,
            shuffle_buffer=self.config.shuffle_buffer,
            num_reward_negatives=(
                model.sampler.num_reward_negatives if model.self_critical else 0
            ),
        )
        # Only what the step reads: string user ids cannot enter an XLA
        # computation.
        return dataset.map(
            lambda batch: {
                key: batch[key] for key in TRAINING_FEATURES if key in batch
            },
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def evaluate(self, split: str) -> dict:
        """Sampled + full-ranking metrics and policy utilisation on `split`.

        Returns `sampled/{hr,mrr,ndcg}@{5,10,20}` (positive among its stored
        candidates), `full/...` (among all target items, unfiltered),
        `full_filtered/...` (among all target items but the user's other
        positives of the whole training split, see `training_positives`),
        `policy/block_<l>`, `policy/*_finetuned_blocks`,
        `policy/distinct_policies` (per user, see `policy_summaries`) and
        `num_examples` (instances; none dropped).
        """
        dataset = pipelines.eval_dataset(
            self.config.data_dir, split, self.config.training.eval_batch_size
        )
        if self._known_items is None:  # Once per run.
            self._known_items = training_positives(self.config.data_dir)
        accumulator = metrics.MeanAccumulator()
        users, lengths, policies = [], [], []
        indices, sampled_ranks, full_ranks = [], [], []
        for batch in dataset:
            values, policy, ranks = self._eval_batch(
                tf.cast(batch[dataset_info.SOURCE], tf.int32),
                tf.cast(batch[dataset_info.TARGET], tf.int32),
                tf.cast(batch[dataset_info.CANDIDATES], tf.int32),
                batch[dataset_info.USER],
            )
            accumulator.update(values)
            indices.append(batch[dataset_info.INDEX].numpy())
            sampled_ranks.append(ranks[metrics.SAMPLED].numpy())
            full_ranks.append(ranks[metrics.FULL].numpy())
            users.append(batch[dataset_info.USER].numpy())
            lengths.append(
                np.count_nonzero(batch[dataset_info.SOURCE].numpy(), axis=1)
            )
            policies.append(policy.numpy())
        results = accumulator.result()
        if policies:
            users = np.concatenate(users)
            lengths = np.concatenate(lengths)
            policies = np.concatenate(policies)
            self.last_policies[split] = (users, lengths, policies)
            self.last_ranks[split] = {
                "index": np.concatenate(indices),
                "user": users,
                "sampled_rank": np.concatenate(sampled_ranks),
                "full_rank": np.concatenate(full_ranks),
            }
            per_user = policy_summaries.unique_users(users, policies)[1]
            results.update(policy_summaries.policy_statistics(per_user))
        return results

    def on_epoch_end(self, epoch: int, valid_results: dict, writer) -> None:
        if epoch == 0:  # Once per run: epochs done are never redone.
            policy_summaries.write_layout()
        self.write_policy_summaries(VALID, label=epoch + 1)

    def test_split(self) -> str | None:
        return TEST

    # === Helpers ===

    def write_test_instances(self, run_dir: str) -> str | None:
        """`run_dir/test_instances.tsv` of the last `evaluate(TEST)`.

        Per-instance ranks, so two runs can be compared with a t-test
        paired over the same test instances (`uaf_tf.experiments.report`).
        Returns the path, or None when the test split was not evaluated.
        """
        if TEST not in self.last_ranks:
            return None
        return test_instances.write_test_instances(
            run_dir, **self.last_ranks[TEST]
        )

    def write_test_policies(self, run_dir: str) -> str | None:
        """`run_dir/test_policies.csv` of the last `evaluate(TEST)`: one row
        per test user (`policy_summaries.write_policy_csv`). Returns the
        path, or None when the test split was not evaluated."""
        if TEST not in self.last_policies:
            return None
        return policy_summaries.write_policy_csv(
            os.path.join(run_dir, policy_summaries.POLICY_CSV_FILE),
            *self.last_policies[TEST],
        )

    def write_policy_summaries(
        self, split: str, step=None, label=None, per_user_images=False
    ) -> None:
        """TensorBoard policy views of the last `evaluate(split)`."""
        if split in self.last_policies:
            self.summaries.write(
                split,
                *self.last_policies[split],
                label=label,
                per_user_images=per_user_images,
                step=step,
            )

    def _eval_batch(self, source, target, candidates, users):
        if self._eval_fn is None:
            self._eval_fn = tf.function(
                self._eval_batch_impl, reduce_retracing=True
            )
        return self._eval_fn(source, target, candidates, users)

    def _eval_batch_impl(self, source, target, candidates, users):
        out = self.model(source, training=False)
        # float32 like the target table (a bfloat16 model's user too).
        user = tf.cast(out[USER_EMBEDDING], tf.float32)
        sampled_rank = metrics.rank_among_candidates(
            self.model.score_items(user, candidates)
        )  # [B]
        sampled = metrics.metrics_from_ranks(sampled_rank, metrics.SAMPLED)
        # `score_all_items` scanned in item chunks, never [B, T].
        bias = self.model.target_bias
        full_rank, filtered_rank = metrics.rank_among_all_items_chunked(
            user,
            self.model.target_item_embeddings,
            target,
            None if bias is None else bias.embeddings[:, 0],
            chunk_size=self.config.eval_chunk_size,
            excluded_fn=lambda start, size: self._known_items.mask(
                users, size, start=start
            ),
        )  # [B] each
        full = metrics.metrics_from_ranks(full_rank, metrics.FULL)
        filtered = metrics.metrics_from_ranks(
            filtered_rank, metrics.FULL_FILTERED
        )
        ranks = {metrics.SAMPLED: sampled_rank, metrics.FULL: full_rank}
        return {**sampled, **full, **filtered}, out[POLICY], ranks


def training_positives(data_dir: str) -> metrics.KnownItems:
    """Each user's target items of the whole `finetune/train` split.

    The competitors `full_filtered` removes. The whole split, whatever
    `train_fraction` a run uses: they are the user's known interactions,
    and the metric stays comparable across fractions.
    """
    users, items = [], []
    dataset = pipelines.finetune_train_dataset(
        data_dir, 8192, seed=0, shuffle_buffer=1
    )
    for batch in dataset:
        users.append(batch[dataset_info.USER].numpy())
        items.append(batch[dataset_info.TARGET].numpy())
    if not users:
        return metrics.KnownItems(np.zeros([0], bytes), np.zeros([0], int))
    return metrics.KnownItems(np.concatenate(users), np.concatenate(items))


class VocabularyMismatchError(errors.UserError, ValueError):
    """The dataset and the pretraining run have other source vocabularies."""


def check_source_vocabulary(data_dir: str, pretrained: str) -> None:
    """Raises unless both directories hold the same source vocabulary.

    Raises:
        config_flags.ConfigError: a `source_vocab.txt` is missing.
        VocabularyMismatchError: the two differ (a `ValueError`).

    Source ids index the pretrained embedding; a dataset built with another
    vocabulary would silently feed the wrong items (the original's string-
    versus-int vocabulary bug made every item unknown this way).
    """
    name = dataset_info.SOURCE_VOCAB_FILE
    data_path = os.path.join(data_dir, name)
    pretrained_path = os.path.join(pretrained, name)
    for field, directory, path in (
        ("data_dir", data_dir, data_path),
        ("pretrained", pretrained, pretrained_path),
    ):
        if not tf.io.gfile.exists(path):
            raise config_flags.ConfigError(
                field,
                directory,
                f"{name} is missing: cannot check that the pretraining run "
                "and the fine-tuning dataset share one source vocabulary",
                is_requirement=False,
            )
    with tf.io.gfile.GFile(data_path) as f:
        data_vocab = f.read().splitlines()
    with tf.io.gfile.GFile(pretrained_path) as f:
        pretrained_vocab = f.read().splitlines()
    if data_vocab != pretrained_vocab:
        first = next(
            (
                i
                for i, (a, b) in enumerate(
                    zip(data_vocab, pretrained_vocab, strict=False)
                )
                if a != b
            ),
            min(len(data_vocab), len(pretrained_vocab)),
        )
        raise VocabularyMismatchError(
            f"Source vocabulary mismatch: {data_path} ({len(data_vocab)} "
            f"items) differs from {pretrained_path} ({len(pretrained_vocab)} "
            f"items) first at line {first + 1}. Build the fine-tuning dataset "
            "against the pretraining run's vocabulary: prepare_data.py "
            f"--source_vocab={pretrained} (unknown source items map to id 0 "
            "and are counted in stats.json)."
        )


def build_model(
    config: FinetuneConfig, info: dataset_info.DatasetInfo
) -> FinetuneRecommender:
    """The model of `config.method` around `config.pretrained`'s backbone."""
    check_source_vocabulary(config.data_dir, config.pretrained)
    backbone = run_dir_lib.load_pretrained_backbone(
        config.pretrained, precision=config.training.precision
    )
    if getattr(backbone, "num_items", info.num_source_ids) != (
        info.num_source_ids
    ):
        raise ValueError(
            f"Pretrained backbone has {backbone.num_items} source rows; the "
            f"dataset has {info.num_source_ids}."
        )
    return model_for_method(
        config, backbone, info.num_target_ids, seq_len=info.seq_len
    )


def model_for_method(
    config: FinetuneConfig, backbone, num_target_ids: int, seq_len=None
) -> FinetuneRecommender:
    """The one method dispatch: `config.method`'s model on `backbone`.

    Args:
        config: a `FinetuneConfig` (its method and model options).
        backbone: a built, pretrained `SequenceBackbone`.
        num_target_ids: int, T.
        seq_len: int or None, the source length to build for.

    Returns:
        A built `UAFRecommender` (UAF methods), `FinetuneBaseline`,
        `MTLRecommender`, `CoNetRecommender`, `DDTCDRRecommender` or
        `PeterRecRecommender`.
    """
    common = dict(
        seq_len=seq_len, ranking_loss=config.loss, item_bias=config.item_bias
    )
    if config.method in UAF_METHODS:
        return UAFRecommender.from_pretrained(
            backbone, num_target_ids, seq_len=seq_len, **config.model_kwargs()
        )
    if config.method == mtl_recommender.MTL:
        return MTLRecommender.from_pretrained(
            backbone,
            num_target_ids,
            source_weight=config.mtl_source_weight,
            **common,
        )
    if config.method == conet_recommender.CONET:
        return CoNetRecommender.from_pretrained(
            backbone,
            num_target_ids,
            num_layers=config.conet_layers,
            source_weight=config.cross_domain_source_weight,
            **common,
        )
    if config.method == ddtcdr_recommender.DDTCDR:
        return DDTCDRRecommender.from_pretrained(
            backbone,
            num_target_ids,
            transfer_weight=config.ddtcdr_transfer_weight,
            orthogonal_weight=config.ddtcdr_orthogonal_weight,
            source_weight=config.cross_domain_source_weight,
            **common,
        )
    if config.method == peterrec_recommender.PETERREC:
        return PeterRecRecommender.from_pretrained(
            backbone, num_target_ids, **common
        )
    return FinetuneBaseline.from_pretrained(
        backbone, num_target_ids, method=config.method, **common
    )


def check_inputs(
    config: policy_config.PolicyRunConfig, run_dir: str | None = None
) -> dataset_info.DatasetInfo:
    """Checks `data_dir`, `pretrained` (and `run_dir`) before any work.

    Fine-tuning and profile prediction (`profile.ProfileConfig`) read the
    same dataset splits and pretrained run.

    Returns:
        The dataset's `DatasetInfo`.

    Raises:
        config_flags.ConfigError: naming the field, e.g. `pretrained` is a
            dataset or a fine-tuning run, or the vocabularies differ.
    """
    info = run_dir_lib.check_dataset_dir(config.data_dir, SPLITS)
    run_dir_lib.check_pretraining_run(config.pretrained)
    if run_dir is not None and os.path.realpath(run_dir) == os.path.realpath(
        config.pretrained
    ):
        raise config_flags.ConfigError(
            "run_dir",
            run_dir,
            "is the pretraining run (--pretrained); a fine-tuning or "
            "profile run writes a run directory of its own",
            is_requirement=False,
        )
    check_source_vocabulary(config.data_dir, config.pretrained)
    return info


def start_policy_run(
    config: policy_config.PolicyRunConfig,
    run_dir: str,
    task: str,
    *,
    resume: bool,
):
    """Checks the inputs, then claims `run_dir` (`run_dir.start_run`).

    The inputs are checked before anything is built or written (one clear
    error). A resumed run keeps its saved options (but those it may
    change), and inputs it changes are checked again.

    Args:
        config: the run's config (`FinetuneConfig`, `profile.ProfileConfig`).
        run_dir: the run directory.
        task: the `"task"` key of its config.json.
        resume: continue the run in `run_dir`.

    Returns:
        `(config the run must use, the dataset's DatasetInfo)`.
    """
    checked = (config.data_dir, config.pretrained)
    info = check_inputs(config, run_dir)
    effective = run_dir_lib.start_run(
        run_dir, {"task": task, **dataclasses.asdict(config)}, resume=resume
    )
    config = config_flags.replace_fields(
        config,
        config_flags.flatten_config_dict(
            type(config), effective, ignore=("task",)
        ),
    )
    if (config.data_dir, config.pretrained) != checked:
        info = check_inputs(config, run_dir)
    return config, info


def run_finetuning(
    config: FinetuneConfig, run_dir: str, *, resume: bool = False
) -> dict:
    """Fine-tunes `config.pretrained` on `config.data_dir` into `run_dir`.

    Returns:
        The trainer's results (also `run_dir/results.json`): `valid` / `test`
        metrics (`sampled/*`, `full/*`, `full_filtered/*`, `policy/*`,
        `num_examples`), `best_epoch`, `epochs_run`,
        `train_examples_per_sec`, `history`, ...
    """
    # First: a multi-worker strategy must exist before other TF ops run.
    strategy = distribution.make_strategy(config.training.strategy)
    # Non-chief workers write a run directory of their own.
    run_dir = distribution.worker_run_dir(run_dir)
    config, info = start_policy_run(config, run_dir, "finetune", resume=resume)
    keras.utils.set_random_seed(config.training.seed)
    with strategy.scope():
        with precision.policy_scope(config.training.precision):
            model = build_model(config, info)
    run_dir_lib.save_model_spec(model, run_dir)
    run_dir_lib.copy_vocabularies(config.data_dir, run_dir)
    logging.info(
        "%s: %d blocks, %d trainable / %d frozen weights.",
        config.method,
        model.num_blocks,
        len(model.trainable_weights),
        len(model.non_trainable_weights),
    )
    with strategy.scope():
        task = FinetuneTask(config, model, info)
    results = trainer.fit(
        task,
        run_dir,
        config.trainer_config(),
        resume=resume,
        strategy=strategy,
    )
    if not distribution.evaluates(strategy):
        return results  # A non-chief worker: the chief writes the views.
    # The trainer evaluated the test split with the best weights; add its
    # policy views next to the per-epoch valid ones.
    writer = tf.summary.create_file_writer(
        os.path.join(run_dir, trainer.TENSORBOARD_DIR)
    )
    with writer.as_default(step=results["steps"]):
        task.write_policy_summaries(
            TEST,
            label=f"best epoch {results['best_epoch']}",
            per_user_images=True,
        )
    writer.close()
    task.write_test_instances(run_dir)
    task.write_test_policies(run_dir)
    return results
