"""User-profile prediction: config, training task, `run_profile_prediction`.

```
run_profile_prediction(
    ProfileConfig(data_dir=..., pretrained=..., profile_label="gender",
                  method="gumbel"),
    run_dir)
```
loads the pretrained backbone of `pretrained`, wraps it in the profile
classifier of `method` (`profile_model_for_method`: the UAF variants'
`UAFProfileClassifier`, the Finetune baselines' `FinetuneProfileClassifier`),
trains it on the training users of `data.profiles` (softmax cross-entropy)
with `trainer.fit` (selection on validation accuracy, resumable mid-epoch)
and evaluates the test users once with the best weights: accuracy,
macro-F1 and the majority-class baseline on the same users. Paper sec. 5.5,
Table 9.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from uaf_tf import config_flags
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.data import profiles
from uaf_tf.layers import samplers
from uaf_tf.models import finetune_baseline
from uaf_tf.models.finetune_recommender import POLICY
from uaf_tf.models.profile_classifier import CLASS_LOGITS
from uaf_tf.models.profile_classifier import FinetuneProfileClassifier
from uaf_tf.models.profile_classifier import UAFProfileClassifier
from uaf_tf.training import distribution
from uaf_tf.training import finetune
from uaf_tf.training import objective_task
from uaf_tf.training import policy_config
from uaf_tf.training import precision
from uaf_tf.training import trainer

TRAIN = profiles.TRAIN
VALID = profiles.VALID
TEST = profiles.TEST

# The methods of the profile task: every UAF variant and the Finetune
# baselines (PeterRec and MTL have no profile variant).
UAF_METHODS = samplers.METHODS
BASELINE_METHODS = finetune_baseline.METHODS
METHODS = (*UAF_METHODS, *BASELINE_METHODS)

ACCURACY = "accuracy"
MACRO_F1 = "macro_f1"
MAJORITY = "majority"


@dataclasses.dataclass(frozen=True)
class ProfileConfig(policy_config.PolicyRunConfig):
    """Everything a profile-prediction run depends on (saved as config.json).

    The data, pretrained run, policy and training fields are
    `policy_config.PolicyRunConfig`'s (`data_dir` must come from a
    MovieLens release: it holds user_profiles.tsv); these are the task's own.

    Attributes:
        method: gumbel, rl, soft, random (UAF variants: the policy picks,
            per user and block, the frozen or the fine-tuned copy) or
            finetune-zero, finetune-cls, finetune-last1, finetune-last2,
            finetune-all (the baselines of sec. 4.2); the classifier head
            always trains.
        profile_label: what to predict: gender (2 classes), age (the age
            bracket; ML-1M: 7) or occupation (ML-1M: 21).
        split_seed: seed of the 80/10/10 user split; -1 = the dataset's
            seed (the same test users for every method and seed).
    """

    method: str = dataclasses.field(
        default=samplers.GUMBEL, metadata={config_flags.CHOICES: METHODS}
    )
    profile_label: str = dataclasses.field(
        default=profiles.GENDER,
        metadata={config_flags.CHOICES: profiles.LABELS},
    )
    split_seed: int = -1

    def __post_init__(self):
        super().__post_init__()
        config_flags.check_at_least(self, -1, "split_seed")
        # One example per user: a few thousand; the task has no
        # distributed path, so a strategy would be silently ignored.
        if self.training.strategy != distribution.DEFAULT:
            raise config_flags.ConfigError(
                "strategy",
                self.training.strategy,
                f"{distribution.DEFAULT!r}: profile prediction trains in "
                "one process",
            )

    def trainer_config(self) -> trainer.TrainerConfig:
        return self.training.trainer_config(
            selection_metric=ACCURACY, selection_mode="max"
        )


def profile_model_for_method(
    config: ProfileConfig, backbone, num_classes: int, seq_len=None
):
    """The profile classifier of `config.method` on a pretrained backbone.

    Returns:
        A built `UAFProfileClassifier` (UAF methods) or
        `FinetuneProfileClassifier` (baselines).
    """
    if config.method in UAF_METHODS:
        return UAFProfileClassifier.from_pretrained(
            backbone,
            num_classes,
            seq_len=seq_len,
            **config.policy_kwargs(),
        )
    return FinetuneProfileClassifier.from_pretrained(
        backbone, num_classes, method=config.method, seq_len=seq_len
    )


# === Metrics ===


def classification_metrics(
    targets: np.ndarray, predictions: np.ndarray
) -> dict:
    """Accuracy and macro-F1 of class ids `predictions` against `targets`.

    Macro-F1 is the unweighted mean of the per-class F1 = 2 TP / (2 TP +
    FP + FN) over the classes present in `targets` or `predictions` (as
    scikit-learn's `f1_score(average="macro")`; a class never predicted
    and absent scores nothing, one that is missed entirely scores 0).

    Returns:
        `{"accuracy", "macro_f1", "num_examples"}` (python floats).
    """
    targets = np.asarray(targets)
    predictions = np.asarray(predictions)
    if targets.shape != predictions.shape:
        raise ValueError(
            "`targets` and `predictions` must have one shape. Received: "
            f"{targets.shape} and {predictions.shape}"
        )
    if targets.size == 0:
        nan = float("nan")
        return {ACCURACY: nan, MACRO_F1: nan, "num_examples": 0.0}
    scores = []
    for label in np.union1d(targets, predictions):
        true_positive = np.sum((predictions == label) & (targets == label))
        false_positive = np.sum((predictions == label) & (targets != label))
        false_negative = np.sum((predictions != label) & (targets == label))
        scores.append(
            2
            * true_positive
            / (2 * true_positive + false_positive + false_negative)
        )
    return {
        ACCURACY: float(np.mean(predictions == targets)),
        MACRO_F1: float(np.mean(scores)),
        "num_examples": float(targets.size),
    }


def majority_class(train_targets: np.ndarray, num_classes: int) -> int:
    """The most frequent training class (the lowest id on a tie)."""
    return int(np.argmax(np.bincount(train_targets, minlength=num_classes)))


# === Task ===


class ProfileTask(objective_task.ObjectiveTask):
    """The `trainer.Task` of profile prediction.

    Training runs the model's `compute_loss_and_logs` (cross-entropy, plus
    the self-critical term for UAF-RL) under a tape with its own Adam;
    `evaluate` classifies every user of a split.

    Args:
        config: a `ProfileConfig`.
        model: a built profile classifier.
        data: the `profiles.ProfileData` it trains and evaluates on.
    """

    def __init__(self, config: ProfileConfig, model, data):
        if data.num_classes != model.num_classes:
            raise ValueError(
                f"The model has {model.num_classes} classes; the "
                f"{data.label} label has {data.num_classes}."
            )
        super().__init__(model, config.training.learning_rate)
        self.config = config
        self.data = data
        self.majority = majority_class(
            data.targets[profiles.TRAIN], data.num_classes
        )
        self._predict_fn = None

    def train_dataset(self, epoch: int) -> tf.data.Dataset:
        self.model.current_epoch.assign(epoch)
        dataset = profiles.profile_dataset(
            self.data,
            profiles.TRAIN,
            self.config.training.batch_size,
            shuffle_seed=self.config.training.seed + epoch,
        )
        # String user ids cannot enter an XLA computation.
        return dataset.map(
            lambda batch: {
                key: batch[key]
                for key in (dataset_info.SOURCE, dataset_info.TARGET)
            }
        )

    def predict(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """`(class logits [U, K], policies [U, N])` of `split`'s users."""
        if self._predict_fn is None:

            def predict_batch(source):
                out = self.model(source, training=False)
                return out[CLASS_LOGITS], out[POLICY]

            self._predict_fn = tf.function(predict_batch, reduce_retracing=True)
        logits = [np.zeros([0, self.model.num_classes], np.float32)]
        policies = [np.zeros([0, self.model.num_blocks], np.float32)]
        dataset = profiles.profile_dataset(
            self.data, split, self.config.training.eval_batch_size
        )
        for batch in dataset:
            batch_logits, policy = self._predict_fn(batch[dataset_info.SOURCE])
            logits.append(batch_logits.numpy())
            policies.append(policy.numpy())
        return np.concatenate(logits), np.concatenate(policies)

    def evaluate(self, split: str) -> dict:
        """`accuracy`, `macro_f1`, `loss` (mean cross-entropy),
        `num_examples` (users) of `split`; the
        majority-class baseline on the same users (`majority/accuracy`,
        `majority/macro_f1`); the mean policy per block (`policy/block_<l>`,
        1-based, fraction of users on the fine-tuned copy) and
        `policy/mean_finetuned_blocks`."""
        targets = self.data.targets[split]
        logits, policies = self.predict(split)
        results = classification_metrics(targets, logits.argmax(axis=1))
        if len(targets):
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(
                np.exp(shifted).sum(axis=1, keepdims=True)
            )
            results["loss"] = float(
                -log_probs[np.arange(len(targets)), targets].mean()
            )
        majority = classification_metrics(
            targets, np.full_like(targets, self.majority)
        )
        results[f"{MAJORITY}/{ACCURACY}"] = majority[ACCURACY]
        results[f"{MAJORITY}/{MACRO_F1}"] = majority[MACRO_F1]
        if len(policies):
            for index, value in enumerate(policies.mean(axis=0), start=1):
                results[f"policy/block_{index}"] = float(value)
            results["policy/mean_finetuned_blocks"] = float(
                policies.sum(axis=1).mean()
            )
        return results

    def on_epoch_end(self, epoch: int, valid_results: dict, writer) -> None:
        del epoch, valid_results, writer

    def test_split(self) -> str | None:
        return TEST


