"""`uaf-prepare-data` (uaf_tf.cli.prepare_data): main() on tiny inputs."""

import json
import os
import subprocess
import sys

import pytest
from absl import app
from absl import flags

from uaf_tf import errors
from uaf_tf.cli import prepare_data
from uaf_tf.data import dataset_info as di
from uaf_tf.data import pipelines
from uaf_tf.data.vocab import Vocab
from uaf_tf.training import finetune

_REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def _subprocess_env() -> dict:
    """This checkout first on the path (not an installed copy)."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": _REPO_ROOT + (os.pathsep + path if path else ""),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def _flags(argv: list[str]) -> flags.FlagValues:
    """`argv` parsed into fresh flags (no global state)."""
    flag_values = flags.FlagValues()
    prepare_data.define_flags(flag_values)
    flag_values(["prepare_data.py", *argv])
    return flag_values


def _run(argv: list[str]) -> flags.FlagValues:
    """Parses `argv` into fresh flags and runs main."""
    flag_values = _flags(argv)
    prepare_data.main(["prepare_data.py"], flag_values)
    return flag_values


def _artifacts(out: str) -> tuple[di.DatasetInfo, dict]:
    for name in (
        di.DATASET_INFO_FILE,
        di.STATS_FILE,
        di.SOURCE_VOCAB_FILE,
        di.TARGET_VOCAB_FILE,
    ):
        assert os.path.exists(os.path.join(out, name)), name
    info = di.DatasetInfo.load(out)
    with open(os.path.join(out, di.STATS_FILE)) as f:
        stats = json.load(f)
    for split, files in info.split_files.items():
        for path in info.files(out, split):
            assert os.path.exists(path), path
        assert len(files) >= 1
    source = Vocab.load(os.path.join(out, di.SOURCE_VOCAB_FILE))
    target = Vocab.load(os.path.join(out, di.TARGET_VOCAB_FILE))
    assert info.num_source_ids == len(source) + 1
    assert info.num_target_ids == len(target) + 1
    return info, stats


def _count(ds, key="source"):
    return sum(int(b[key].shape[0]) for b in ds)


def test_synthetic(tmp_path, capsys):
    out = str(tmp_path / "syn")
    _run(
        [
            "--dataset=synthetic",
            f"--out_dir={out}",
            "--num_users=120",
            "--num_source_items=40",
            "--num_target_items=25",
            "--seq_len=6",
            "--targets_per_user=2",
            "--num_groups=4",
            "--num_eval_negatives=5",
            "--num_shards=2",
            "--seed=3",
        ]
    )
    info, stats = _artifacts(out)
    assert (info.seq_len, info.num_eval_negatives, info.seed) == (6, 5, 3)
    assert info.split_sizes == {
        "pretrain/train": 114,
        "pretrain/valid": 6,
        "finetune/train": 192,
        "finetune/valid": 12,
        "finetune/test": 36,
    }
    assert stats["synthetic"]["num_users"] == 120
    printed = capsys.readouterr().out
    assert "finetune/test 36" in printed and "target vocab" in printed
    assert (
        _count(
            pipelines.pretrain_dataset(out, "train", 50, shuffle=False, seed=0)
        )
        == 114
    )
    assert _count(pipelines.finetune_train_dataset(out, 50, seed=0)) == 192
    batch = next(iter(pipelines.eval_dataset(out, "valid", 50)))
    assert batch["candidates"].shape == (12, 6)


def test_original_with_skipped_bad_lines(tmp_path):
    pre = tmp_path / "pre.csv"
    fine = tmp_path / "fine.csv"
    pre.write_text("0,0,1,2\n0,3,4,5\n6,7,8,9\n\n0,0,0,2\n")
    fine.write_text("1,2,,a,b\n3,4,,b,c\nno separator\n2,,c\n9,9,,d\n")
    out = str(tmp_path / "orig")
    _run(
        [
            "--dataset=original",
            f"--pretrain_file={pre}",
            f"--finetune_file={fine}",
            f"--out_dir={out}",
            "--skip_bad_lines",
            "--num_eval_negatives=2",
            "--num_shards=1",
        ]
    )
    info, stats = _artifacts(out)
    assert info.seq_len == 4
    assert stats["pretrain_users"] == 4
    assert stats["finetune_instances"] == 6
    assert stats["bad_lines"] == {
        "blank_line": {"count": 1, "examples": [f"{pre}:4"]},
        "missing_separator": {"count": 1, "examples": [f"{fine}:3"]},
    }
    assert (
        sum(
            info.split_sizes[f"finetune/{s}"]
            for s in ("train", "valid", "test")
        )
        == 6
    )
    batch = next(iter(pipelines.eval_dataset(out, "test", 8)))
    assert batch["source"].shape[1] == 4


def test_interactions_with_tab_delimiter_from_flagfile(tmp_path):
    source = tmp_path / "source.tsv"
    target = tmp_path / "target.tsv"
    source.write_text(
        "".join(
            f"u{u}\ts{(u + t) % 7}\t{t}\n" for u in range(30) for t in range(4)
        )
    )
    target.write_text(
        "".join(
            f"u{u}\tt{(u * t) % 5}\t{t}\n"
            for u in range(0, 30, 2)
            for t in range(3)
        )
    )
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(
        "--dataset=interactions\n"
        f"--source_log={source}\n--target_log={target}\n"
        "--columns=user,item,timestamp\n--delimiter=\\t\n"
        f"--out_dir={tmp_path / 'logs'}\n--seq_len=3\n"
        "--num_eval_negatives=3\n"
    )
    _run([f"--flagfile={flagfile}"])
    info, stats = _artifacts(str(tmp_path / "logs"))
    assert info.seq_len == 3
    assert stats["domains"]["overlapping_users"] == 15
    assert stats["excluded_users"]["no_target"]["count"] == 15
    assert stats["finetune_instances"] == 45


def test_source_vocab_reuses_a_pretraining_vocabulary(tmp_path, capsys):
    common = [
        "--dataset=synthetic",
        "--num_users=60",
        "--num_source_items=30",
        "--num_target_items=12",
        "--seq_len=5",
        "--num_eval_negatives=3",
    ]
    pretrained = str(tmp_path / "pretrained")
    _run([*common, f"--out_dir={pretrained}", "--num_groups=3"])
    # Other users and groups: another item order, so the counted vocabulary
    # would not match; with --source_vocab the file is the pretrained one.
    own, new = str(tmp_path / "own"), str(tmp_path / "new")
    _run([*common, f"--out_dir={own}", "--seed=5", "--num_source_items=40"])
    capsys.readouterr()
    _run(
        [
            *common,
            f"--out_dir={new}",
            "--seed=5",
            "--num_source_items=40",
            f"--source_vocab={pretrained}",
        ]
    )
    _, stats = _artifacts(new)
    name = di.SOURCE_VOCAB_FILE
    pretrained_vocab = Vocab.load(os.path.join(pretrained, name)).raw_ids
    assert Vocab.load(os.path.join(new, name)).raw_ids == pretrained_vocab
    assert Vocab.load(os.path.join(own, name)).raw_ids != pretrained_vocab
    # Items 31..40 exist only in the new data: unknown, counted.
    new_items = set(Vocab.load(os.path.join(own, name)).raw_ids)
    unknown = new_items - set(pretrained_vocab)
    assert unknown and unknown <= {str(i) for i in range(31, 41)}
    assert stats["unknown_source"]["distinct"] == len(unknown)
    assert "source vocabulary from" in capsys.readouterr().out

    finetune.check_source_vocabulary(new, pretrained)  # No error.
    with pytest.raises(ValueError, match="--source_vocab="):
        finetune.check_source_vocabulary(own, pretrained)


def _error_line(argv: list[str], capsys) -> str:
    """Runs main on `argv`; asserts exit status 2 and one stderr line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        _run(argv)
    assert info.value.code == errors.EXIT_STATUS
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: "), err
    return err.rstrip("\n")


