"""Source-domain pretraining of a sequence backbone (paper sec. 3.2.1).

Command (paper setting; see `launch/configs/pretrain_paper.cfg`):

    python launch/pretrain.py --flagfile=launch/configs/pretrain_paper.cfg \
        --data_dir=/tmp/ml100k
"""

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

from uaf_tf import config_flags
from uaf_tf import metrics
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.data import input_options
from uaf_tf.models import sequence_pretrainer
from uaf_tf.models.nextitnet_backbone import PAPER_DILATIONS
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.sasrec_backbone import BACKBONES
from uaf_tf.models.sasrec_backbone import NEXTITNET
from uaf_tf.models.sasrec_backbone import SASRecBackbone
from uaf_tf.models.sequence_pretrainer import SequencePretrainer
from uaf_tf.training import distribution
from uaf_tf.training import precision
from uaf_tf.training import trainer

# Validation next-item cross-entropy over all positions of the held-out
# users: on small datasets (ML-100K holds out 47 users) it is far less noisy
# than a ranking metric of the last position alone.
SELECTION_METRIC = "loss"
# The dataset splits pretraining reads (`run_dir.check_dataset_dir`).
SPLITS = ("pretrain/train", "pretrain/valid")
# Keys of a pretraining config.json that describe the run, not options.
_RUN_METADATA = ("task", "dataset_name", "seq_len", "num_source_ids")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run depends on (written to config.json).

    Attributes:
        data_dir: dataset directory made by `launch/prepare_data.py`.
        backbone: the sequence network: nextitnet (causal dilated CNN, the
            paper's) or sasrec (causal self-attention, paper Table 3).
        channels: C, embedding and hidden width (paper: 128).
        dilations: nextitnet: base dilation of each residual block (paper:
            [1, 4] * 4).
        kernel_size: nextitnet: k (paper: 3).
        attention_blocks: sasrec: number of self-attention blocks.
        attention_heads: sasrec: heads per block (must divide channels).
        attention_dropout: sasrec: dropout on embeddings, attention weights
            and feed-forward outputs while training.
        mask_padding: exclude padding labels from the loss (the original
            does not).
        num_sampled: 0 = full softmax (default); else sampled softmax with
            this many negative classes per position (training only;
            validation always uses the full softmax).
        softmax_sampler: sampled softmax's proposal, `"log_uniform"` (Zipf
            over ids, which the vocabularies sort by frequency) or
            `"uniform"`.
        eval_chunk_size: items scored at once by the validation ranking
            (`metrics.rank_among_all_items_chunked`, exact) and loss
            (`losses.chunked_softmax_cross_entropy`, equal up to float
            rounding, used only for a larger vocabulary); memory is
            `[eval_batch_size * (L - 1), eval_chunk_size]` floats.
        max_checkpoints: checkpoints kept.
        selection_metric: validation value that picks the best epoch:
            `"loss"` (minimised) or a ranking metric such as
            `"full/mrr@5"` (maximised).
        training: learning rate, batch sizes, epochs, seed, logging,
            checkpointing and XLA (`trainer.TrainingConfig`; flags of the
            field names, e.g. `--epochs`).
        head_activation: what the softmax head applies to the hidden
            states: `"none"` (paper Eq. 3) or `"relu"` (original).
    """

    data_dir: str
    backbone: str = dataclasses.field(
        default=NEXTITNET, metadata={config_flags.CHOICES: BACKBONES}
    )
    channels: int = 128
    dilations: tuple[int, ...] = PAPER_DILATIONS
    kernel_size: int = 3
    attention_blocks: int = 2
    attention_heads: int = 1
    attention_dropout: float = 0.2
    mask_padding: bool = True
    num_sampled: int = 0
    max_checkpoints: int = 3
    selection_metric: str = SELECTION_METRIC
    training: trainer.TrainingConfig = dataclasses.field(
        default_factory=trainer.TrainingConfig
    )
    head_activation: str = dataclasses.field(
        default=sequence_pretrainer.NO_ACTIVATION,
        metadata={config_flags.CHOICES: sequence_pretrainer.HEAD_ACTIVATIONS},
    )
    softmax_sampler: str = dataclasses.field(
        default=sequence_pretrainer.LOG_UNIFORM,
        metadata={config_flags.CHOICES: sequence_pretrainer.SOFTMAX_SAMPLERS},
    )
    eval_chunk_size: int = metrics.DEFAULT_CHUNK_SIZE

    def __post_init__(self):
        config_flags.check_at_least(
            self,
            1,
            "channels",
            "kernel_size",
            "max_checkpoints",
            "attention_blocks",
            "attention_heads",
        )
        config_flags.check_choice(self, "backbone", BACKBONES)
        if self.channels % self.attention_heads:
            raise config_flags.ConfigError(
                "attention_heads",
                self.attention_heads,
                f"a divisor of channels={self.channels}",
            )
        if not 0.0 <= self.attention_dropout < 1.0:
            raise config_flags.ConfigError(
                "attention_dropout", self.attention_dropout, "in [0, 1)"
            )
        config_flags.check_at_least(self, 0, "num_sampled")
        config_flags.check_at_least(
            self, metrics.MIN_CHUNK_SIZE, "eval_chunk_size"
        )
        config_flags.check_choice(
            self, "softmax_sampler", sequence_pretrainer.SOFTMAX_SAMPLERS
        )
        config_flags.check_int_tuple(self, "dilations", 1)
        config_flags.check_choice(
            self, "head_activation", sequence_pretrainer.HEAD_ACTIVATIONS
        )
        if self.selection_metric != SELECTION_METRIC and not (
            self.selection_metric.startswith(f"{metrics.FULL}/")
        ):
            raise config_flags.ConfigError(
                "selection_metric",
                self.selection_metric,
                f"{SELECTION_METRIC!r} or a `{metrics.FULL}/` ranking metric "
                "such as 'full/mrr@5'",
            )

    def trainer_config(self) -> trainer.TrainerConfig:
        return self.training.trainer_config(
            selection_metric=self.selection_metric,
            selection_mode="min" if self.selection_metric == "loss" else "max",
            max_checkpoints=self.max_checkpoints,
        )


class PretrainTask:
    """The `trainer.Task` of next-item pretraining.

    Trains a `SequencePretrainer` with Adam; validation ranks the last item
    of each held-out sequence given the items before it, among all source
    items (`full/` metrics, MRR/HR/NDCG @5, @10, @20; padding id excluded),
    plus the mean next-item cross-entropy over all positions (`loss`).

    Args:
        model: a built `SequencePretrainer`.
        train_dataset_fn: epoch -> dataset of `{"source": [B, L]}` batches.
        eval_dataset_fn: split -> dataset of `{"source": [B, L]}` batches.
        learning_rate: Adam learning rate.
        eval_chunk_size: items scored at once by the validation ranking
            and cross-entropy (memory `[B, chunk]` and `[B (L - 1), chunk]`
            floats; only when the vocabulary is larger does it chunk).
    """

    def __init__(
        self,
        model: SequencePretrainer,
        train_dataset_fn: Callable[[int], tf.data.Dataset],
        eval_dataset_fn: Callable[[str], tf.data.Dataset],
        learning_rate: float = 1e-4,
        eval_chunk_size: int = metrics.DEFAULT_CHUNK_SIZE,
    ):
        self.model = model
        self.eval_chunk_size = eval_chunk_size
        self.train_dataset_fn = train_dataset_fn
        self.eval_dataset_fn = eval_dataset_fn
        self.optimizer = keras.optimizers.Adam(learning_rate)
        # Built now so a checkpoint restores into existing slots.
        self.optimizer.build(model.trainable_variables)
        self._eval_fn = tf.function(self._eval_batch, reduce_retracing=True)

    @classmethod
    def from_data_dir(
        cls,
        model: SequencePretrainer,
        data_dir: str,
        batch_size: int,
        *,
        seed: int,
        learning_rate: float = 1e-4,
        eval_batch_size: int = 256,
        eval_chunk_size: int = metrics.DEFAULT_CHUNK_SIZE,
    ) -> "PretrainTask":
        """Reads `pretrain/train` (reshuffled per epoch, `seed + epoch`) and
        evaluates on `pretrain/<split>` of a dataset directory."""
        from uaf_tf.data import pipelines  # Needs the data package only here.

        def train_dataset_fn(epoch):
            return pipelines.pretrain_dataset(
                data_dir, "train", batch_size, shuffle=True, seed=seed + epoch
            )

        def eval_dataset_fn(split):
            return pipelines.pretrain_dataset(
                data_dir, split, eval_batch_size, shuffle=False, seed=seed
            )

        return cls(
            model,
            train_dataset_fn,
            eval_dataset_fn,
            learning_rate,
            eval_chunk_size=eval_chunk_size,
        )

    def checkpoint_objects(self) -> dict:
        return {"optimizer": self.optimizer}

    def train_dataset(self, epoch: int) -> tf.data.Dataset:
        return self.train_dataset_fn(epoch)

    def train_step(self, batch) -> dict:
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.model.compute_loss(x=batch, training=True)
            # Under a strategy: this replica's share of the global mean
            # (the loss is a mean over its predicted labels).
            scaled = distribution.scale_loss(loss, self._num_labels(batch))
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return {"loss": loss}

    def _num_labels(self, batch):
        """The terms `compute_loss` averages: predicted labels, padding
        excluded when the model masks it."""
        item_ids = (
            batch[dataset_info.SOURCE] if isinstance(batch, dict) else batch
        )
        labels = item_ids[:, 1:]
        if self.model.mask_padding:
            return tf.reduce_sum(
                tf.cast(labels != dataset_info.PAD_ID, tf.int64)
            )
        return tf.size(labels, out_type=tf.int64)

    def _eval_batch(self, item_ids):
        context, positives = item_ids[:, :-1], item_ids[:, -1]
        # Never [B, V]: a 1M-item vocabulary is ranked chunk by chunk.
        ranks = metrics.rank_among_all_items_chunked(
            self.model.next_item_features(context),  # [B, C]
            self.model.output_kernel,
            positives,
            self.model.output_bias,
            chunk_size=self.eval_chunk_size,
        )
        values = metrics.metrics_from_ranks(ranks, metrics.FULL)
        loss = self.model.compute_loss(
            x=item_ids,
            training=False,
            softmax_chunk_size=self.eval_chunk_size,
        )
        values["loss"] = tf.fill(tf.shape(ranks), loss)
        return values

    def evaluate(self, split: str) -> dict:
        accumulator = metrics.MeanAccumulator()
        dataset = input_options.with_default_input_options(
            self.eval_dataset_fn(split)
        )
        for batch in dataset:
            accumulator.update(self._eval_fn(batch[dataset_info.SOURCE]))
        return accumulator.result()

    def on_epoch_end(self, epoch: int, valid_results: dict, writer) -> None:
        del epoch, valid_results, writer  # Nothing beyond the valid scalars.

    def test_split(self) -> str | None:
        return None


def build_pretrainer(
    config: PretrainConfig, info: dataset_info.DatasetInfo
) -> SequencePretrainer:
    """The built pretrainer of `config.backbone` for `info`'s vocabulary."""
    if config.backbone == NEXTITNET:
        backbone = NextItNetBackbone(
            num_items=info.num_source_ids,
            channels=config.channels,
            dilations=config.dilations,
            kernel_size=config.kernel_size,
        )
    else:
        backbone = SASRecBackbone(
            num_items=info.num_source_ids,
            max_len=info.seq_len,
            channels=config.channels,
            num_blocks=config.attention_blocks,
            num_heads=config.attention_heads,
            dropout=config.attention_dropout,
        )
    model = SequencePretrainer(
        backbone,
        num_items=info.num_source_ids,
        mask_padding=config.mask_padding,
        num_sampled=config.num_sampled,
        head_activation=config.head_activation,
        softmax_sampler=config.softmax_sampler,
    )
    model.build((None, info.seq_len))
    return model