# === Run ===


def profile_data(config: ProfileConfig) -> profiles.ProfileData:
    """The users and labels of `config`, split by `split_seed` (-1: the
    dataset's seed)."""
    return profiles.load_profile_data(
        config.data_dir,
        config.profile_label,
        seed=None if config.split_seed < 0 else config.split_seed,
    )


def evaluate_profile_run(config: ProfileConfig, model, split: str) -> dict:
    """`ProfileTask.evaluate(split)` of a trained `model` on the users of
    `config` (the same split of the same users as its run)."""
    data = profile_data(config)
    return ProfileTask(config, model, data).evaluate(split)


def run_profile_prediction(
    config: ProfileConfig, run_dir: str, *, resume: bool = False
) -> dict:
    """Trains and tests the profile classifier of `config` into `run_dir`.

    Returns:
        The trainer's results (also `run_dir/results.json`): `valid` / `test`
        metrics (`accuracy`, `macro_f1`, `majority/*`, `policy/*`,
        `num_examples`), `best_epoch`, `history`, ..., plus `profile`:
        `label`, `class_names`, the users per split, the training class
        counts and the skipped users.
    """
    config, info = finetune.start_policy_run(
        config, run_dir, "profile", resume=resume
    )
    data = profile_data(config)
    keras.utils.set_random_seed(config.training.seed)
    with precision.policy_scope(config.training.precision):
        backbone = run_dir_lib.load_pretrained_backbone(
            config.pretrained, precision=config.training.precision
        )
        model = profile_model_for_method(
            config, backbone, data.num_classes, seq_len=info.seq_len
        )
    run_dir_lib.save_model_spec(model, run_dir)
    run_dir_lib.copy_vocabularies(config.data_dir, run_dir)
    logging.info(
        "profile %s, %s: %d classes, users %s (%d skipped); %d trainable / "
        "%d frozen weights.",
        config.profile_label,
        config.method,
        data.num_classes,
        {s: len(t) for s, t in data.targets.items()},
        data.num_skipped,
        len(model.trainable_weights),
        len(model.non_trainable_weights),
    )
    task = ProfileTask(config, model, data)
    results = trainer.fit(task, run_dir, config.trainer_config(), resume=resume)
    results["profile"] = {
        "label": data.label,
        "class_names": list(data.class_names),
        "users": {s: int(len(t)) for s, t in data.targets.items()},
        "train_class_counts": data.class_counts(profiles.TRAIN).tolist(),
        "majority_class": data.class_names[task.majority],
        "skipped_users": data.num_skipped,
        "split_seed": data.seed,
    }
    run_dir_lib.write_json(
        os.path.join(run_dir, run_dir_lib.RESULTS_FILE), results, indent=2
    )
    return results
