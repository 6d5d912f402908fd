"""Train, load, evaluate and query runs from Python: `pretrain`, `finetune`,
`predict_profile`, `load_run`, and the `Run` they return."""

import dataclasses
import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from uaf_tf.api import _internals
from uaf_tf.api.datasets import open_dataset

PRETRAIN = _internals.PRETRAIN
FINETUNE = _internals.FINETUNE
PROFILE = _internals.PROFILE
_KIND_NAMES = {
    PRETRAIN: "pretraining",
    FINETUNE: "fine-tuning",
    PROFILE: "profile-prediction",
}
# The API function that makes each kind of run.
_MADE_BY = {
    PRETRAIN: "pretrain",
    FINETUNE: "finetune",
    PROFILE: "predict_profile",
}


@dataclasses.dataclass(frozen=True)
class Recommendations:
    """What `Run.recommend` returns for B users.

    Attributes:
        items: str array `[B, k]`, raw target item ids, best first; never
            the padding id.
        scores: float32 `[B, k]`, their scores `o_y = <h, W_y>` (Eq. 7).
        policy: float32 `[B, N]`, the user's policy: `policy[b, l] = 1`
            when the fine-tuned copy of block l was used (Eq. 6; values in
            between for the soft method's gates).
    """

    items: np.ndarray
    scores: np.ndarray
    policy: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


