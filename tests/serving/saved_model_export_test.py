"""The exported SavedModel, loaded in a process without uaf_tf, vs Keras.

One module fixture exports a run per UAF method, deletes the run
directories (so the SavedModel can only use its own assets), then a single
subprocess that never imports uaf_tf runs every request below through
`tf.saved_model.load(...).signatures[...]`; the tests compare its answers
with the in-process Keras model.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.tools import saved_model_utils

from tests.serving.tiny_run import SEQ_LEN
from tests.serving.tiny_run import SOURCE_VOCAB
from tests.serving.tiny_run import TARGET_VOCAB
from tests.serving.tiny_run import write_run_dir
from uaf_tf import errors
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.serving import constant_weights
from uaf_tf.serving import export_run
from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving.saved_model_export import build_export_archive


@pytest.fixture(scope="module")
def make_run_dir(tmp_path_factory):
    """Factory: `make_run_dir(method) -> str`, a fresh run directory."""

    def make(method: str, seed: int = 0) -> str:
        path = str(tmp_path_factory.mktemp(f"run_{method}"))
        write_run_dir(path, method, seed)
        return path

    return make


METHODS = ("gumbel", "soft", "rl", "random")
TOP_K = 5
NUM_BLOCKS = 2

# Runs in a fresh interpreter: TensorFlow only, never uaf_tf.
LOADER_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

cases = json.load(open(sys.argv[1]))
loaded, results, shapes = {}, {}, {}
for name, case in cases.items():
    if case["export"] not in loaded:
        loaded[case["export"]] = tf.saved_model.load(case["export"])
    fn = loaded[case["export"]].signatures[case["signature"]]
    inputs = {
        k: tf.constant(np.array(v["value"], dtype=object if v["dtype"] ==
                                "string" else v["dtype"]).reshape(v["shape"]),
                       dtype=v["dtype"])
        for k, v in case["inputs"].items()
    }
    try:
        out = fn(**inputs)
    except Exception as e:  # recorded for the bad-input tests
        results[name] = {"error": f"{type(e).__name__}: {e}"}
        continue
    results[name] = {
        k: np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(
            v.numpy()).tolist() if v.dtype == tf.string else v.numpy().tolist()
        for k, v in out.items()
    }
    shapes[name] = {
        k: [v.shape.as_list(), v.dtype.name] for k, v in out.items()
    }
results["__shapes__"] = shapes
results["__modules__"] = {"uaf_tf_imported": "uaf_tf" in sys.modules}
results["__captured_inputs__"] = {
    path: len(model.signatures["serving_default"].captured_inputs)
    for path, model in loaded.items()
}
json.dump(results, open(sys.argv[2], "w"))
"""

SOURCE_INDEX = {raw: i + 1 for i, raw in enumerate(SOURCE_VOCAB)}
TARGET_INDEX = {raw: i + 1 for i, raw in enumerate(TARGET_VOCAB)}


def reference_ids(rows):
    """Independent encoding: drop "", last L, unknown -> 0, left-pad."""
    out = np.zeros([len(rows), SEQ_LEN], np.int32)
    for b, row in enumerate(rows):
        kept = [item for item in row if item != ""][-SEQ_LEN:]
        ids = [SOURCE_INDEX.get(item, 0) for item in kept]
        out[b, SEQ_LEN - len(ids) :] = ids
    return out


LOWEST = float(np.finfo(np.float32).min)


