"""`uaf-export` (uaf_tf.cli.export) end to end on a tiny fine-tuned run."""

import os
import re
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf
from absl import app
from absl import flags

from uaf_tf import errors
from uaf_tf import run_dir as run_dir_lib
from uaf_tf import testing
from uaf_tf.cli import export
from uaf_tf.serving import run_export
from uaf_tf.serving import signature_keys as keys
from uaf_tf.training import finetune
from uaf_tf.training import pretrain
from uaf_tf.training import trainer

TOP_K = 4


@pytest.fixture(scope="module")
def finetuned_run(tmp_path_factory):
    """A 1-epoch UAF-gumbel run on tiny synthetic data (the real pipeline)."""
    root = tmp_path_factory.mktemp("pipeline")
    data_dir = testing.build_tiny_dataset_dir(
        str(root / "data"),
        num_users=120,
        num_eval_negatives=20,
        min_seq_len=3,
        num_shards=1,
    )
    tiny = dict(
        training=trainer.TrainingConfig(
            epochs=1, batch_size=64, jit_compile=False, log_every_steps=0
        )
    )
    pretrain.run_pretraining(
        pretrain.PretrainConfig(
            data_dir=data_dir, channels=8, dilations=(1, 2), **tiny
        ),
        str(root / "pretrain"),
    )
    run_dir = str(root / "finetune")
    finetune.run_finetuning(
        finetune.FinetuneConfig(
            data_dir=data_dir,
            pretrained=str(root / "pretrain"),
            method="gumbel",
            **tiny,
        ),
        run_dir,
    )
    return run_dir


def _main(tmp_path, **flag_overrides):
    """Runs `export.main` with fresh flags; returns the parsed FlagValues."""
    fv = flags.FlagValues()
    export.define_flags(fv)
    argv = ["export"] + [f"--{k}={v}" for k, v in flag_overrides.items()]
    fv(argv)
    export.main(["export"], fv)
    return fv


def _vocab(run_dir, name):
    with open(os.path.join(run_dir, name)) as f:
        return f.read().splitlines()


def test_the_exported_run_directory_is_complete(finetuned_run):
    testing.assert_run_dir(
        finetuned_run,
        [
            run_dir_lib.CONFIG_FILE,
            run_dir_lib.MODEL_FILE,
            run_dir_lib.BEST_WEIGHTS_FILE,
            run_dir_lib.RESULTS_FILE,
            run_dir_lib.CHECKPOINT_DIR + "/",
            run_dir_lib.TENSORBOARD_DIR + "/",
            *run_dir_lib.VOCABULARY_FILES,
        ],
    )
    config = run_dir_lib.read_config(finetuned_run)
    assert config["method"] == "gumbel"
    assert set(config[run_dir_lib.ENVIRONMENT_KEY]) == {
        "python",
        "packages",
        "devices",
        "cpu",
        "git",
        "argv",
    }


def test_exported_run_serves_without_the_run_dir(finetuned_run, tmp_path):
    run_copy = str(tmp_path / "run_copy")
    shutil.copytree(finetuned_run, run_copy)
    base = tmp_path / "exports"
    _main(tmp_path, run_dir=run_copy, export_base=base, top_k=TOP_K, version=3)
    shutil.rmtree(run_copy)  # the served model must not need these files
    version_dir = base / "uaf" / "3"
    assert sorted(os.listdir(base / "uaf")) == ["3"]
    testing.assert_run_dir(
        str(version_dir),
        [
            "saved_model.pb",
            "fingerprint.pb",
            "variables/",
            "assets/",
            "assets.extra/",
        ],
        exact=True,
    )
    records = tf.data.TFRecordDataset(
        str(version_dir / "assets.extra" / "tf_serving_warmup_requests")
    )
    # One request per signature and batching batch size (1, 8, 32, 128, 256).
    assert sum(1 for _ in records) == 2 * 5

    source = _vocab(finetuned_run, "source_vocab.txt")
    target = _vocab(finetuned_run, "target_vocab.txt")
    seq_len = 12
    history = source[5 : 5 + seq_len + 2]  # two more than L: oldest dropped
    serve = tf.saved_model.load(str(version_dir)).signatures[keys.SERVE]
    out = serve(
        source_items=tf.constant([history, history[-3:] + [""] * 11]),
        exclude_history=tf.constant([False]),  # plain top K, as below
    )

    model = run_dir_lib.load_model(finetuned_run)
    ids = np.zeros([2, seq_len], np.int32)
    ids[0] = [source.index(item) + 1 for item in history[-seq_len:]]
    ids[1, -3:] = ids[0, -3:]
    expected = model(ids, training=False)
    scores = np.asarray(model.score_all_items(expected["user_embedding"]))
    best = np.argsort(-scores[:, 1:], axis=1, kind="stable")[:, :TOP_K] + 1
    top_items = out[keys.TOP_K_ITEMS].numpy().astype(str).tolist()
    assert top_items == [[target[i - 1] for i in row] for row in best]
    np.testing.assert_allclose(
        out[keys.TOP_K_SCORES], np.take_along_axis(scores, best, 1), rtol=1e-5
    )
    np.testing.assert_array_equal(out[keys.POLICY], expected["policy"])
    assert set(np.unique(out[keys.POLICY].numpy())) <= {0.0, 1.0}