def run_pretraining(
    config: PretrainConfig, run_dir: str, *, resume: bool = False
) -> dict:
    """Pretrains on `config.data_dir` and writes a run directory.

    Writes `config.json`, `model.json`, the vocabularies, then trains with
    `trainer.fit` (checkpoints, TensorBoard, `best.weights.h5` selected on
    `config.selection_metric` of `pretrain/valid`, `results.json`). A
    `run_dir` holding checkpoints is refused unless `resume`.

    Args:
        config: a `PretrainConfig`.
        run_dir: output directory (worker i > 0 of a `"multi_worker"` run
            writes `<run_dir>.worker-<i>`).
        resume: continue from the latest checkpoint in `run_dir`.

    Returns:
        The results dict of `trainer.fit`.
    """
    # First: a multi-worker strategy must exist before other TF ops run.
    strategy = distribution.make_strategy(config.training.strategy)
    # Non-chief workers write a run directory of their own.
    run_dir = distribution.worker_run_dir(run_dir)
    # Checked before anything is built or written: one clear error.
    checked_dir = config.data_dir
    info = run_dir_lib.check_dataset_dir(checked_dir, SPLITS)
    effective = run_dir_lib.start_run(
        run_dir,
        {
            **dataclasses.asdict(config),
            "task": "pretrain",
            "dataset_name": info.name,
            "seq_len": info.seq_len,
            "num_source_ids": info.num_source_ids,
        },
        resume=resume,
    )
    # A resumed run keeps its saved options (but those it may change).
    config = config_flags.replace_fields(
        config,
        config_flags.flatten_config_dict(
            PretrainConfig, effective, ignore=_RUN_METADATA
        ),
    )
    if config.data_dir != checked_dir:
        info = run_dir_lib.check_dataset_dir(config.data_dir, SPLITS)
    keras.utils.set_random_seed(config.training.seed)
    with strategy.scope():
        with precision.policy_scope(config.training.precision):
            model = build_pretrainer(config, info)
        task = PretrainTask.from_data_dir(
            model,
            config.data_dir,
            config.training.batch_size,
            seed=config.training.seed,
            learning_rate=config.training.learning_rate,
            eval_batch_size=config.training.eval_batch_size,
            eval_chunk_size=config.eval_chunk_size,
        )
    run_dir_lib.save_model_spec(model, run_dir)
    run_dir_lib.copy_vocabularies(config.data_dir, run_dir)
    return trainer.fit(
        task,
        run_dir,
        config.trainer_config(),
        resume=resume,
        strategy=strategy,
    )
