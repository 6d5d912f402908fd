"""Whitespace around ids, id length cap, duplicate lines kept or dropped."""

import pytest

from uaf_tf.data.preparation import bad_lines as bl
from uaf_tf.data.preparation import duplicates
from uaf_tf.data.preparation import interactions
from uaf_tf.data.preparation import original
from uaf_tf.data.preparation import readers
from uaf_tf.data.preparation.write_options import WriteOptions

PRETRAIN = "0,1,2,3\n4,5,6,7\n1,3,5,7\n2,4,6\n"


def _files(tmp_path, pretrain, finetune):
    pre, fine = tmp_path / "pre.csv", tmp_path / "fine.csv"
    pre.write_text(pretrain)
    fine.write_text(finetune)
    return str(pre), str(fine)


def test_whitespace_around_ids_is_stripped(tmp_path):
    pre, fine = _files(
        tmp_path, " 0, 1 ,2\t\n", "\t17 , 3,,  a ,b \r\n 17,3,,a\n"
    )
    rows = list(readers.read_pretrain_file(pre, bad_lines=bl.BadLines()))
    assert rows == [(1, 3, ["1", "2"])]  # " 0" is padding
    rows = list(readers.read_finetune_file(fine, bad_lines=bl.BadLines()))
    assert rows == [(1, ["17", "3"], ["a", "b"]), (2, ["17", "3"], ["a"])]
    with pytest.raises(bl.BadLineError) as info:
        list(
            readers.read_finetune_file(
                _files(tmp_path, "", "1, ,2,,a\n")[1], bad_lines=bl.BadLines()
            )
        )
    assert info.value.kind == bl.EMPTY_ID


def test_over_long_id_is_a_bad_line_in_every_reader(tmp_path):
    long_id = "x" * (readers.MAX_ID_LENGTH + 1)
    ok_id = "y" * readers.MAX_ID_LENGTH
    pre, fine = _files(
        tmp_path,
        f"1,{ok_id}\n1,{long_id}\n",
        f"1,,{ok_id}\n1,,{long_id}\n{long_id},,a\n",
    )
    tracker = bl.BadLines(skip=True)
    rows = list(readers.read_pretrain_file(pre, bad_lines=tracker))
    assert [r[0] for r in rows] == [1]
    rows = list(readers.read_finetune_file(fine, bad_lines=tracker))
    assert [r[0] for r in rows] == [1]
    assert tracker.to_json() == {
        bl.OVER_LONG_ID: {
            "count": 3,
            "examples": [f"{pre}:2", f"{fine}:2", f"{fine}:3"],
        }
    }
    log = tmp_path / "log.csv"
    log.write_text(f"u,i,1\n{long_id},i,2\nu,{long_id},3\n")
    with pytest.raises(bl.BadLineError) as info:
        list(
            interactions.read_interactions(
                str(log),
                columns=("user", "item", "timestamp"),
                delimiter=",",
                bad_lines=bl.BadLines(),
            )
        )
    assert (info.value.line_number, info.value.kind) == (2, bl.OVER_LONG_ID)
    assert f"an id of {readers.MAX_ID_LENGTH + 1} characters" in str(info.value)


@pytest.mark.parametrize("drop", [False, True])
def test_duplicate_finetune_lines_are_counted_and_kept_or_dropped(
    tmp_path, drop
):
    # Line 3 repeats line 1 once whitespace is stripped; line 4 repeats 2.
    finetune = "1,2,,a,b\n4,5,,c\n 1, 2,,a ,b\n4,5,,c\n2,4,,a\n"
    pre, fine = _files(tmp_path, PRETRAIN + "0,1,2,3\n", finetune)
    stats = original.build_from_original(
        str(tmp_path / "out"),
        pre,
        fine,
        WriteOptions(num_eval_negatives=1, drop_duplicate_lines=drop),
    )
    assert stats["duplicate_lines"] == {
        "count": 3,
        "action": "dropped" if drop else "kept",
        "per_file": {pre: 1, fine: 2},
        "examples": [f"{pre}:5", f"{fine}:3", f"{fine}:4"],
    }
    # Kept: 2 + 1 + 2 + 1 + 1 instances; dropped: lines 3 and 4 go.
    assert stats["finetune_instances"] == (4 if drop else 7)
    assert stats["pretrain_users"] == (4 if drop else 5)
    assert stats["finetune_users"] == (3 if drop else 5)


def test_duplicate_interactions_compare_parsed_records(tmp_path):
    source = tmp_path / "source.csv"
    target = tmp_path / "target.csv"
    # " u1 , s1 ,5.0" is the record of "u1,s1,5"; "u1,s1,6" is not.
    source.write_text("u1,s1,5\n u1 , s1 ,5.0\nu1,s1,6\nu2,s2,1\nu3,s1,1\n")
    target.write_text("u1,t1,7\nu1,t1,7\nu2,t2,8\nu3,t1,9\nu3,t2,9\n")
    counts = {}
    for drop in (False, True):
        stats = interactions.build_from_interactions(
            str(tmp_path / f"out-{drop}"),
            str(source),
            str(target),
            WriteOptions(num_eval_negatives=0, drop_duplicate_lines=drop),
        )
        assert stats["duplicate_lines"]["count"] == 2
        assert stats["duplicate_lines"]["examples"] == [
            f"{source}:2",
            f"{target}:2",
        ]
        counts[drop] = (
            stats["finetune_instances"],
            stats["seq_len_histogram"]["pretrain"],
        )
    assert counts == {
        False: (5, {"1": 2, "3": 1}),
        True: (4, {"1": 2, "2": 1}),
    }


def test_digests_keep_field_boundaries():
    digest = duplicates.record_digest
    assert digest((["a", "b"], ["c"])) != digest((["a"], ["b", "c"]))
    assert digest((["a,b"],)) != digest((["a", "b"],))
    assert digest(("u", "i", 5.0, None)) == digest(("u", "i", 5.0, None))
