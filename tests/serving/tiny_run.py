"""A tiny fine-tuned run directory for the serving tests (no training)."""

import os

import keras
import numpy as np

from uaf_tf import run_dir as run_dir_lib
from uaf_tf.data import dataset_info
from uaf_tf.layers import samplers
from uaf_tf.models.nextitnet_backbone import NextItNetBackbone
from uaf_tf.models.uaf_recommender import UAFRecommender
from uaf_tf.training import trainer

SEQ_LEN = 6
# Raw ids as in data files; a space and a non-ASCII id included.
SOURCE_VOCAB = [f"s{n:03d}" for n in range(1, 28)] + ["item 7", "é9", "0"]
# Two raw ids name items of both domains (as in MovieLens, where one
# movie id is a source item when rated < 4 and a target item when 5).
TARGET_VOCAB = [f"t{n:03d}" for n in range(1, 15)] + ["ü 1", "s003", "item 7"]


def write_run_dir(path: str, method: str, seed: int = 0) -> None:
    """A run directory as `run_finetuning` writes it, without the training.

    Holds `config.json`, `model.json`, `best.weights.h5`, the vocabularies
    and `dataset.json` of a tiny randomly initialised `UAFRecommender`
    (target table re-drawn from N(0, 1) so that scores are well separated).
    """
    os.makedirs(path, exist_ok=True)
    for name, vocab in (
        (dataset_info.SOURCE_VOCAB_FILE, SOURCE_VOCAB),
        (dataset_info.TARGET_VOCAB_FILE, TARGET_VOCAB),
    ):
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            f.write("".join(f"{raw}\n" for raw in vocab))
    dataset_info.DatasetInfo(
        seq_len=SEQ_LEN,
        num_source_ids=len(SOURCE_VOCAB) + 1,
        num_target_ids=len(TARGET_VOCAB) + 1,
        num_eval_negatives=0,
        split_files={},
        split_sizes={},
    ).save(path)
    keras.utils.set_random_seed(seed)
    backbone = NextItNetBackbone(
        len(SOURCE_VOCAB) + 1, channels=8, dilations=(1, 2)
    )
    backbone.build((None, SEQ_LEN))
    model = UAFRecommender.from_pretrained(
        backbone,
        len(TARGET_VOCAB) + 1,
        seq_len=SEQ_LEN,
        sampler=samplers.from_options(method, seed=seed),
        policy_dilations=(1, 2),
    )
    rng = np.random.default_rng(seed)
    table = model.target_embedding.embeddings
    table.assign(rng.normal(size=table.shape).astype("float32"))
    run_dir_lib.write_config(path, {"task": "finetune", "method": method})
    run_dir_lib.save_model_spec(model, path)
    model.save_weights(os.path.join(path, trainer.BEST_WEIGHTS_FILE))
