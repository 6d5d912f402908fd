r"""Popularity baselines of either domain: the floor any model must beat.

    python launch/popularity_baseline.py --data_dir=data/movielens-100k
    python launch/popularity_baseline.py --task=pretrain \
        --data_dir=data/movielens-100k \
        --pretrained=checkpoints/pretrain-movielens-100k

`--task=finetune` (default) scores every target item by how often it is a
positive in `finetune/train` and reports the metrics `launch/finetune.py`
reports on valid and test (`sampled/`: the stored 1 + 99 candidates;
`full/`: all target items). `--task=pretrain` scores every source item by
its frequency in the `pretrain/train` sequences (add-one smoothed, so an
unseen item has a finite loss) and reports what `launch/pretrain.py`
reports on `pretrain/valid`: full-ranking HR/MRR/NDCG of each held-out
user's last item and the mean next-item cross-entropy `loss` over the same
positions (padding labels excluded). See `uaf_tf.experiments.popularity`.
Prints the results as JSON; `--output` also writes them to a file.
"""

import json
import os

from absl import app
from absl import flags

from uaf_tf.experiments import popularity

_TASKS = ("finetune", "pretrain")

_TASK = flags.DEFINE_enum(
    "task",
    "finetune",
    _TASKS,
    "finetune: target-domain popularity on finetune/{valid,test}; "
    "pretrain: source-domain unigram model on pretrain/valid.",
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Dataset directory made by launch/prepare_data.py."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size",
    None,
    "Evaluation batch size. finetune: memory only (default 1024). "
    "pretrain: default the --pretrained run's eval_batch_size (the loss "
    "averages batch means, as pretraining does), else 256.",
)
_TRAIN_FRACTION = flags.DEFINE_float(
    "train_fraction",
    1.0,
    "finetune: count the positives of this seeded fraction of the "
    "training split only (the subset launch/finetune.py trains on).",
)
_PRETRAINED = flags.DEFINE_string(
    "pretrained",
    None,
    "pretrain: a pretraining run directory whose config.json gives the "
    "default --batch_size (eval_batch_size), so both losses average alike.",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Also write the JSON results to this file."
)


def _pretrain_batch_size() -> int:
    if _BATCH_SIZE.value:
        return _BATCH_SIZE.value
    if _PRETRAINED.value:
        path = os.path.join(_PRETRAINED.value, "config.json")
        if not os.path.exists(path):
            raise app.UsageError(f"{path} not found: is --pretrained a run?")
        with open(path) as f:
            config = json.load(f)
        if not config.get("mask_padding", True):
            raise app.UsageError(
                f"{_PRETRAINED.value} was trained with --nomask_padding: its "
                "loss includes padding labels, which the popularity loss "
                "cannot match."
            )
        # Nested under "training" since the shared trainer options moved
        # there; flat in runs written before.
        training = config.get("training", config)
        return int(training.get("eval_batch_size", 256))
    return 256


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not _DATA_DIR.value:
        raise app.UsageError("--data_dir is required.")
    if _TASK.value == "pretrain":
        results = popularity.pretrain_popularity_results(
            _DATA_DIR.value, _pretrain_batch_size()
        )
    else:
        results = popularity.finetune_popularity_results(
            _DATA_DIR.value,
            _BATCH_SIZE.value or 1024,
            train_fraction=_TRAIN_FRACTION.value,
        )
    results = {"task": _TASK.value, "data_dir": _DATA_DIR.value, **results}
    text = json.dumps(results, indent=1, sort_keys=True)
    print(text)
    if _OUTPUT.value:
        directory = os.path.dirname(_OUTPUT.value)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(_OUTPUT.value + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(_OUTPUT.value + ".tmp", _OUTPUT.value)


if __name__ == "__main__":
    app.run(main)
