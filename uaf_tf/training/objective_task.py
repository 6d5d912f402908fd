"""`ObjectiveTask`: the training half of a `trainer.Task` whose model
carries its objective.

Fine-tuning (`finetune.FinetuneTask`) and profile prediction
(`profile.ProfileTask`) train a model that computes its own loss
(`compute_loss_and_logs`: the ranking or classification loss, plus the
self-critical term for UAF-RL) with an Adam of their own, checkpointed with
the model's epoch counter (UAF-RL's curriculum reads it), so a run resumes
mid-epoch exactly. This class holds that; the tasks add their input
pipelines and evaluation.
"""

import keras
import tensorflow as tf

from uaf_tf.data import dataset_info
from uaf_tf.training import distribution


class ObjectiveTask:
    """Adam over the model's trainable variables and the train step.

    Args:
        model: a built model with `compute_loss_and_logs(batch, training)`
            -> `(scalar loss, {name: scalar})`, `current_epoch` (a
            variable) and `trainable_variables`.
        learning_rate: Adam's learning rate.
    """

    def __init__(self, model, learning_rate: float):
        self.model = model
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(model.trainable_variables)

    def checkpoint_objects(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "task_epoch": self.model.current_epoch,
        }

    def train_step(self, batch) -> dict:
        """One Adam step on the model's loss of `batch` (a dict with
        `target` [B, ...] among its features); returns the model's logs."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, logs = self.model.compute_loss_and_logs(batch, training=True)
            # Under a strategy: this replica's share of the global mean (the
            # loss is a mean over the batch's examples).
            loss = distribution.scale_loss(
                loss, tf.shape(batch[dataset_info.TARGET])[0]
            )
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return logs
