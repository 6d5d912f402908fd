"""Writes a dataset directory from a stream of users in two passes.

Pass 1 counts item frequencies, users and instances (vocabularies, split
sizes); pass 2 encodes and writes the TFRecord shards. Neither pass holds
more than one user: memory is the vocabularies plus one byte and one int32
per instance for split and shard membership.

A *stream* is any object with:

- `seq_len`: int, known at the latest after one `pretrain_sequences` pass.
- `pretrain_sequences(bad_lines)`: yields raw source id lists, oldest first,
  no padding, at most `seq_len` long; one per pretraining user.
- `finetune_users(bad_lines)`: yields `(user, source_ids, target_ids)`;
  each target item is one instance.
- `stats()`: builder statistics (domains, excluded users) for `stats.json`.

Both are called twice and must yield the same data in the same order;
pass 1 gets the real `BadLines` tracker, pass 2 one that ignores lines.
"""

import collections
import dataclasses
import os
from collections.abc import Iterable
from typing import Protocol

import tensorflow as tf
from absl import logging

from uaf_tf.data import dataset_info as di
from uaf_tf.data import examples
from uaf_tf.data import negatives
from uaf_tf.data import splits
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import staging
from uaf_tf.data.preparation.write_options import WriteOptions
from uaf_tf.data.vocab import Vocab

_SHARD_SALTS = {
    "pretrain/train": 1,
    "pretrain/valid": 2,
    "finetune/train": 3,
    "finetune/valid": 4,
    "finetune/test": 5,
}
_CANDIDATE_SALTS = {"valid": 11, "test": 12}


class UserStream(Protocol):
    seq_len: int | None

    def pretrain_sequences(
        self, bad_lines: bl.BadLines
    ) -> Iterable[list[str]]: ...

    def finetune_users(
        self, bad_lines: bl.BadLines
    ) -> Iterable[tuple[str, list[str], list[str]]]: ...

    def stats(self) -> dict: ...


class ShardedWriter:
    """Writes one split into `num_shards` uncompressed TFRecord files.

    Args:
        data_dir: the dataset directory.
        split: `"pretrain/train"`-style split name.
        num_shards: number of files.
    """

    def __init__(self, data_dir: str, split: str, num_shards: int):
        self.files = [
            f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord"
            for i in range(num_shards)
        ]
        self._writers = [
            tf.io.TFRecordWriter(os.path.join(data_dir, f)) for f in self.files
        ]
        self.count = 0

    def write(self, shard: int, record: bytes) -> None:
        self._writers[shard].write(record)
        self.count += 1

    def close(self) -> None:
        for w in self._writers:
            w.close()


def _histogram(counter: collections.Counter) -> dict[str, int]:
    return {str(k): counter[k] for k in sorted(counter)}


def _make_stage_dirs(data_dir: str) -> None:
    for stage in ("pretrain", "finetune"):
        os.makedirs(os.path.join(data_dir, stage), exist_ok=True)


@dataclasses.dataclass
class _Counts:
    """What pass 1 learns about a stream."""

    source_vocab: Vocab
    target_vocab: Vocab
    seq_len: int
    pretrain_lengths: collections.Counter
    finetune_lengths: collections.Counter
    num_instances: int
    unknown_source: dict

    @property
    def num_pretrain(self) -> int:
        return sum(self.pretrain_lengths.values())


def _unknown(counts: collections.Counter, vocab: Vocab) -> dict:
    """Occurrences and distinct raw ids of `counts` missing from `vocab`."""
    missing = [n for raw, n in counts.items() if vocab.lookup(raw) == di.PAD_ID]
    return {"occurrences": sum(missing), "distinct": len(missing)}


def _count(
    stream: UserStream, bad_lines: bl.BadLines, source_vocab: Vocab | None
) -> _Counts:
    """Pass 1; `source_vocab` fixes the source ids (else counted here)."""
    source_counts = collections.Counter()
    pretrain_lengths = collections.Counter()
    for sequence in stream.pretrain_sequences(bad_lines):
        source_counts.update(sequence)
        pretrain_lengths[len(sequence)] += 1
    target_counts = collections.Counter()
    finetune_source_counts = collections.Counter()
    finetune_lengths = collections.Counter()
    for _, source, targets in stream.finetune_users(bad_lines):
        target_counts.update(targets)
        finetune_source_counts.update(source)
        finetune_lengths[len(source)] += 1
    if source_vocab is None:
        source_vocab = Vocab.from_counts(source_counts)
    return _Counts(
        source_vocab=source_vocab,
        target_vocab=Vocab.from_counts(target_counts),
        seq_len=stream.seq_len,  # Known after the pretraining pass.
        pretrain_lengths=pretrain_lengths,
        finetune_lengths=finetune_lengths,
        num_instances=sum(target_counts.values()),
        unknown_source={
            "pretrain": _unknown(source_counts, source_vocab),
            "finetune": _unknown(finetune_source_counts, source_vocab),
            "distinct": _unknown(
                source_counts + finetune_source_counts, source_vocab
            )["distinct"],
        },
    )


