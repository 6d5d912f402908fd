r"""Builds a dataset directory for pretraining and UAF fine-tuning.

Examples:
```
python launch/prepare_data.py --dataset=movielens-100k --out_dir=/tmp/ml100k
python launch/prepare_data.py --dataset=movielens-1m --out_dir=/tmp/ml1m
python launch/prepare_data.py --dataset=movielens \
    --ratings_file=ml-25m/ratings.csv --out_dir=data/ml25m
python launch/prepare_data.py --dataset=original \
    --pretrain_file=source.csv --finetune_file=target.csv --out_dir=data/x
python launch/prepare_data.py --dataset=interactions --source_log=a.tsv \
    --target_log=b.tsv --columns=user,item,timestamp --delimiter='\t' \
    --out_dir=data/y
python launch/prepare_data.py --dataset=synthetic --num_users=100000 \
    --out_dir=data/synthetic
# A new target domain for an existing pretraining run's backbone:
python launch/prepare_data.py --dataset=interactions --source_log=a.tsv \
    --target_log=c.tsv --source_vocab=runs/pretrain --out_dir=data/z
```
The layout of the directory is documented in `uaf_tf/data/dataset_info.py`.

Bad input (a malformed line, a missing file, a flag out of range) prints
one line, `error: <file>:<line>: <kind>: <reason>` or `error: --flag=...:
<reason>`, and exits with status 2 (`uaf_tf.errors`); a traceback means a
bug.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from uaf_tf import errors
from uaf_tf.cli import common_flags
from uaf_tf.data import dataset_info
from uaf_tf.data.preparation import builders
from uaf_tf.data.preparation import interactions
from uaf_tf.data.preparation.write_options import WriteOptions


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "dataset" in flag_values:
        return
    fv = {"flag_values": flag_values}
    # === Common ===
    flags.DEFINE_enum(
        "dataset",
        "synthetic",
        sorted(builders.BUILDERS),
        "Which input to build from.",
        **fv,
    )
    flags.DEFINE_string(
        "out_dir", None, "Dataset directory to write (required).", **fv
    )
    flags.DEFINE_integer(
        "seed",
        0,
        "Seeds splits, shard order, eval candidates and synthetic data.",
        **fv,
    )
    flags.DEFINE_integer(
        "seq_len",
        None,
        "Source sequence length L. Default: 30 for "
        "movielens/interactions (paper sec. 4.1), 20 for synthetic, the "
        "longest pretraining line for original, at most 200 "
        "(original.MAX_INFERRED_SEQ_LEN). A line with more source items "
        "is an over_long_sequence bad line (movielens/interactions keep "
        "the most recent L instead).",
        **fv,
    )
    flags.DEFINE_bool(
        "skip_bad_lines",
        False,
        "Skip and count malformed lines (reported "
        "in stats.json) instead of failing on the first one.",
        **fv,
    )
    flags.DEFINE_bool(
        "drop_duplicate_lines",
        False,
        "Drop a line whose record (ids stripped of whitespace) repeats an "
        "earlier line of the same file. Default: keep such lines (in the "
        "original files two users may have identical histories) and count "
        "them in stats.json (duplicate_lines).",
        **fv,
    )
    flags.DEFINE_string(
        "cache_dir",
        None,
        "Download cache for movielens-100k and movielens-1m (default "
        "~/.cache/uaf_tf).",
        **fv,
    )
    flags.DEFINE_integer("num_shards", 4, "TFRecord files per split.", **fv)
    flags.DEFINE_string(
        "source_vocab",
        None,
        "Reuse a pretrained backbone: look source items up in this "
        "source_vocab.txt, or the one in this directory (a pretraining run "
        "or another dataset), instead of counting them from the data. "
        "Unknown source items map to id 0 and are counted in stats.json "
        "(unknown_source). Default: build the vocabulary from the data.",
        **fv,
    )
    flags.DEFINE_integer(
        "num_eval_negatives",
        99,
        "Distinct sampled negatives stored with every valid/test instance.",
        **fv,
    )
    flags.DEFINE_float(
        "train_fraction",
        1.0,
        "Write only this seeded fraction of the "
        "fine-tuning training split (paper sec. 5.4).",
        **fv,
    )
    flags.DEFINE_integer(
        "progress_every",
        1_000_000,
        "Log progress every this many lines or instances (0: never).",
        **fv,
    )
    # === movielens ===
    flags.DEFINE_string(
        "ratings_file",
        None,
        "movielens: GroupLens u.data, ratings.dat or ratings.csv.",
        **fv,
    )
    # === original ===
    flags.DEFINE_string(
        "pretrain_file",
        None,
        "original: pretraining CSV, one source sequence per line.",
        **fv,
    )
    flags.DEFINE_string(
        "finetune_file",
        None,
        "original: fine-tuning CSV lines 's1,...,sL,,t1,t2,...'.",
        **fv,
    )
    # === interactions ===
    flags.DEFINE_string(
        "source_log", None, "interactions: source-domain log.", **fv
    )
    flags.DEFINE_string(
        "target_log", None, "interactions: target-domain log.", **fv
    )
    flags.DEFINE_string(
        "columns",
        "user,item,timestamp",
        "interactions: column names in "
        "order; must name user, item, timestamp, may name rating; other "
        "names are ignored columns.",
        **fv,
    )
    flags.DEFINE_string(
        "delimiter",
        ",",
        "interactions: field delimiter ('\\t' or 'tab' for tabs).",
        **fv,
    )
    flags.DEFINE_bool(
        "has_header",
        False,
        "interactions: skip the first line of each log.",
        **fv,
    )
    # === synthetic ===
    flags.DEFINE_integer("num_users", 2000, "synthetic: users.", **fv)
    flags.DEFINE_integer(
        "num_source_items", 500, "synthetic: source items.", **fv
    )
    flags.DEFINE_integer(
        "num_target_items", 100, "synthetic: target items.", **fv
    )
    flags.DEFINE_integer(
        "targets_per_user", 3, "synthetic: target items per user.", **fv
    )
    flags.DEFINE_integer(
        "num_groups", 10, "synthetic: latent taste groups.", **fv
    )
    flags.DEFINE_integer(
        "min_seq_len",
        None,
        "synthetic: shortest source sequence (default: seq_len).",
        **fv,
    )
    flags.DEFINE_float(
        "noise", 0.1, "synthetic: probability of an off-group item.", **fv
    )


class FlagError(errors.UserError, app.UsageError):
    """A missing or invalid flag: one line naming it (exit status 2)."""


def _required(fv: flags.FlagValues, *names: str) -> None:
    missing = [f"--{n}" for n in names if fv[n].value is None]
    if missing:
        raise FlagError(f"--dataset={fv.dataset} needs {', '.join(missing)}.")


def write_options(fv: flags.FlagValues) -> WriteOptions:
    """The `WriteOptions` the parsed flags describe (any `--dataset`)."""
    return WriteOptions(
        seq_len=fv.seq_len or None,  # None: the builder's default.
        seed=fv.seed,
        num_shards=fv.num_shards,
        num_eval_negatives=fv.num_eval_negatives,
        train_fraction=fv.train_fraction,
        skip_bad_lines=fv.skip_bad_lines,
        drop_duplicate_lines=fv.drop_duplicate_lines,
        progress_every=fv.progress_every,
        source_vocab=fv.source_vocab,
    )


def builder_inputs(fv: flags.FlagValues) -> dict:
    """The `--dataset` builder's own keyword arguments, from the flags."""
    _required(fv, "out_dir")
    kind = fv.dataset
    if kind in ("movielens-100k", "movielens-1m"):
        return {"cache_dir": fv.cache_dir}
    if kind == "movielens":
        _required(fv, "ratings_file")
        return {"ratings_file": fv.ratings_file}
    if kind == "original":
        _required(fv, "pretrain_file", "finetune_file")
        return {
            "pretrain_file": fv.pretrain_file,
            "finetune_file": fv.finetune_file,
        }
    if kind == "interactions":
        _required(fv, "source_log", "target_log")
        return {
            "source_log": fv.source_log,
            "target_log": fv.target_log,
            "columns": fv.columns,
            "delimiter": interactions.parse_delimiter(fv.delimiter),
            "has_header": fv.has_header,
        }
    return {  # synthetic
        "num_users": fv.num_users,
        "num_source_items": fv.num_source_items,
        "num_target_items": fv.num_target_items,
        "targets_per_user": fv.targets_per_user,
        "num_groups": fv.num_groups,
        "min_seq_len": fv.min_seq_len,
        "noise": fv.noise,
    }