def test_missing_inputs_are_usage_errors(tmp_path, capsys):
    line = _error_line(["--dataset=movielens", f"--out_dir={tmp_path}"], capsys)
    assert line == "error: --dataset=movielens needs --ratings_file."
    line = _error_line(["--dataset=synthetic"], capsys)
    assert line == "error: --dataset=synthetic needs --out_dir."
    with pytest.raises(app.UsageError):  # Also a UsageError for callers.
        prepare_data.builder_inputs(_flags(["--dataset=synthetic"]))


def test_bad_line_is_one_line_with_file_line_and_kind(tmp_path, capsys):
    pre, fine = tmp_path / "pre.csv", tmp_path / "fine.csv"
    pre.write_text("1,2,3\n4,5,6\n")
    fine.write_text("1,2,,a\n3,4,,b\nno separator\n")
    line = _error_line(
        [
            "--dataset=original",
            f"--pretrain_file={pre}",
            f"--finetune_file={fine}",
            f"--out_dir={tmp_path / 'out'}",
        ],
        capsys,
    )
    assert line.startswith(f"error: {fine}:3: missing_separator: no ',,'")
    assert "Received: 'no separator'" in line and "--skip_bad_lines" in line
    assert not os.path.exists(tmp_path / "out")


def test_missing_file_and_bad_option_are_one_line(tmp_path, capsys):
    pre = tmp_path / "pre.csv"
    pre.write_text("1,2,3\n4,5,6\n")
    common = [
        "--dataset=original",
        f"--pretrain_file={pre}",
        f"--out_dir={tmp_path / 'out'}",
    ]
    missing = tmp_path / "nonexistent.csv"
    line = _error_line([*common, f"--finetune_file={missing}"], capsys)
    assert line == (
        f"error: {missing}: cannot read: No such file or directory."
    )
    line = _error_line([*common, f"--finetune_file={tmp_path}"], capsys)
    assert line == f"error: {tmp_path}: cannot read: Is a directory."
    line = _error_line(
        [*common, f"--finetune_file={pre}", "--num_shards=0"], capsys
    )
    assert line == ("error: `num_shards` must be >= 1. Received: num_shards=0")
    line = _error_line(
        [*common, f"--finetune_file={pre}", "--train_fraction=1.5"], capsys
    )
    assert "train_fraction=1.5" in line