class Run:
    """A finished run directory: its config, results and best model.

    Made by `load_run`, `pretrain`, `finetune` and `predict_profile`. Pass
    it wherever a run directory is expected (`uaf_tf.finetune(pretrained=
    ...)`, `os.fspath`).

    Attributes:
        path: the run directory.
        kind: `"pretrain"`, `"finetune"` or `"profile"`.
        config: `config.json` as a dict (the options, plus run metadata
            such as `"task"`).
        results: `results.json` as a dict: `valid` (best epoch), `test`
            (fine-tuning: with the best weights), `best_epoch`, `history`...
    """

    def __init__(self, path: str, kind: str, config: dict, results: dict):
        self.path = path
        self.kind = kind
        self.config = config
        self.results = results
        self._model = None
        self._lookups = None

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"Run({self.path!r}, kind={self.kind!r})"

    @property
    def model(self):
        """The Keras model (`model.json`) with `best.weights.h5` loaded.

        Loaded on first use: a `SequencePretrainer` for pretraining runs,
        a `FinetuneRecommender` (`UAFRecommender`, `FinetuneBaseline`,
        `PeterRecRecommender`, ...) for fine-tuning runs, a
        `UAFProfileClassifier` / `FinetuneProfileClassifier` for profile
        runs.
        """
        if self._model is None:
            self._model = _internals.load_model(self.path)
        return self._model

    @property
    def info(self):
        """The `DatasetInfo` of the dataset the run was trained on."""
        return _internals.DatasetInfo.load(self.path)

    def evaluate(
        self,
        split: str | None = None,
        *,
        data_dir: str | os.PathLike | None = None,
    ) -> dict:
        """The metrics training reports, on `split`, with the best weights.

        Computed by the training task itself, so on the run's test split
        they reproduce `results["test"]`: `sampled/{hr,mrr,ndcg}@{5,10,20}`,
        `full/...`, `policy/...`, `num_examples` (pretraining runs:
        `full/...` and `loss`; profile runs: `accuracy`, `macro_f1`,
        `loss`, `majority/...`, `policy/...`). A Gumbel run with
        `stochastic_eval` samples its policy and so differs from run to
        run.

        Args:
            split: `"train"`, `"valid"` or `"test"`; default `"test"`
                (pretraining runs: `"valid"`, they have no test split).
            data_dir: the dataset; default the run's `data_dir`. Must be the
                dataset the run was trained on (same `dataset.json`).

        Returns:
            `{metric name: float}`.
        """
        split = split or _internals.DEFAULT_SPLIT[self.kind]
        splits = _internals.SPLITS[self.kind]
        if split not in splits:
            raise ValueError(
                f"`split` must be one of {splits} for the "
                f"{_KIND_NAMES[self.kind]} run {self.path}. "
                f"Received: split={split!r}"
            )
        data_dir = self._check_dataset(data_dir)
        config = _internals.config_from_run(
            self.kind, self.config, data_dir=data_dir
        )
        return _internals.evaluate(self.kind, config, self.model, split)

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int = 10,
        *,
        batch_size: int = 1024,
    ) -> Recommendations:
        """Top-`k` target items for users given by their source histories.

        Histories are encoded exactly as the TF Serving export encodes them
        (`uaf_tf.serving.encode_history`): the last `seq_len` items are
        kept, left-padded with the padding id like the training data, and
        ids missing from the run's source vocabulary become the unknown id
        0; empty strings are dropped. Items are ranked among all target
        items but the padding id, ties to the lower id.

        Args:
            histories: one list of raw source item id strings per user,
                oldest first, any length (an empty one is all padding).
            k: items per user, at most the number of target items.
            batch_size: users scored at once.

        Returns:
            `Recommendations(items [B, k], scores [B, k], policy [B, N])`.

        Example:
        ```python
        recs = run.recommend([["50", "181", "258"], ["1"]], k=5)
        recs.items[0]  # the first user's 5 raw target ids, best first
        recs.policy[0]  # per block: 1. = fine-tuned copy used, 0. = frozen
        ```
        """
        self._require(FINETUNE, "recommend")
        rows = _check_histories(histories)
        if batch_size < 1:
            raise ValueError(
                f"`batch_size` must be >= 1. Received: batch_size={batch_size}"
            )
        info = self.info
        _internals.check_top_k(k, info.num_target_ids - 1)
        source_lookup, target_lookup = self._id_lookups()
        model = self.model
        items, scores, policies = [], [], []
        # No users: score one history-free user for the output shapes and
        # keep none of it (the conv layers fail on a batch of 0).
        for start in range(0, max(len(rows), 1), batch_size):
            batch = rows[start : start + batch_size] or [[]]
            width = max([1, *map(len, batch)])
            padded = np.full(
                [len(batch), width], _internals.PADDING_TOKEN, object
            )
            for index, row in enumerate(batch):
                padded[index, : len(row)] = row
            source_ids = _internals.encode_history(
                tf.constant(padded, tf.string),
                source_lookup.to_ids,
                info.seq_len,
            )
            outputs = model(source_ids, training=False)
            all_scores = model.score_all_items(
                outputs[_internals.USER_EMBEDDING]
            )  # [B, T], column 0 = padding
            top_scores, top_columns = tf.math.top_k(all_scores[:, 1:], k=k)
            raw = target_lookup.to_raw(top_columns + 1).numpy()
            decoded = [item.decode() for item in raw.reshape(-1)]
            items.append(np.array(decoded, str).reshape(raw.shape))
            scores.append(np.asarray(top_scores, np.float32))
            policies.append(np.asarray(outputs[_internals.POLICY], np.float32))
        num_users = len(rows)
        return Recommendations(
            items=np.concatenate(items)[:num_users],
            scores=np.concatenate(scores)[:num_users],
            policy=np.concatenate(policies)[:num_users],
        )

    # === Helpers ===

    def _require(self, kind: str, action: str) -> None:
        if self.kind != kind:
            raise ValueError(
                f"{self.path} is a {_KIND_NAMES[self.kind]} run; {action} "
                f"needs a {_KIND_NAMES[kind]} run (made by "
                f"uaf_tf.{_MADE_BY[kind]})."
            )

    def _id_lookups(self):
        if self._lookups is None:
            self._lookups = tuple(
                _internals.IdLookup(os.path.join(self.path, name))
                for name in (
                    _internals.SOURCE_VOCAB_FILE,
                    _internals.TARGET_VOCAB_FILE,
                )
            )
        return self._lookups

    def _check_dataset(self, data_dir) -> str:
        """`data_dir` (default: the run's) after checking it is the run's
        dataset; returns its path."""
        given = data_dir is not None
        path = os.fspath(data_dir) if given else self.config["data_dir"]
        try:
            dataset = open_dataset(path)
        except FileNotFoundError as error:
            if given:
                raise
            raise FileNotFoundError(
                f"{self.path} was trained on the dataset {path}, which is "
                f"not found from {os.getcwd()}; pass `data_dir=`. ({error})"
            ) from None
        trained_on = self.info
        differ = sorted(
            field.name
            for field in dataclasses.fields(trained_on)
            if getattr(trained_on, field.name)
            != getattr(dataset.info, field.name)
        )
        if differ:
            raise ValueError(
                f"{path} is not the dataset {self.path} was trained on: "
                f"its {_internals.DATASET_INFO_FILE} differs in {differ}."
            )
        return path