def summary(stats: dict) -> str:
    """A few lines for the terminal; stats.json has everything."""
    sizes = stats["split_sizes"]
    lines = [
        f"dataset {stats['name']}: seq_len {stats['seq_len']}, "
        f"source vocab {stats['source_vocab_size']}, "
        f"target vocab {stats['target_vocab_size']}",
        f"users: pretrain {stats['pretrain_users']}, "
        f"finetune {stats['finetune_users']}",
        "examples: " + ", ".join(f"{k} {v}" for k, v in sizes.items()),
    ]
    if "domains" in stats:
        lines.append(
            "domains: "
            + ", ".join(f"{k} {v}" for k, v in stats["domains"].items())
        )
    excluded = {
        k: v["count"]
        for k, v in stats.get("excluded_users", {}).items()
        if v["count"]
    }
    if excluded:
        lines.append(f"excluded users: {excluded}")
    if stats.get("source_vocab_file"):
        unknown = stats["unknown_source"]
        lines.append(
            f"source vocabulary from {stats['source_vocab_file']}: unknown "
            f"(-> 0) {unknown['distinct']} distinct items, occurrences "
            f"pretrain {unknown['pretrain']['occurrences']}, finetune "
            f"{unknown['finetune']['occurrences']}"
        )
    elif stats["unknown_source_items"]:
        lines.append(
            f"unknown source items (-> 0): {stats['unknown_source_items']}"
        )
    bad = {k: v["count"] for k, v in stats["bad_lines"].items()}
    lines.append(f"bad lines skipped: {bad or 'none'}")
    duplicates = stats.get("duplicate_lines")
    if duplicates and duplicates["count"]:
        lines.append(
            f"duplicate lines {duplicates['action']}: {duplicates['count']} "
            f"(first: {', '.join(duplicates['examples'][:2])})"
        )
    return "\n".join(lines)


def run(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """Builds the dataset the parsed flags describe; returns its stats."""
    inputs = builder_inputs(flag_values)
    out_dir = flag_values.out_dir
    logging.info("Building %s into %s", flag_values.dataset, out_dir)
    stats = builders.build_dataset(
        flag_values.dataset, out_dir, write_options(flag_values), **inputs
    )
    print(summary(stats))
    print(
        f"Wrote {out_dir} (all statistics: "
        f"{os.path.join(out_dir, dataset_info.STATS_FILE)})."
    )
    return stats


main = common_flags.main_for(run)


def entry_point() -> None:
    """The `uaf-prepare-data` command (also `python launch/prepare_data.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
