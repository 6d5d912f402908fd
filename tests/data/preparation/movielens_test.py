"""MovieLens: rating rule per GroupLens layout, recency, ties, bad lines."""

import json
import os

import pytest

from uaf_tf.data import dataset_info as di
from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import movielens
from uaf_tf.data.preparation.write_options import WriteOptions
from uaf_tf.data.vocab import Vocab

# (user, item, rating, timestamp) with integer ratings. User 1 has four
# ratings below 4 (13 oldest, 16 and 14 tied at t=200), targets 11 and 15,
# and a 4 that goes nowhere; user 2 has only a target (no source);
# user 3 only a 4; user 4 only a source item.
INTEGER_ROWS = [
    ("1", "10", "3", "100"),
    ("1", "11", "5", "50"),
    ("1", "12", "4", "60"),
    ("1", "13", "1", "10"),
    ("1", "16", "2", "200"),
    ("1", "14", "3", "200"),
    ("1", "15", "5", "300"),
    ("2", "10", "5", "1"),
    ("3", "20", "4", "7"),
    ("4", "13", "2", "5"),
]
# Half-star scale: 3.5 and 0.5 are source, 4.5 and 5.0 target, 4.0 neither.
HALF_STAR_ROWS = [
    ("1", "10", "3.5", "100"),
    ("1", "11", "4.5", "50"),
    ("1", "12", "4.0", "60"),
    ("1", "13", "0.5", "10"),
    ("1", "16", "2.5", "200"),
    ("1", "14", "3.0", "200"),
    ("1", "15", "5.0", "300"),
    ("2", "10", "4.5", "1"),
    ("3", "20", "4.0", "7"),
    ("4", "13", "2.0", "5"),
]


def _write(tmp_path, layout, rows):
    if layout == "u.data":
        text = "".join("\t".join(r) + "\n" for r in rows)
    elif layout == "ratings.dat":
        text = "".join("::".join(r) + "\n" for r in rows)
    else:
        text = movielens.CSV_HEADER + "\n"
        text += "".join(",".join(r) + "\n" for r in rows)
    path = tmp_path / layout
    path.write_text(text)
    return str(path)


CASES = [
    ("u.data", INTEGER_ROWS),
    ("ratings.dat", INTEGER_ROWS),
    ("ratings.csv", INTEGER_ROWS),
    ("ratings.csv", HALF_STAR_ROWS),
]


@pytest.mark.parametrize("layout, rows", CASES)
def test_below_four_is_source_above_four_is_target(tmp_path, layout, rows):
    path = _write(tmp_path, layout, rows)
    assert movielens.detect_layout(path).name == layout
    stream = movielens.group_ratings(path, seq_len=3, bad_lines=bl.BadLines())
    # Most recent 3 source items, oldest first; the t=200 tie keeps line
    # order (16 before 14); item 13 (t=10) is dropped as the oldest.
    assert list(stream.pretrain_sequences(None)) == [
        ["10", "16", "14"],
        ["13"],
    ]
    assert list(stream.finetune_users(None)) == [
        ("1", ["10", "16", "14"], ["11", "15"])
    ]
    stats = stream.stats()
    assert stats["domains"]["source_users"] == 2
    assert stats["domains"]["target_users"] == 2
    assert stats["domains"]["overlapping_users"] == 1
    assert stats["domains"]["ignored_interactions"] == 2
    assert stats["domains"]["source_histories_truncated_to_seq_len"] == 1
    excluded = {k: v["count"] for k, v in stats["excluded_users"].items()}
    assert excluded == {"no_source": 1, "no_target": 1, "neither_domain": 1}


def test_build_writes_counts_and_padded_sequences(tmp_path):
    rows = INTEGER_ROWS + [("5", "30", "1", "1"), ("5", "31", "5", "2")]
    path = _write(tmp_path, "u.data", rows)
    out = str(tmp_path / "out")
    stats = movielens.build_from_movielens(
        out, path, WriteOptions(seq_len=4, num_eval_negatives=2, seed=0)
    )
    assert stats["finetune_instances"] == 3  # user 1: 2, user 5: 1.
    assert stats["pretrain_users"] == 3
    assert stats["seq_len_histogram"]["pretrain"] == {"1": 2, "4": 1}
    source_vocab = Vocab.load(os.path.join(out, di.SOURCE_VOCAB_FILE))
    # 13 is the only source item of two users (1 and 4): id 1.
    assert source_vocab.raw_ids[0] == "13"
    assert sorted(source_vocab.raw_ids) == ["10", "13", "14", "16", "30"]
    info = di.DatasetInfo.load(out)
    assert info.num_source_ids == 6 and info.num_target_ids == 4
    assert info.seq_len == 4
    with open(os.path.join(out, di.STATS_FILE)) as f:
        assert json.load(f)["excluded_users"]["no_source"]["count"] == 1


@pytest.mark.parametrize(
    "line, kind",
    [
        ("1\t2\t3", bl.WRONG_COLUMN_COUNT),
        ("1\t2\t3\t4\t5", bl.WRONG_COLUMN_COUNT),
        ("1\t2\tfive\t4", bl.BAD_RATING),
        ("1\t2\tnan\t4", bl.BAD_RATING),
        ("1\t2\t3\tyesterday", bl.BAD_TIMESTAMP),
        ("\t2\t3\t4", bl.EMPTY_ID),
        ("1\t\t3\t4", bl.EMPTY_ID),
        ("", bl.BLANK_LINE),
    ],
)
def test_bad_rating_lines_name_file_line_and_reason(tmp_path, line, kind):
    path = tmp_path / "u.data"
    path.write_text(f"1\t2\t3\t4\n{line}\n1\t3\t5\t6\n")
    with pytest.raises(bl.BadLineError) as info:
        movielens.group_ratings(str(path), seq_len=3, bad_lines=bl.BadLines())
    assert (info.value.path, info.value.line_number) == (str(path), 2)
    assert info.value.kind == kind
    tracker = bl.BadLines(skip=True)
    stream = movielens.group_ratings(str(path), seq_len=3, bad_lines=tracker)
    assert tracker.to_json() == {kind: {"count": 1, "examples": [f"{path}:2"]}}
    assert list(stream.finetune_users(None)) == [("1", ["2"], ["3"])]


def test_csv_header_is_skipped_and_counts_bad_lines_in_stats(tmp_path):
    rows = HALF_STAR_ROWS + [("7", "1", "x", "1")]
    path = _write(tmp_path, "ratings.csv", rows)
    stats = movielens.build_from_movielens(
        str(tmp_path / "out"),
        path,
        WriteOptions(seq_len=3, skip_bad_lines=True, num_eval_negatives=0),
    )
    assert stats["bad_lines"] == {
        bl.BAD_RATING: {"count": 1, "examples": [f"{path}:12"]}
    }


def test_unknown_layout_is_a_clear_error(tmp_path):
    path = tmp_path / "ratings.txt"
    path.write_text("1 2 3 4\n")
    with pytest.raises(ValueError, match="not a GroupLens ratings file"):
        movielens.detect_layout(str(path))
