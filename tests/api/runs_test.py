"""`uaf_tf.pretrain` / `finetune` / `load_run` and `Run` on tiny data."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import uaf_tf
from uaf_tf import testing
from uaf_tf.data.vocab import Vocab

# Small and fast; XLA off so no compile time is spent.
PRETRAIN_OPTIONS = dict(
    channels=8,
    dilations=(1, 2),
    batch_size=64,
    epochs=1,
    log_every_steps=0,
    jit_compile=False,
)
FINETUNE_OPTIONS = dict(
    batch_size=64, epochs=1, log_every_steps=0, jit_compile=False
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("api_runs")
    data = testing.build_tiny_dataset_dir(str(root / "data"))
    pretrained = uaf_tf.pretrain(data, root / "pretrain", **PRETRAIN_OPTIONS)
    gumbel = uaf_tf.finetune(
        data, pretrained, root / "gumbel", **FINETUNE_OPTIONS
    )
    rl = uaf_tf.finetune(
        data,
        pretrained.path,
        root / "rl",
        method="rl",
        rl_curriculum_epochs=0,
        **FINETUNE_OPTIONS,
    )
    return {
        "root": root,
        "data": data,
        "pretrain": pretrained,
        "gumbel": gumbel,
        "rl": rl,
    }


def test_runs_describe_themselves(runs):
    assert runs["pretrain"].kind == "pretrain"
    assert runs["gumbel"].kind == runs["rl"].kind == "finetune"
    assert runs["rl"].config["method"] == "rl"
    assert runs["rl"].config["rl_curriculum_epochs"] == 0
    assert runs["gumbel"].config["pretrained"] == runs["pretrain"].path
    assert runs["gumbel"].results["best_epoch"] == 1
    assert type(runs["gumbel"].model).__name__ == "UAFRecommender"
    assert type(runs["pretrain"].model).__name__ == "SequencePretrainer"


@pytest.mark.parametrize("name", ["gumbel", "rl"])
@pytest.mark.parametrize("split", ["valid", "test"])
def test_evaluate_reproduces_results(runs, name, split):
    # Exact equality, not a tolerance: the same task code ranks the same
    # stored candidates with the weights the trainer selected (it reloads
    # best.weights.h5 before the test split), on CPU kernels that are
    # deterministic, so any difference means the reloaded model or the
    # evaluation path differs from training's.
    run = uaf_tf.load_run(runs[name].path)  # A fresh model from disk.
    assert run.evaluate(split) == run.results[split]


def test_evaluate_pretraining_run_reproduces_valid(runs):
    run = uaf_tf.load_run(runs["pretrain"].path)
    assert run.evaluate() == run.results["valid"]  # Default: "valid".


def _expected_top_k(run, histories, k):
    """Encodes and ranks with NumPy and the model's own layers: the
    reference `recommend` is checked against."""
    info = run.info
    source = Vocab.load(os.path.join(run.path, "source_vocab.txt"))
    target = Vocab.load(os.path.join(run.path, "target_vocab.txt"))
    ids = np.zeros([len(histories), info.seq_len], np.int32)
    for row, history in enumerate(histories):
        kept = [item for item in history if item][-info.seq_len :]
        if kept:
            ids[row, -len(kept) :] = source.encode(kept)
    outputs = run.model(ids, training=False)
    scores = np.array(run.model.score_all_items(outputs["user_embedding"]))
    scores[:, 0] = -np.inf  # Never the padding id.
    # Stable sort of the negated scores: ties go to the lower id.
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    items = np.vectorize(target.raw_id)(top)
    return items, np.take_along_axis(scores, top, 1), outputs["policy"]


def test_recommend_matches_the_model(runs):
    run = runs["gumbel"]
    source = Vocab.load(os.path.join(run.path, "source_vocab.txt"))
    seq_len = run.info.seq_len
    known = source.raw_ids
    histories = [
        known[:3],
        known[: seq_len + 5],  # Longer than L: only the last L count.
        ["never-seen", known[4], "also-unknown"],  # Unknown -> id 0.
        [],  # All padding.
        [known[7], "", known[2]],  # "" is dropped, as serving does.
    ]
    k = 7
    recs = run.recommend(histories, k=k)
    items, scores, policy = _expected_top_k(run, histories, k)
    np.testing.assert_array_equal(recs.items, items)
    np.testing.assert_allclose(recs.scores, scores, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(recs.policy, policy)
    assert recs.policy.shape == (
        len(histories),
        len(PRETRAIN_OPTIONS["dilations"]),
    )
    assert len(recs) == len(histories)
    # Longer than L and its last L items alone: the same answer.
    tail = run.recommend([known[5 : seq_len + 5]], k=k)
    np.testing.assert_array_equal(tail.items[0], recs.items[1])


def test_recommend_in_batches_and_for_no_users(runs):
    run = runs["rl"]
    known = Vocab.load(os.path.join(run.path, "source_vocab.txt")).raw_ids
    histories = [known[i : i + 4] for i in range(5)]
    whole = run.recommend(histories, k=3)
    batched = run.recommend(histories, k=3, batch_size=2)
    np.testing.assert_array_equal(batched.items, whole.items)
    np.testing.assert_array_equal(batched.policy, whole.policy)
    np.testing.assert_allclose(batched.scores, whole.scores, rtol=1e-6)
    empty = run.recommend([], k=3)
    assert empty.items.shape == empty.scores.shape == (0, 3)
    assert empty.policy.shape == (0, 2)


def test_recommend_every_item_is_a_raw_target_id(runs):
    run = runs["gumbel"]
    num_items = run.info.num_target_ids - 1
    recs = run.recommend([["x"]], k=num_items)  # All but padding.
    target = Vocab.load(os.path.join(run.path, "target_vocab.txt"))
    assert sorted(recs.items[0]) == sorted(target.raw_ids)
    assert np.all(np.diff(recs.scores[0]) <= 0)  # Best first.


@pytest.mark.parametrize(
    "histories, error, match",
    [
        (["1", "2"], TypeError, r"histories\[0\].*wrap a single history"),
        ([[1, 2]], TypeError, "must hold str only"),
        ("1 2", TypeError, "must be a list of histories"),
    ],
)
def test_recommend_refuses_bad_histories(runs, histories, error, match):
    with pytest.raises(error, match=match):
        runs["gumbel"].recommend(histories)


def test_recommend_refuses_bad_k(runs):
    run = runs["gumbel"]
    num_items = run.info.num_target_ids - 1
    for k in (0, num_items + 1):
        with pytest.raises(
            ValueError, match=f"must be in \\[1, {num_items}\\]"
        ):
            run.recommend([["1"]], k=k)


def test_pretraining_run_does_not_recommend(runs):
    path = runs["pretrain"].path
    with pytest.raises(ValueError, match=f"{path} is a pretraining run"):
        runs["pretrain"].recommend([["1"]])


def test_evaluate_errors(runs, tmp_path):
    run = runs["gumbel"]
    with pytest.raises(ValueError, match="`split` must be one of"):
        run.evaluate("tset")
    with pytest.raises(ValueError, match="`split` must be one of"):
        runs["pretrain"].evaluate("test")  # Pretraining has no test split.
    other = testing.build_tiny_dataset_dir(str(tmp_path / "other"), seed=1)
    with pytest.raises(ValueError, match=r"not the dataset .* \['seed'"):
        run.evaluate(data_dir=other)


def test_evaluate_finds_a_moved_dataset_only_when_told(runs, tmp_path):
    moved = str(tmp_path / "moved")
    shutil.copytree(runs["data"], moved)
    run = uaf_tf.load_run(runs["gumbel"].path)
    run.config = {**run.config, "data_dir": str(tmp_path / "gone")}
    with pytest.raises(FileNotFoundError, match="pass `data_dir=`"):
        run.evaluate()
    assert run.evaluate(data_dir=moved) == run.results["test"]


def test_load_run_errors(runs, tmp_path):
    missing = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
        uaf_tf.load_run(missing)
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        uaf_tf.load_run(runs["data"])  # A dataset, not a run.
    unfinished = str(tmp_path / "unfinished")
    shutil.copytree(runs["gumbel"].path, unfinished)
    os.remove(os.path.join(unfinished, "results.json"))
    with pytest.raises(
        FileNotFoundError,
        match=(
            f"{unfinished} is not a finished fine-tuning run: missing "
            r"results.json. It holds checkpoints: .*resume=True"
        ),
    ):
        uaf_tf.load_run(unfinished)


def test_finetune_errors(runs, tmp_path):
    data, gumbel = runs["data"], runs["gumbel"]
    with pytest.raises(ValueError, match=f"{gumbel.path} is a fine-tuning"):
        uaf_tf.finetune(data, gumbel, tmp_path / "x")
    with pytest.raises(TypeError, match=r"option\(s\) \['epoch', 'tau'\]"):
        uaf_tf.finetune(data, runs["pretrain"], tmp_path / "x", epoch=1, tau=2)
    with pytest.raises(ValueError, match="`method` must be one of"):
        uaf_tf.finetune(data, runs["pretrain"], tmp_path / "x", method="ppo")
    assert not os.path.exists(tmp_path / "x")  # Refused before writing.
    with pytest.raises(FileNotFoundError, match="not a dataset directory"):
        uaf_tf.finetune(tmp_path, runs["pretrain"], tmp_path / "x")


def test_dataset_with_a_runs_source_vocabulary(runs, tmp_path):
    pretrained = runs["pretrain"]
    # Other users (seed), fewer source items: some of the run's items are
    # absent, and ids still follow the run's vocabulary.
    data = uaf_tf.prepare_dataset(
        "synthetic",
        tmp_path / "other",
        num_users=100,
        num_source_items=40,
        num_target_items=20,
        seq_len=12,
        num_eval_negatives=5,
        seed=3,
        source_vocab=pretrained,  # A `Run` is a path.
    )
    with open(os.path.join(pretrained.path, "source_vocab.txt")) as f:
        expected = f.read()
    with open(os.path.join(data.path, "source_vocab.txt")) as f:
        assert f.read() == expected
    assert data.info.num_source_ids == pretrained.info.num_source_ids


def test_pretrain_refuses_a_started_run_dir(runs):
    with pytest.raises(FileExistsError, match="pass `resume=True`"):
        uaf_tf.pretrain(runs["data"], runs["pretrain"].path, **PRETRAIN_OPTIONS)


def test_importing_uaf_tf_imports_no_tensorflow():
    # The API is resolved lazily: `import uaf_tf` (and so every
    # `uaf_tf.<module>` import, e.g. by the launch scripts before they
    # silence TensorFlow's start-up lines) stays light.
    code = (
        "import sys, uaf_tf; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
        "assert 'load_run' in dir(uaf_tf)"
    )
    root = os.path.dirname(os.path.dirname(uaf_tf.__file__))
    env = {**os.environ, "PYTHONPATH": root}  # This checkout's uaf_tf.
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert uaf_tf.load_run is uaf_tf.api.load_run
    with pytest.raises(AttributeError, match="no attribute 'lod_run'"):
        uaf_tf.lod_run  # noqa: B018


def test_predict_profile_run_loads_and_evaluates(runs):
    data = runs["data"]
    testing.write_planted_profiles(data, num_source_items=60)
    run = uaf_tf.predict_profile(
        data,
        runs["pretrain"],
        runs["root"] / "profile",
        label="gender",
        method="finetune-all",
        **FINETUNE_OPTIONS,
    )
    assert (run.kind, run.config["task"]) == ("profile", "profile")
    assert run.config["profile_label"] == "gender"
    assert type(run.model).__name__ == "FinetuneProfileClassifier"
    loaded = uaf_tf.load_run(run.path)  # A fresh model from disk.
    assert loaded.results == run.results
    assert loaded.evaluate() == run.results["test"]  # Default: "test".
    assert 0.0 <= loaded.results["test"]["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="needs a fine-tuning run"):
        loaded.recommend([["1"]])
    with pytest.raises(TypeError, match="Unknown ProfileConfig option"):
        uaf_tf.predict_profile(
            data, runs["pretrain"], runs["root"] / "p2", nope=1
        )
    with pytest.raises(ValueError, match="made by uaf_tf.pretrain"):
        uaf_tf.predict_profile(data, run, runs["root"] / "p3")