def _check_histories(histories) -> list[list[str]]:
    """`histories` as lists of str; TypeError naming the first bad entry."""
    if isinstance(histories, (str, bytes)) or not isinstance(
        histories, (Sequence, np.ndarray)
    ):
        raise TypeError(
            "`histories` must be a list of histories, each a list of raw "
            f"source item id strings. Received: {histories!r}"
        )
    rows = []
    for index, row in enumerate(histories):
        if isinstance(row, (str, bytes)):
            raise TypeError(
                f"`histories[{index}]` must be a list of raw item ids, not "
                "one string (wrap a single history: `[history]`). "
                f"Received: {row!r}"
            )
        row = list(row)
        for item in row:
            if not isinstance(item, str):
                raise TypeError(
                    f"Raw item ids are strings (as in the data files), so "
                    f"`histories[{index}]` must hold str only. Received: "
                    f"{item!r} ({type(item).__name__})"
                )
        rows.append(row)
    return rows


def load_run(run_dir: str | os.PathLike) -> Run:
    """Opens a finished run directory (`uaf_tf.pretrain`, `uaf_tf.finetune`,
    `uaf_tf.predict_profile`, or `launch/pretrain.py`, `launch/finetune.py`,
    `launch/profile.py`).

    Reads `config.json` and `results.json`; the model is loaded on first use
    of `Run.model`.

    Raises:
        FileNotFoundError: `run_dir` is not a run directory, or the run is
            not finished; the message names the path and the missing files.
        ValueError: `config.json` names no known kind of run.
    """
    path = os.fspath(run_dir)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Run directory {path} does not exist.")
    config_path = os.path.join(path, _internals.CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"{path} is not a run directory: {_internals.CONFIG_FILE} is "
            "missing (uaf_tf.pretrain and uaf_tf.finetune write it first)."
        )
    with open(config_path) as f:
        config = json.load(f)
    kind = config.get("task")
    if kind not in _KIND_NAMES:
        raise ValueError(
            f"{config_path}: `task` must be one of {sorted(_KIND_NAMES)}. "
            f"Received: task={kind!r}"
        )
    needed = [
        _internals.MODEL_FILE,
        _internals.BEST_WEIGHTS_FILE,
        _internals.RESULTS_FILE,
        _internals.DATASET_INFO_FILE,
        _internals.SOURCE_VOCAB_FILE,
    ]
    if kind == FINETUNE:
        needed.append(_internals.TARGET_VOCAB_FILE)
    missing = [
        name for name in needed if not os.path.isfile(os.path.join(path, name))
    ]
    if missing:
        resume = ""
        if os.path.isdir(os.path.join(path, _internals.CHECKPOINT_DIR)):
            resume = (
                " It holds checkpoints: continue it with "
                f"uaf_tf.{_MADE_BY[kind]}(..., resume=True)."
            )
        raise FileNotFoundError(
            f"{path} is not a finished {_KIND_NAMES[kind]} run: missing "
            f"{', '.join(missing)}.{resume}"
        )
    with open(os.path.join(path, _internals.RESULTS_FILE)) as f:
        results = json.load(f)
    return Run(path, kind, config, results)


def _inputs_of_adaptation(data_dir, pretrained) -> tuple[str, Run]:
    """`(dataset path, pretraining Run)` of a run that adapts `pretrained`
    (fine-tuning, profile prediction); errors name what is wrong."""
    data_path = open_dataset(data_dir).path
    if not isinstance(pretrained, Run):
        pretrained = load_run(pretrained)
    pretrained._require(PRETRAIN, "`pretrained`")
    return data_path, pretrained


def _train(kind: str, config, run_dir: str, resume: bool) -> Run:
    try:
        _internals.run(kind, config, run_dir, resume)
    except FileExistsError as error:
        raise FileExistsError(
            f"{run_dir} already holds a run: pass `resume=True` to continue "
            "it, choose another `run_dir`, or open it with "
            f"uaf_tf.load_run. ({error})"
        ) from None
    return load_run(run_dir)


def pretrain(
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    **config_overrides,
) -> Run:
    """Pretrains a NextItNet backbone on the source domain (sec. 3.2.1).

    The run `launch/pretrain.py` makes: `run_dir` gets `config.json`,
    checkpoints, TensorBoard logs, `best.weights.h5` (selected on the
    validation loss) and `results.json`.

    Args:
        data_dir: a dataset directory or `Dataset`.
        run_dir: the run directory to write.
        resume: continue the run in `run_dir` from its latest checkpoint.
        **config_overrides: `PretrainConfig` options (`epochs`, `channels`,
            `dilations`, `batch_size`, `learning_rate`, `seed`,
            `precision="mixed_bfloat16"`, ...); the others keep their
            defaults (the paper's).

    Returns:
        The finished `Run`.

    Raises:
        TypeError: unknown options (all named, with the valid ones).
        FileExistsError: `run_dir` holds a run and `resume` is False.
    """
    data_path = open_dataset(data_dir).path
    config = _internals.pretrain_config(data_path, config_overrides)
    return _train(PRETRAIN, config, os.fspath(run_dir), resume)