def test_existing_version_is_refused_unless_overwrite(
    finetuned_run, tmp_path, capsys
):
    base = tmp_path / "exports"
    _main(tmp_path, run_dir=finetuned_run, export_base=base, version=7)
    pb = base / "uaf" / "7" / "saved_model.pb"
    first_mtime = os.stat(pb).st_mtime_ns
    _assert_user_error(
        capsys,
        r"already exists; choose another --version or pass --overwrite",
        run_dir=finetuned_run,
        export_base=base,
        version=7,
    )
    assert os.stat(pb).st_mtime_ns == first_mtime
    _main(
        tmp_path,
        run_dir=finetuned_run,
        export_base=base,
        version=7,
        overwrite=True,
        model_name="uaf",
    )
    assert os.stat(pb).st_mtime_ns != first_mtime
    assert sorted(os.listdir(base / "uaf")) == ["7"]  # no leftovers


def test_failure_mid_export_leaves_no_version(
    finetuned_run, tmp_path, monkeypatch
):
    def fail(export_dir, examples):
        # The SavedModel is fully written at this point, but unpublished.
        assert os.path.exists(os.path.join(export_dir, "saved_model.pb"))
        raise RuntimeError("crash during export")

    monkeypatch.setattr(run_export, "check_export", fail)
    base = tmp_path / "exports"
    with pytest.raises(RuntimeError, match="crash during export"):
        _main(tmp_path, run_dir=finetuned_run, export_base=base, version=2)
    assert not os.path.exists(base)  # nothing created, not even exports/


def test_default_version_is_a_timestamp(finetuned_run, tmp_path):
    before = int(time.time())
    fv = _main(
        tmp_path, run_dir=finetuned_run, export_base=tmp_path, model_name="m"
    )
    assert fv.version is None
    (version,) = os.listdir(tmp_path / "m")
    assert before <= int(version) <= int(time.time())


def _assert_user_error(capsys, pattern, **flag_overrides):
    """`export.main` exits with 2 and prints one line matching `pattern`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _main(None, **flag_overrides)
    assert exit_info.value.code == errors.EXIT_STATUS
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(pattern, err), err
    return err


def test_bad_requests_are_clear_errors(finetuned_run, tmp_path, capsys):
    _assert_user_error(
        capsys,
        r"--top_k=41: .*\[1, 40\]",
        run_dir=finetuned_run,
        export_base=tmp_path,
        top_k=41,
    )
    with pytest.raises(app.UsageError, match="--export_base"):
        _main(tmp_path, run_dir=finetuned_run)
    assert not os.path.exists(tmp_path / "uaf")


def test_non_finetuned_runs_are_one_line_errors_creating_nothing(
    finetuned_run, tmp_path, capsys
):
    """Issue 12 item 8: a pretraining run raised `TypeError: Tensor is
    unhashable` and left an empty exports/uaf/."""
    root = os.path.dirname(finetuned_run)
    base = tmp_path / "exports"
    cases = {
        os.path.join(root, "pretrain"): r"a 'pretrain' run, not a fine-tuned",
        os.path.join(root, "data"): r"not a run directory \(config.json",
        str(tmp_path / "typo"): r"no such directory",
    }
    for run_dir, why in cases.items():
        err = _assert_user_error(capsys, why, run_dir=run_dir, export_base=base)
        assert f"--run_dir={run_dir}: " in err
    assert not base.exists()