def test_the_command_prints_one_line_and_exits_2(tmp_path):
    # The real entry point in a subprocess: absl's app.run, no traceback.
    pre, fine = tmp_path / "pre.csv", tmp_path / "fine.csv"
    pre.write_text("1,2,3\n4,5,6\n")
    fine.write_text("1,2,,a\n3,4,,\n")
    done = subprocess.run(
        [
            sys.executable,
            "launch/prepare_data.py",
            "--dataset=original",
            f"--pretrain_file={pre}",
            f"--finetune_file={fine}",
            f"--out_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        cwd=_REPO_ROOT,
        env=_subprocess_env(),
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    *logged, last = done.stderr.splitlines()
    assert all(line.startswith("I ") for line in logged), logged  # INFO
    assert [last] == [
        f"error: {fine}:2: empty_target: no target item after ',,'. "
        "Received: '3,4,,'. Fix the file or pass `--skip_bad_lines` to "
        "skip and count such lines."
    ]


def test_every_flag_has_help_text():
    flag_values = flags.FlagValues()
    prepare_data.define_flags(flag_values)
    prepare_data.define_flags(flag_values)  # Idempotent.
    names = flag_values.get_key_flags_for_module(prepare_data)
    assert len(names) >= 20
    for flag in names:
        assert len(flag.help) > 10, flag.name