def reference_serve(model, rows, exclude=True, top_k=TOP_K):
    """What `serving_default` must return, from the Keras model.

    With `exclude` (one bool, or one per row), target items whose raw id is
    anywhere in the row are ranked last with the score LOWEST and returned
    as "" (only reached when fewer than K items remain).
    """
    outputs = model(reference_ids(rows), training=False)
    user = np.asarray(outputs["user_embedding"])
    scores = np.array(model.score_all_items(user), np.float32)[:, 1:]
    excludes = np.broadcast_to(np.asarray(exclude), [len(rows)])
    for b, row in enumerate(rows):
        for item in row:
            if excludes[b] and item in TARGET_INDEX:
                scores[b, TARGET_INDEX[item] - 1] = LOWEST
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    top_scores = np.take_along_axis(scores, order, axis=1)
    items = [[TARGET_VOCAB[c] for c in row] for row in order]
    items = [
        [item if score != LOWEST else "" for item, score in zip(r, s)]
        for r, s in zip(items, top_scores)
    ]
    return {
        keys.TOP_K_ITEMS: items,
        keys.TOP_K_SCORES: top_scores,
        keys.POLICY: np.asarray(outputs["policy"]),
        keys.USER_EMBEDDING: user,
    }


def reference_scores(model):
    """What `score_items` must return for `MIXED_ROWS` x `CANDIDATES`."""
    user = model(reference_ids(MIXED_ROWS), training=False)["user_embedding"]
    ids = np.array(
        [[TARGET_INDEX.get(c, 0) for c in row] for row in CANDIDATES]
    )
    scores = np.asarray(model.score_items(user, ids))
    return np.where(ids == 0, keys.UNKNOWN_ITEM_SCORE, scores)


def _bools(values):
    return {"value": values, "dtype": "bool", "shape": [len(values)]}


ON = _bools([True])  # what TF Serving fills in from the SignatureDef default


def _strings(rows, shape=None):
    shape = shape or [len(rows), len(rows[0]) if rows else 0]
    return {"value": rows, "dtype": "string", "shape": shape}


def _random_rows(rng, batch, length):
    pool = SOURCE_VOCAB + ["", "", "never-seen"]
    return rng.choice(np.array(pool, dtype=object), (batch, length)).tolist()


MIXED_ROWS = [
    SOURCE_VOCAB[: SEQ_LEN + 3],  # longer than L: keeps the last L
    ["item 7", "é9", "", "", "", "", "", "", ""],  # short, padded with ""
    ["", "s003", "", "nope", "s005", "", "0", "", ""],  # "" anywhere, unknown
    [""] * 9,  # empty history
]
CANDIDATES = [
    ["t001", "ü 1", "nope", ""],
    ["t014", "t002", "t003", "t004"],
    ["", "", "t009", "t009"],
    ["t010", "missing", "t011", "t012"],
]