def _check_enough_data(
    stream: UserStream,
    counts: _Counts,
    bad_lines: bl.BadLines,
    num_eval_negatives: int,
) -> None:
    """Raises a one-line `UserError` naming the input file when the data
    read cannot make a dataset (empty files, every line skipped)."""
    files = getattr(stream, "input_files", {})
    pretrain = files.get("pretrain", "the pretraining input")
    finetune = files.get("finetune", "the fine-tuning input")
    if counts.num_pretrain < 2:
        what = (
            bad_lines.skipped_in(pretrain)
            if counts.num_pretrain == 0
            else "one usable line"
        )
        raise bl.EmptyInputError(
            f"{pretrain}: {what}; pretraining needs at least 2 users (one "
            "is held out for validation)."
        )
    if counts.num_instances == 0:
        raise bl.EmptyInputError(
            f"{finetune}: {bad_lines.skipped_in(finetune)}; no fine-tuning "
            "instance to build."
        )
    num_targets = len(counts.target_vocab)
    if num_targets < 2:
        raise bl.EmptyInputError(
            f"{finetune}: {num_targets} distinct target item; negative "
            "sampling needs at least 2."
        )
    if num_eval_negatives > num_targets - 1:
        raise bl.OptionError(
            f"--num_eval_negatives={num_eval_negatives}: {finetune} has "
            f"{num_targets} distinct target items, so at most "
            f"{num_targets - 1} distinct negatives per positive. Lower "
            "`num_eval_negatives`. "
            f"Received: num_eval_negatives={num_eval_negatives}"
        )


def _check_same_input(what: str, first: int, second: int) -> None:
    if first != second:
        raise bl.InputChangedError(
            f"The input changed between the two passes: {first} {what} "
            f"counted, {second} read when writing. Rebuild from unchanging "
            "files."
        )


def _open_writers(
    out_dir: str, stage: str, sizes: dict, num_shards: int, seed: int
) -> tuple[dict, dict]:
    """Writers and per-example shard numbers for each split of a stage."""
    writers, shard_of = {}, {}
    for split, size in sizes.items():
        key = f"{stage}/{split}"
        shards = max(1, min(num_shards, size))
        writers[split] = ShardedWriter(out_dir, key, shards)
        shard_of[split] = splits.shard_assignment(
            size, shards, seed, _SHARD_SALTS[key]
        )
    return writers, shard_of


def _write_pretrain(
    out_dir: str,
    stream: UserStream,
    counts: _Counts,
    num_shards: int,
    seed: int,
) -> dict[str, ShardedWriter]:
    valid = splits.pretrain_valid_mask(counts.num_pretrain, seed)
    num_valid = int(valid.sum())
    sizes = {"train": counts.num_pretrain - num_valid, "valid": num_valid}
    writers, shard_of = _open_writers(
        out_dir, "pretrain", sizes, num_shards, seed
    )
    num_read = 0
    for sequence in stream.pretrain_sequences(bl.IgnoreBadLines()):
        num_read += 1
        if num_read > counts.num_pretrain:
            continue  # Counted, so the check below reports the change.
        split = "valid" if valid[num_read - 1] else "train"
        ids = examples.pad_left(
            counts.source_vocab.encode(sequence), counts.seq_len
        )
        writer = writers[split]
        writer.write(
            shard_of[split][writer.count],
            examples.pretrain_example(examples.int64_feature(ids)),
        )
    for writer in writers.values():
        writer.close()
    _check_same_input("pretraining users", counts.num_pretrain, num_read)
    return writers


def _write_finetune(
    out_dir: str,
    stream: UserStream,
    counts: _Counts,
    options: WriteOptions,
) -> tuple[dict[str, ShardedWriter], dict]:
    """Writes the instances; returns writers and per-split statistics."""
    seed, train_fraction = options.seed, options.train_fraction
    progress_every = options.progress_every
    codes = splits.finetune_split_codes(counts.num_instances, seed)
    sizes = {
        split: int((codes == code).sum())
        for split, code in splits.SPLIT_CODES.items()
    }
    num_train_before_fraction = sizes["train"]
    train_keep = None
    if train_fraction < 1.0:
        train_keep = splits.train_fraction_mask(
            sizes["train"], train_fraction, seed
        ).numpy()
        sizes["train"] = int(train_keep.sum())
    samplers = {
        split: negatives.EvalCandidateSampler(
            counts.target_vocab.num_ids,
            options.num_eval_negatives,
            [seed, salt],
        )
        for split, salt in _CANDIDATE_SALTS.items()
    }
    code_to_split = {code: s for s, code in splits.SPLIT_CODES.items()}
    writers, shard_of = _open_writers(
        out_dir, "finetune", sizes, options.num_shards, seed
    )
    instance = train_position = unknown_items = all_unknown_users = 0
    for user, source, targets in stream.finetune_users(bl.IgnoreBadLines()):
        source_ids = counts.source_vocab.encode(source)
        num_unknown = source_ids.count(di.PAD_ID)
        unknown_items += num_unknown
        all_unknown_users += num_unknown == len(source_ids)
        user_part = examples.finetune_user_part(
            examples.int64_feature(
                examples.pad_left(source_ids, counts.seq_len)
            ),
            user.encode("utf-8"),
        )
        for target_id in counts.target_vocab.encode(targets):
            instance += 1
            if instance > counts.num_instances:
                continue  # Counted, so the check below reports the change.
            split = code_to_split[int(codes[instance - 1])]
            if progress_every and instance % progress_every == 0:
                logging.info(
                    "%d / %d instances written.",
                    instance,
                    counts.num_instances,
                )
            candidates = None
            if split == "train":
                train_position += 1
                if (
                    train_keep is not None
                    and not train_keep[train_position - 1]
                ):
                    continue
            else:
                candidates = samplers[split].candidates(target_id)
            writer = writers[split]
            writer.write(
                shard_of[split][writer.count],
                examples.finetune_example(
                    user_part, target_id, writer.count, candidates
                ),
            )
    for writer in writers.values():
        writer.close()
    _check_same_input("fine-tuning instances", counts.num_instances, instance)
    return writers, {
        "finetune_train_before_fraction": num_train_before_fraction,
        "unknown_source_items": unknown_items,
        "finetune_users_with_no_known_source_item": all_unknown_users,
    }