def finetune(
    data_dir: str | os.PathLike,
    pretrained: str | os.PathLike,
    run_dir: str | os.PathLike,
    method: str = _internals.DEFAULT_METHOD,
    *,
    resume: bool = False,
    **config_overrides,
) -> Run:
    """Fine-tunes a pretrained backbone on the target domain with UAF.

    The run `launch/finetune.py` makes: the best epoch is selected on
    validation `sampled/mrr@5` and evaluated once on the test split
    (`results["test"]`).

    Args:
        data_dir: a dataset directory or `Dataset` with the source
            vocabulary of `pretrained`.
        pretrained: a finished pretraining run (directory or `Run`).
        run_dir: the run directory to write.
        method: `"gumbel"` (sec. 3.3.1), `"rl"` (3.3.2), `"soft"`
            (3.3.3) or `"random"` (5.3.1), or a baseline of sec. 4.2
            (`uaf_tf.training.finetune.BASELINE_METHODS`:
            `"finetune-zero"`, `"finetune-cls"`, `"finetune-last1"`,
            `"finetune-last2"`, `"finetune-all"`, `"mtl"`, `"conet"`,
            `"ddtcdr"`, `"peterrec"`).
        resume: continue the run in `run_dir` from its latest checkpoint.
        **config_overrides: `FinetuneConfig` options (`epochs`,
            `temperature`, `loss`, `learning_rate`, `train_fraction`,
            `precision="mixed_bfloat16"`, ...).

    Returns:
        The finished `Run`.

    Raises:
        TypeError: unknown options (all named, with the valid ones).
        FileNotFoundError: `pretrained` is not a finished run.
        ValueError: `pretrained` is not a pretraining run, or an option has
            an invalid value.
    """
    data_path, pretrained = _inputs_of_adaptation(data_dir, pretrained)
    config = _internals.finetune_config(
        data_path, pretrained.path, method, config_overrides
    )
    return _train(FINETUNE, config, os.fspath(run_dir), resume)


def predict_profile(
    data_dir: str | os.PathLike,
    pretrained: str | os.PathLike,
    run_dir: str | os.PathLike,
    label: str = _internals.DEFAULT_PROFILE_LABEL,
    method: str = _internals.DEFAULT_METHOD,
    *,
    resume: bool = False,
    **config_overrides,
) -> Run:
    """Predicts a user-profile label from the source sequence (sec. 5.5).

    The run `launch/profile.py` makes: the pretrained encoder, adapted by
    `method`, under a softmax head over the label's classes; users split
    80/10/10; the best epoch is selected on validation accuracy and
    evaluated once on the test users (`results["test"]`: `accuracy`,
    `macro_f1` and the majority class's `majority/...`).

    Args:
        data_dir: a MovieLens dataset directory or `Dataset` (it holds
            `user_profiles.tsv`) with the source vocabulary of
            `pretrained`.
        pretrained: a finished pretraining run (directory or `Run`).
        run_dir: the run directory to write.
        label: `"gender"`, `"age"` or `"occupation"`.
        method: a UAF variant (`"gumbel"`, `"rl"`, `"soft"`, `"random"`) or
            a Finetune baseline (`"finetune-zero"`, `"finetune-cls"`,
            `"finetune-last1"`, `"finetune-last2"`, `"finetune-all"`).
        resume: continue the run in `run_dir` from its latest checkpoint.
        **config_overrides: `ProfileConfig` options (`epochs`,
            `learning_rate`, `split_seed`, `precision`, ...).

    Returns:
        The finished `Run` (`kind == "profile"`).

    Raises:
        TypeError: unknown options (all named, with the valid ones).
        FileNotFoundError: `pretrained` is not a finished run.
        ValueError: `pretrained` is not a pretraining run, or an option has
            an invalid value.
    """
    data_path, pretrained = _inputs_of_adaptation(data_dir, pretrained)
    config = _internals.profile_config(
        data_path, pretrained.path, label, method, config_overrides
    )
    return _train(PROFILE, config, os.fspath(run_dir), resume)