def _cases(exports):
    rng = np.random.default_rng(0)
    cases = {}
    for method, path in exports.items():
        cases[f"{method}/mixed"] = {
            "export": path,
            "signature": keys.SERVE,
            "inputs": {
                keys.SOURCE_ITEMS: _strings(MIXED_ROWS),
                keys.EXCLUDE_HISTORY: ON,
            },
        }
        cases[f"{method}/score"] = {
            "export": path,
            "signature": keys.SCORE_ITEMS,
            "inputs": {
                keys.SOURCE_ITEMS: _strings(MIXED_ROWS),
                keys.CANDIDATE_ITEMS: _strings(CANDIDATES),
            },
        }
    path = exports["gumbel"]
    serve_inputs = {
        "batch_1": _strings([["s010", "s011", "s012"]]),
        "batch_1024": _strings(_random_rows(rng, 1024, 2 * SEQ_LEN)),
        "all_empty": _strings([[""] * 4] * 2),
        "zero_length": _strings([[], []], shape=[2, 0]),
        "all_unknown": _strings([["x", "y", "z"], ["?"] * 3]),
        "int64": {"value": [[1, 2]], "dtype": "int64", "shape": [1, 2]},
        "float": {"value": [[1.0]], "dtype": "float32", "shape": [1, 1]},
    }
    for name, value in serve_inputs.items():
        cases[name] = {
            "export": path,
            "signature": keys.SERVE,
            "inputs": {keys.SOURCE_ITEMS: value, keys.EXCLUDE_HISTORY: ON},
        }
    for name in ("batch_1", "batch_1024"):
        cases[f"xla_{name}"] = {**cases[name], "export": exports["gumbel_xla"]}
        cases[f"constants_xla_{name}"] = {
            **cases[name],
            "export": exports["gumbel_constants_xla"],
        }
    for name, width in (("batch_0", 2 * SEQ_LEN), ("batch_0_width_0", 0)):
        cases[name] = {
            "export": path,
            "signature": keys.SERVE,
            "inputs": {
                keys.SOURCE_ITEMS: _strings([], shape=[0, width]),
                keys.EXCLUDE_HISTORY: ON,
            },
        }
        cases[f"score_{name}"] = {
            "export": path,
            "signature": keys.SCORE_ITEMS,
            "inputs": {
                keys.SOURCE_ITEMS: _strings([], shape=[0, width]),
                keys.CANDIDATE_ITEMS: _strings([], shape=[0, 3]),
            },
        }
    # exclude_history: one value for all rows, one per row, a wrong count.
    # The "all" export ranks every target item (K = T), so each excluded
    # item shows as a missing item and a "" slot.
    history = [["s003", "item 7", "s010"], ["s003", "item 7", "s010"]]
    for name, exclude in (
        ("exclude_on", [True]),
        ("exclude_off", [False]),
        ("exclude_per_row", [False, True]),
        ("exclude_bad_count", [True, False, True]),
    ):
        cases[name] = {
            "export": exports["all"],
            "signature": keys.SERVE,
            "inputs": {
                keys.SOURCE_ITEMS: _strings(history),
                keys.EXCLUDE_HISTORY: _bools(exclude),
            },
        }
    cases["score_batch_mismatch"] = {
        "export": path,
        "signature": keys.SCORE_ITEMS,
        "inputs": {
            keys.SOURCE_ITEMS: _strings(MIXED_ROWS),
            keys.CANDIDATE_ITEMS: _strings([["t001"]]),
        },
    }
    return cases


@pytest.fixture(scope="module")
def served(make_run_dir, tmp_path_factory):
    """(Keras models, cases, subprocess results) for every method."""
    base = str(tmp_path_factory.mktemp("exports"))
    models, exports = {}, {}
    for method in METHODS:
        run_dir = make_run_dir(method)
        models[method] = run_dir_lib.load_model(run_dir)
        exports[method] = export_run(
            run_dir, base, model_name=method, version=1, top_k=TOP_K
        )
        shutil.rmtree(run_dir)  # the export must not need the run's files
    run_dir = make_run_dir("gumbel")
    exports["all"] = export_run(
        run_dir, base, model_name="all", version=1, top_k=len(TARGET_VOCAB)
    )
    exports["off_by_default"] = export_run(
        run_dir, base, model_name="off", version=1, exclude_history=False
    )
    # The forward pass XLA-compiled inside the signatures (--xla_serving).
    models["gumbel_xla"] = run_dir_lib.load_model(run_dir)
    exports["gumbel_xla"] = export_run(
        run_dir,
        base,
        model_name="xla",
        version=1,
        top_k=TOP_K,
        jit_compile=True,
    )
    # The weights folded in as constants (--constant_weights), with and
    # without XLA; UAF-Soft's gate takes the both-branch path.
    for method, jit in (("gumbel", True), ("soft", False)):
        name = f"{method}_constants" + ("_xla" if jit else "")
        run_dir = make_run_dir(method)
        models[name] = run_dir_lib.load_model(run_dir)
        exports[name] = export_run(
            run_dir,
            base,
            model_name=name,
            version=1,
            top_k=TOP_K,
            jit_compile=jit,
            constant_weights=True,
        )
    cases = _cases(exports)
    work = tmp_path_factory.mktemp("loader")
    script, case_file, out_file = (
        work / "load.py",
        work / "cases.json",
        work / "results.json",
    )
    script.write_text(LOADER_SCRIPT)
    case_file.write_text(json.dumps(cases))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, str(script), str(case_file), str(out_file)],
        cwd=str(work),  # not the repository: uaf_tf is not importable here
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return models, cases, json.loads(out_file.read_text()), exports