def write_dataset(
    out_dir: str,
    stream: UserStream,
    options: WriteOptions,
    *,
    bad_lines: bl.BadLines,
) -> dict:
    """Builds vocabularies, splits and shards of `stream` into `out_dir`.

    Args:
        out_dir: dataset directory: built in a sibling temporary
            directory and renamed into place when complete, replacing an
            earlier dataset there (`staging.py`).
        stream: the users, see the module docstring.
        options: seed, shards, negatives, train fraction... resolved by the
            builder (`options.name` is recorded in `dataset.json`; the
            stream's `seq_len` wins over `options.seq_len`).
        bad_lines: tracker for pass 1; its counts go into the stats.

    Returns:
        The statistics written to `stats.json`.
    """
    name, seed = options.name or "", options.seed
    staging.check_replaceable(out_dir)  # Before the reading, not after.
    num_eval_negatives = options.num_eval_negatives
    logging.info("Pass 1/2: counting items and instances.")
    vocab_file = options.source_vocab_file()
    counts = _count(stream, bad_lines, vocab_file and Vocab.load(vocab_file))
    # Fail before writing anything when the inputs cannot make a dataset.
    _check_enough_data(stream, counts, bad_lines, num_eval_negatives)
    negatives.EvalCandidateSampler(
        counts.target_vocab.num_ids, num_eval_negatives, seed
    )
    splits.pretrain_valid_mask(counts.num_pretrain, seed)
    splits.finetune_split_codes(counts.num_instances, seed)

    # Written beside `out_dir`, renamed into place when complete.
    with staging.staged_directory(out_dir) as data_dir:
        _make_stage_dirs(data_dir)
        counts.source_vocab.save(os.path.join(data_dir, di.SOURCE_VOCAB_FILE))
        counts.target_vocab.save(os.path.join(data_dir, di.TARGET_VOCAB_FILE))
        logging.info("Pass 2/2: writing shards.")
        writers = {
            f"pretrain/{split}": writer
            for split, writer in _write_pretrain(
                data_dir, stream, counts, options.num_shards, seed
            ).items()
        }
        finetune_writers, finetune_stats = _write_finetune(
            data_dir, stream, counts, options
        )
        for split, writer in finetune_writers.items():
            writers[f"finetune/{split}"] = writer

        info = di.DatasetInfo(
            seq_len=counts.seq_len,
            num_source_ids=counts.source_vocab.num_ids,
            num_target_ids=counts.target_vocab.num_ids,
            num_eval_negatives=num_eval_negatives,
            split_files={k: w.files for k, w in writers.items()},
            split_sizes={k: w.count for k, w in writers.items()},
            name=name,
            seed=seed,
        )
        stats = {
            "name": name,
            "seed": seed,
            "seq_len": counts.seq_len,
            "pretrain_users": counts.num_pretrain,
            "finetune_users": sum(counts.finetune_lengths.values()),
            "finetune_instances": counts.num_instances,
            "split_sizes": info.split_sizes,
            "train_fraction": options.train_fraction,
            "source_vocab_size": len(counts.source_vocab),
            "target_vocab_size": len(counts.target_vocab),
            "num_source_ids": info.num_source_ids,
            "num_target_ids": info.num_target_ids,
            "num_eval_negatives": num_eval_negatives,
            **finetune_stats,
            # Where source ids come from (`None`: counted from this data) and
            # the source items that map to the unknown id 0.
            "source_vocab_file": vocab_file,
            "unknown_source": counts.unknown_source,
            "seq_len_histogram": {
                "pretrain": _histogram(counts.pretrain_lengths),
                "finetune": _histogram(counts.finetune_lengths),
            },
            "bad_lines": bad_lines.to_json(),
            "excluded_users": {},  # Builders that drop users override this.
            **stream.stats(),
        }
        staging.write_json_atomically(
            os.path.join(data_dir, di.STATS_FILE), stats
        )
        info.save(data_dir)  # Last: a directory with dataset.json is complete.
    return stats
