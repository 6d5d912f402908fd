"""Start-up output filtering and config files of the commands."""

import os

import pytest
from absl import app
from absl import flags

from uaf_tf import errors
from uaf_tf.cli import common_flags
from uaf_tf.training import pretrain

# What `import tensorflow` and the first device listing print on a CPU-only
# machine with TF 2.21, even with TF_CPP_MIN_LOG_LEVEL=2 (copied from a run).
_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR\n"
    "I0000 00:00:1795826055.899364    6694 port.cc:153] oneDNN custom "
    "operations are on. You may see slightly different numerical results "
    "due to floating-point round-off errors from different computation "
    "orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "I0000 00:00:1795826055.899636    6694 cudart_stub.cc:31] Could not find "
    "cuda drivers on your machine, GPU will not be used.\n"
)
_CUINIT = (
    "E0000 00:00:1795826058.331440    6694 cuda_platform.cc:52] failed call "
    "to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR "
    "(303)\n"
)


def test_known_startup_lines_are_dropped_and_others_kept():
    text = _NOISE + "a real warning\n" + _NOISE + _CUINIT + "Traceback\n"
    assert common_flags._drop_startup_noise(text) == (
        "a real warning\nTraceback\n"
    )
    # Without the "no driver" line, a cuInit failure is news: kept.
    assert common_flags._drop_startup_noise(_CUINIT) == _CUINIT


def test_filtered_stderr_captures_the_file_descriptor(capfd):
    with common_flags._filtered_stderr():
        os.write(2, (_NOISE + "kept\n").encode())
    assert capfd.readouterr().err == "kept\n"


def test_unreadable_config_file_is_a_usage_error(tmp_path):
    path = str(tmp_path / "missing.json")
    with pytest.raises(app.UsageError, match="missing.json"):
        common_flags.read_config_file(pretrain.PretrainConfig, path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(app.UsageError, match="bad.json"):
        common_flags.read_config_file(
            pretrain.PretrainConfig, str(tmp_path / "bad.json")
        )


def test_user_errors_print_one_line_and_exit_2(capsys):
    def run(flag_values):
        raise errors.UserError("/data/u.data:17: bad_item_id: empty id")

    main = common_flags.main_for(run)
    with pytest.raises(SystemExit) as exit_info:
        main(["prog"], flags.FlagValues())
    assert exit_info.value.code == errors.EXIT_STATUS
    err = capsys.readouterr().err
    assert err == "error: /data/u.data:17: bad_item_id: empty id\n"


def test_other_errors_keep_their_traceback():
    def run(flag_values):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        common_flags.main_for(run)(["prog"], flags.FlagValues())


def _pretrain_flags(argv):
    from uaf_tf.cli import pretrain as pretrain_cli

    fv = flags.FlagValues()
    pretrain_cli.define_flags(fv)
    fv(["pretrain", *argv])
    return fv


def test_resume_takes_the_options_not_given_from_the_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(
        '{"task": "pretrain", "data_dir": "d", "channels": 8, '
        '"training": {"epochs": 5, "learning_rate": 0.003}, '
        '"environment": {}, "resume_history": []}'
    )
    fv = _pretrain_flags([f"--run_dir={run_dir}", "--resume", "--epochs=7"])
    config, resolved = common_flags.config_and_run_dir(
        pretrain.PretrainConfig, lambda c: "unused", fv
    )
    assert resolved == str(run_dir)
    assert (config.data_dir, config.channels) == ("d", 8)
    assert config.training.epochs == 7  # Given: it counts as a change.
    assert config.training.learning_rate == 0.003
    # Without --resume the run's file is not read: --data_dir is missing.
    fv = _pretrain_flags([f"--run_dir={run_dir}", "--epochs=7"])
    with pytest.raises(errors.UserError, match="--data_dir is required"):
        common_flags.config_and_run_dir(
            pretrain.PretrainConfig, lambda c: "unused", fv
        )
    # A key the config does not know is named with the file.
    (run_dir / "config.json").write_text('{"chanels": 8}')
    fv = _pretrain_flags([f"--run_dir={run_dir}", "--resume"])
    with pytest.raises(errors.UserError, match=r"--resume: .*`chanels`"):
        common_flags.config_and_run_dir(
            pretrain.PretrainConfig, lambda c: "unused", fv
        )