def _rows(case, name=keys.SOURCE_ITEMS):
    return case["inputs"][name]["value"]


def _assert_serve_matches(result, expected):
    assert result[keys.TOP_K_ITEMS] == expected[keys.TOP_K_ITEMS]
    for key in (keys.TOP_K_SCORES, keys.POLICY, keys.USER_EMBEDDING):
        np.testing.assert_allclose(
            result[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key
        )


def test_loader_process_never_imported_uaf_tf(served):
    _, _, results, _ = served
    assert results["__modules__"] == {"uaf_tf_imported": False}


@pytest.mark.parametrize("method", METHODS)
def test_serving_default_matches_keras(served, method):
    models, cases, results, _ = served
    result = results[f"{method}/mixed"]
    expected = reference_serve(models[method], _rows(cases[f"{method}/mixed"]))
    _assert_serve_matches(result, expected)
    assert np.shape(result[keys.TOP_K_ITEMS]) == (len(MIXED_ROWS), TOP_K)
    assert np.shape(result[keys.POLICY]) == (len(MIXED_ROWS), NUM_BLOCKS)
    assert np.shape(result[keys.USER_EMBEDDING]) == (len(MIXED_ROWS), 8)
    # Scores are sorted and the padding id is never recommended.
    scores = np.asarray(result[keys.TOP_K_SCORES])
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert "" not in np.ravel(result[keys.TOP_K_ITEMS])
    policy = np.asarray(result[keys.POLICY])
    if method == "soft":
        assert np.all((policy > 0) & (policy < 1))
    else:  # argmax / hashed: hard 0-1 decisions at inference
        assert set(np.unique(policy)) <= {0.0, 1.0}


@pytest.mark.parametrize("method", METHODS)
def test_score_items_matches_keras_with_unknown_sentinel(served, method):
    models, cases, results, _ = served
    scores = np.asarray(results[f"{method}/score"][keys.SCORES], np.float32)
    np.testing.assert_allclose(
        scores, reference_scores(models[method]), rtol=1e-5, atol=1e-5
    )
    # Unknown and "" candidates rank below every known one in their row.
    assert scores[0, 2] == scores[0, 3] == np.finfo(np.float32).min
    assert scores[0, 2] < scores[0, :2].min()
    # A candidate's score is its score in the full ranking.
    top = results[f"{method}/mixed"]
    for row, items in enumerate(top[keys.TOP_K_ITEMS]):
        for item, score in zip(items, top[keys.TOP_K_SCORES][row]):
            if item in CANDIDATES[row]:
                col = CANDIDATES[row].index(item)
                np.testing.assert_allclose(scores[row, col], score, rtol=1e-5)


@pytest.mark.parametrize("name", ["batch_1", "batch_1024"])
def test_batch_sizes_match_keras(served, name):
    models, cases, results, _ = served
    rows = _rows(cases[name])
    _assert_serve_matches(
        results[name], reference_serve(models["gumbel"], rows)
    )
    assert len(results[name][keys.TOP_K_ITEMS]) == len(rows)


@pytest.mark.parametrize("name", ["mixed", "batch_1", "batch_1024"])
def test_the_xla_compiled_export_serves_what_keras_does(served, name):
    models, cases, results, exports = served
    key = "gumbel_xla/mixed" if name == "mixed" else f"xla_{name}"
    rows = _rows(cases[key])
    _assert_serve_matches(
        results[key], reference_serve(models["gumbel_xla"], rows)
    )
    with open(
        os.path.join(exports["gumbel_xla"], "assets.extra", "uaf_export.json")
    ) as f:
        assert json.load(f)["jit_compile"] is True
    serve_script = os.path.join(os.path.dirname(exports["gumbel_xla"]))
    with open(serve_script + ".serve.sh") as f:
        assert "--xla_cpu_compilation_enabled=true" in f.read()
    with open(os.path.dirname(exports["gumbel"]) + ".serve.sh") as f:
        assert "xla" not in f.read()


@pytest.mark.parametrize(
    "name, key",
    [
        ("gumbel_constants_xla", "gumbel_constants_xla/mixed"),
        ("gumbel_constants_xla", "constants_xla_batch_1"),
        ("gumbel_constants_xla", "constants_xla_batch_1024"),
        ("soft_constants", "soft_constants/mixed"),
    ],
)
def test_an_export_with_constant_weights_serves_what_keras_does(
    served, name, key
):
    models, cases, results, _ = served
    rows = _rows(cases[key])
    _assert_serve_matches(results[key], reference_serve(models[name], rows))


@pytest.mark.parametrize("name", ["gumbel_constants_xla", "soft_constants"])
def test_an_export_with_constant_weights_scores_what_keras_does(served, name):
    models, cases, results, exports = served
    scores = np.asarray(results[f"{name}/score"][keys.SCORES], np.float32)
    np.testing.assert_allclose(
        scores, reference_scores(models[name]), rtol=1e-5, atol=1e-5
    )
    with open(
        os.path.join(exports[name], "assets.extra", "uaf_export.json")
    ) as f:
        assert json.load(f)["constant_weights"] is True


@pytest.mark.parametrize(
    "name", ["gumbel", "gumbel_xla", "gumbel_constants_xla", "soft_constants"]
)
def test_a_tf1_session_serves_the_signature_def(served, name):
    # TF Serving loads a SavedModel into a session and runs the
    # SignatureDef's tensors by name (not tf.function signatures): the
    # path the constant-weight and XLA exports must also work on.
    models, _, _, exports = served
    rows = MIXED_ROWS
    with tf.Graph().as_default() as graph:
        with tf.compat.v1.Session(graph=graph) as session:
            meta = tf.compat.v1.saved_model.loader.load(
                session, ["serve"], exports[name]
            )
            signature = meta.signature_def[keys.SERVE]
            feeds = {
                signature.inputs[keys.SOURCE_ITEMS].name: np.array(
                    rows, dtype=object
                ),
                signature.inputs[keys.EXCLUDE_HISTORY].name: [True],
            }
            fetches = {k: v.name for k, v in signature.outputs.items()}
            out = session.run(fetches, feeds)
    out[keys.TOP_K_ITEMS] = [
        [item.decode("utf-8") for item in row] for row in out[keys.TOP_K_ITEMS]
    ]
    _assert_serve_matches(out, reference_serve(models[name], rows))


def test_constant_weights_are_not_inputs_of_a_request(served):
    # Each request passes the variables its signature captures; with the
    # forward pass's weights folded in, only the item scoring's and the
    # lookup tables are left.
    _, _, results, exports = served
    captured = results["__captured_inputs__"]
    for name, variables_export in (
        ("gumbel_constants_xla", "gumbel_xla"),
        ("soft_constants", "soft"),
    ):
        assert captured[exports[name]] <= 8
        assert captured[exports[variables_export]] > 3 * captured[exports[name]]


def test_empty_and_unknown_histories_are_all_padding(served):
    models, _, results, _ = served
    expected = reference_serve(models["gumbel"], [[""], [""]])
    for name in ("all_empty", "zero_length", "all_unknown"):
        _assert_serve_matches(results[name], expected)
    # Every row of an all-padding batch gets the same answer.
    items = results["all_empty"][keys.TOP_K_ITEMS]
    assert items[0] == items[1]


@pytest.mark.parametrize(
    "name, exclude",
    [
        ("exclude_on", True),
        ("exclude_off", False),
        ("exclude_per_row", [False, True]),
    ],
)
def test_exclude_history_leaves_seen_items_out(served, name, exclude):
    models, cases, results, _ = served
    rows = _rows(cases[name])
    result = results[name]
    expected = reference_serve(
        models["gumbel"], rows, exclude, top_k=len(TARGET_VOCAB)
    )
    _assert_serve_matches(result, expected)
    excludes = np.broadcast_to(exclude, [len(rows)])
    for items, excluded in zip(result[keys.TOP_K_ITEMS], excludes):
        # Both shared ids of the history ("s003", "item 7") are target
        # items: excluded, they are missing and the last 2 slots are "".
        if excluded:
            assert "s003" not in items and "item 7" not in items
            assert items[-2:] == ["", ""] and "" not in items[:-2]
        else:
            assert sorted(items) == sorted(TARGET_VOCAB)


def test_exclude_history_is_on_by_default_in_the_signature_def(served):
    """TF Serving >= 2.14 fills an omitted input from SignatureDef.defaults
    (`saved_model::GetInputValues`): that is the default clients get."""
    _, _, _, exports = served
    for export, expected in (
        (exports["gumbel"], [True]),
        (exports["off_by_default"], [False]),
    ):
        meta_graph = saved_model_utils.get_meta_graph_def(export, "serve")
        signature = meta_graph.signature_def[keys.SERVE]
        assert set(signature.inputs) == {
            keys.SOURCE_ITEMS,
            keys.EXCLUDE_HISTORY,
        }
        (name,) = signature.defaults
        assert name == keys.EXCLUDE_HISTORY
        default = tf.make_ndarray(signature.defaults[name])
        assert default.tolist() == expected
        assert not meta_graph.signature_def[keys.SCORE_ITEMS].defaults


def test_exclude_history_with_a_wrong_count_is_a_clear_error(served):
    _, _, results, _ = served
    error = results["exclude_bad_count"]["error"]
    assert "one value for the whole request or one per row" in error, error


@pytest.mark.parametrize("width", ["", "_width_0"])
def test_batch_of_zero_rows_returns_empty_outputs(served, width):
    """Issue 12 item 5: was `Incompatible shapes: [0,12,8] vs. [0,6,8]`."""
    _, _, results, _ = served
    shapes = results["__shapes__"]
    assert shapes[f"batch_0{width}"] == {
        keys.TOP_K_ITEMS: [[0, TOP_K], "string"],
        keys.TOP_K_SCORES: [[0, TOP_K], "float32"],
        keys.POLICY: [[0, NUM_BLOCKS], "float32"],
        keys.USER_EMBEDDING: [[0, 8], "float32"],
    }
    assert shapes[f"score_batch_0{width}"] == {keys.SCORES: [[0, 3], "float32"]}


@pytest.mark.parametrize("name", ["int64", "float"])
def test_non_string_input_is_a_clear_error(served, name):
    _, _, results, _ = served
    error = results[name]["error"]
    assert "InvalidArgumentError" in error or "TypeError" in error, error
    assert "string" in error, error


def test_candidate_batch_mismatch_is_a_clear_error(served):
    _, _, results, _ = served
    error = results["score_batch_mismatch"]["error"]
    assert "same batch size" in error, error


def test_layout_assets_and_warmup(served):
    _, _, _, exports = served
    path = exports["gumbel"]
    assert os.path.basename(path) == "1"
    assert sorted(os.listdir(os.path.dirname(path))) == ["1"]
    assert {"saved_model.pb", "variables", "assets", "assets.extra"} <= set(
        os.listdir(path)
    )
    with open(os.path.join(path, "assets", "target_vocab.txt")) as f:
        assert f.read().splitlines() == TARGET_VOCAB
    extra = os.path.join(path, "assets.extra")
    assert "tf_serving_warmup_requests" in os.listdir(extra)
    with open(os.path.join(extra, "uaf_export.json")) as f:
        info = json.load(f)
    assert (info["method"], info["top_k"], info["seq_len"]) == (
        "gumbel",
        TOP_K,
        SEQ_LEN,
    )


def test_saved_model_cli_run(served):
    models, _, _, exports = served
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    history = ["s010", "é9", "", "s002"]
    proc = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            exports["rl"],
            "--tag_set",
            "serve",
            "--signature_def",
            keys.SERVE,
            "--input_exprs",
            f"{keys.SOURCE_ITEMS}={json.dumps([history])};"
            f"{keys.EXCLUDE_HISTORY}=[True]",
        ],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    items_line = lines[
        lines.index(f"Result for output key {keys.TOP_K_ITEMS}:") + 1
    ]
    expected = reference_serve(models["rl"], [history])[keys.TOP_K_ITEMS][0]
    for item in expected:
        assert repr(item.encode("utf-8")) in items_line, (item, items_line)


# === In-process export errors ===


def test_top_k_larger_than_target_items_is_rejected(make_run_dir, tmp_path):
    run_dir = make_run_dir("soft")
    with pytest.raises(errors.UserError, match=r"top_k.*\[1, 17\]"):
        export_run(run_dir, str(tmp_path), version=1, top_k=18)
    assert not os.path.exists(tmp_path / "uaf" / "1")


def test_weights_too_large_to_fold_are_rejected(
    make_run_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(constant_weights, "MAX_CONSTANT_BYTES", 1024)
    run_dir = make_run_dir("soft")
    with pytest.raises(errors.UserError, match=r"--constant_weights: .* MiB"):
        export_run(run_dir, str(tmp_path), version=1, constant_weights=True)
    assert not os.path.exists(tmp_path / "uaf" / "1")


def test_stochastic_model_is_rejected(make_run_dir):
    model = run_dir_lib.load_model(make_run_dir("gumbel"))
    model.sampler.stochastic_eval = True
    with pytest.raises(ValueError, match="deterministic"):
        build_export_archive(
            model, *_vocab_paths(make_run_dir("gumbel")), SEQ_LEN
        )


def test_vocabulary_model_mismatch_is_rejected(make_run_dir, tmp_path):
    run_dir = make_run_dir("soft")
    model = run_dir_lib.load_model(run_dir)
    short_vocab = tmp_path / "target_vocab.txt"
    short_vocab.write_text("".join(f"{t}\n" for t in TARGET_VOCAB[:-1]))
    with pytest.raises(ValueError, match="should score 17 columns"):
        build_export_archive(
            model, _vocab_paths(run_dir)[0], str(short_vocab), SEQ_LEN
        )


def _vocab_paths(run_dir):
    return (
        os.path.join(run_dir, "source_vocab.txt"),
        os.path.join(run_dir, "target_vocab.txt"),
    )


def test_tf_function_signature_is_string_typed(served):
    """The serving input contract, as TF Serving will see it."""
    _, _, _, exports = served
    loaded = tf.saved_model.load(exports["soft"])
    serve = loaded.signatures[keys.SERVE]
    specs = serve.structured_input_signature[1]
    spec = specs[keys.SOURCE_ITEMS]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None, None]
    spec = specs[keys.EXCLUDE_HISTORY]
    assert spec.dtype == tf.bool and spec.shape.as_list() == [None]
    assert len(specs) == 2
    assert set(serve.structured_outputs) == {
        keys.TOP_K_ITEMS,
        keys.TOP_K_SCORES,
        keys.POLICY,
        keys.USER_EMBEDDING,
    }
    score = loaded.signatures[keys.SCORE_ITEMS]
    assert set(score.structured_input_signature[1]) == {
        keys.SOURCE_ITEMS,
        keys.CANDIDATE_ITEMS,
    }


def test_export_without_serving_api_skips_warmup_only(
    make_run_dir, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    path = export_run(make_run_dir("soft"), str(tmp_path), version=4, top_k=3)
    extra = os.listdir(os.path.join(path, "assets.extra"))
    assert extra == ["uaf_export.json"]  # no tf_serving_warmup_requests
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
