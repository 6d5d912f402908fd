"""Writes a UAF recommender as a TF Serving SavedModel (string-id signatures).

The exported graph is self-contained: it holds the weights, the source and
target vocabularies (as SavedModel assets) and the id mapping, so TF Serving
(or `tf.saved_model.load` in a process without this package) serves raw item
ids end to end. The README section "Serving with TF Serving" gives the
client's view.

Signatures (names in `signature_keys`):

- `serving_default`: `source_items` string `[B, None]`, optional
  `exclude_history` bool `[B]` or `[1]` (default `[True]`, or the
  export's `exclude_history` setting) -> `top_k_items` string `[B, K]`
  (best first, never padding), `top_k_scores` float32 `[B, K]`,
  `policy` float32 `[B, N]`, `user_embedding` float32 `[B, C]`.
  With `exclude_history` on for a row, every target item whose raw id is
  in that row's `source_items` (the whole request, not only the last L)
  is left out of its top K: in MovieLens one movie id is a source item
  when rated below 4 and a target item when rated 5, so an item in the
  history can never be a hit. Should fewer than K items remain, the last
  slots hold "" with score `signature_keys.UNKNOWN_ITEM_SCORE`. The
  default is a SignatureDef default, which TF Serving >= 2.14 fills for a
  request that omits the input; `tf.saved_model.load` needs it passed.
- `score_items`: `source_items` string `[B, None]`, `candidate_items` string
  `[B, M]` -> `scores` float32 `[B, M]`; unknown candidates (and "") score
  `signature_keys.UNKNOWN_ITEM_SCORE`, the lowest float32, so they rank last.

Histories are encoded by `history_encoding.encode_history` ("" dropped, most
recent L kept, unknown ids -> 0, left-padded).
"""

import keras
import numpy as np
import tensorflow as tf

from uaf_tf.serving import signature_keys as keys
from uaf_tf.serving.constant_weights import with_constant_weights
from uaf_tf.serving.history_encoding import encode_history
from uaf_tf.serving.id_lookup import IdLookup
from uaf_tf.serving.id_lookup import count_vocab_lines

DEFAULT_TOP_K = 10


class _Signatures:
    """The two serving functions, closed over the model and the lookups."""

    def __init__(
        self,
        model,
        source_lookup,
        target_lookup,
        seq_len,
        top_k,
        exclude_history=True,
        jit_compile=False,
        constant_weights=False,
    ):
        self.model = model
        self.source_lookup = source_lookup
        self.target_lookup = target_lookup
        self.seq_len = seq_len
        self.top_k = top_k
        self.exclude_history = exclude_history

        # The model's forward pass, XLA-compiled when asked, its weights
        # folded in as constants when asked. The string lookups and the
        # top-K around it stay in the graph (XLA compiles no hash table);
        # XLA compiles once per batch size it meets.
        def encode(ids):
            return model(ids, training=False)

        if constant_weights:
            self._encode = with_constant_weights(
                encode, [tf.TensorSpec([None, seq_len], tf.int32)], jit_compile
            )
        else:
            self._encode = (
                tf.function(encode, jit_compile=True) if jit_compile else encode
            )

    def _user_outputs(self, source_items):
        source_ids = encode_history(
            source_items, self.source_lookup.to_ids, self.seq_len
        )
        # A batch of 0 rows must give empty outputs, but TF's conv1d
        # returns the padded length for an empty batch ([0, L + pad, C]
        # instead of [0, L, C]), so the residual add fails. Run one
        # all-padding row instead and keep the first 0 rows of its outputs.
        batch_size = tf.shape(source_ids)[0]
        source_ids = tf.cond(
            batch_size > 0,
            lambda: source_ids,
            lambda: tf.zeros([1, self.seq_len], source_ids.dtype),
        )
        outputs = self._encode(source_ids)
        return {key: value[:batch_size] for key, value in outputs.items()}

    def serve(self, source_items, exclude_history):
        outputs = self._user_outputs(source_items)
        user_embedding = outputs["user_embedding"]
        scores = tf.cast(
            self.model.score_all_items(user_embedding), tf.float32
        )  # [B, T]
        exclude = _one_per_row(exclude_history, tf.shape(source_items)[0])
        seen = self.target_lookup.to_ids(source_items)  # [B, W], 0 unknown
        seen = tf.where(exclude[:, None], seen, tf.zeros_like(seen))
        scores = _set_columns(scores, seen, keys.UNKNOWN_ITEM_SCORE)
        # Column 0 is padding/unknown: rank items 1..T-1 only. Ties go to
        # the lower id (top_k is stable), so answers are deterministic.
        top_scores, top_columns = tf.math.top_k(scores[:, 1:], k=self.top_k)
        top_items = self.target_lookup.to_raw(top_columns + 1)
        # Only when fewer than K unseen items are left.
        excluded = tf.equal(top_scores, keys.UNKNOWN_ITEM_SCORE)
        return {
            keys.TOP_K_ITEMS: tf.where(excluded, keys.PADDING_TOKEN, top_items),
            keys.TOP_K_SCORES: top_scores,
            keys.POLICY: tf.cast(outputs["policy"], tf.float32),
            keys.USER_EMBEDDING: tf.cast(user_embedding, tf.float32),
        }

    def score_items(self, source_items, candidate_items):
        batch_check = tf.debugging.assert_equal(
            tf.shape(candidate_items)[0],
            tf.shape(source_items)[0],
            message=(
                f"`{keys.CANDIDATE_ITEMS}` and `{keys.SOURCE_ITEMS}` must have "
                "the same batch size (one candidate row per user)"
            ),
        )
        with tf.control_dependencies([batch_check]):
            candidate_ids = self.target_lookup.to_ids(candidate_items)
        outputs = self._user_outputs(source_items)
        scores = self.model.score_items(
            outputs["user_embedding"], tf.cast(candidate_ids, tf.int32)
        )
        scores = tf.cast(scores, tf.float32)
        unknown = tf.equal(candidate_ids, 0)
        return {
            keys.SCORES: tf.where(
                unknown, tf.constant(keys.UNKNOWN_ITEM_SCORE), scores
            )
        }


def _one_per_row(flags, batch_size):
    """`[1]` or `[B]` bools -> `[B]` (a `[1]` value applies to every row)."""
    flags = tf.reshape(flags, [-1])
    size = tf.size(flags)
    check = tf.debugging.assert_equal(
        tf.logical_or(tf.equal(size, 1), tf.equal(size, batch_size)),
        True,
        message=(
            f"`{keys.EXCLUDE_HISTORY}` must hold one value for the whole "
            f"request or one per row of `{keys.SOURCE_ITEMS}`"
        ),
    )
    with tf.control_dependencies([check]):
        return tf.broadcast_to(flags, [batch_size])


def _set_columns(scores, columns, value):
    """`scores [B, T]` with `scores[b, columns[b, j]] = value` for all j."""
    columns = tf.cast(columns, tf.int32)
    rows = tf.broadcast_to(
        tf.range(tf.shape(columns)[0])[:, None], tf.shape(columns)
    )
    indices = tf.reshape(tf.stack([rows, columns], axis=-1), [-1, 2])
    updates = tf.fill(tf.shape(indices)[:1], tf.constant(value, scores.dtype))
    return tf.tensor_scatter_nd_update(scores, indices, updates)


def check_top_k(top_k: int, num_target_items: int) -> None:
    """Raises unless 1 <= `top_k` <= `num_target_items` (padding excluded)."""
    if not 1 <= top_k <= num_target_items:
        raise ValueError(
            f"`top_k` must be in [1, {num_target_items}] (the number of target "
            f"items). Received: top_k={top_k}"
        )


def _check_model(model, seq_len, num_target_items):
    """Checks the model's inference contract, determinism and target table."""
    probe = tf.zeros([4, seq_len], tf.int32)
    outputs = model(probe, training=False)
    missing = {"user_embedding", "policy"} - set(outputs)
    if missing:
        raise ValueError(
            "The model's call must return a dict with `user_embedding` and "
            f"`policy`. Missing: {sorted(missing)}"
        )
    again = model(probe, training=False)
    for key in ("user_embedding", "policy"):
        if not np.array_equal(np.asarray(outputs[key]), np.asarray(again[key])):
            raise ValueError(
                f"The model's `{key}` differs between two identical calls with "
                "`training=False`; a served model must be deterministic (e.g. "
                "Gumbel with `stochastic_eval=True` samples at inference)."
            )
    num_columns = model.score_all_items(outputs["user_embedding"]).shape[-1]
    if num_columns != num_target_items + 1:
        raise ValueError(
            f"The target vocabulary has {num_target_items} items, so the model "
            f"should score {num_target_items + 1} columns (with padding); "
            f"`score_all_items` returns {num_columns}."
        )


def build_export_archive(
    model: keras.Model,
    source_vocab_path: str,
    target_vocab_path: str,
    seq_len: int,
    top_k: int = DEFAULT_TOP_K,
    exclude_history: bool = True,
    jit_compile: bool = False,
    constant_weights: bool = False,
) -> keras.export.ExportArchive:
    """An `ExportArchive` with signatures `serving_default` and `score_items`.

    Backbone- and method-agnostic: `model` only needs the UAF recommender's
    inference contract, `model(source_ids int32 [B, L], training=False) ->
    {"user_embedding": [B, C], "policy": [B, N], ...}`,
    `model.score_all_items(user_embedding) -> [B, T]` (column 0 = padding)
    and `model.score_items(user_embedding, item_ids [B, M]) -> [B, M]`, and
    must be deterministic with `training=False`.

    Args:
        model: the built recommender.
        source_vocab_path: str, source vocabulary file (line k = id k).
        target_vocab_path: str, target vocabulary file (line k = id k).
        seq_len: int, L, the history length the model was trained on.
        top_k: int, K, items returned by `serving_default`; at most the
            number of target items.
        exclude_history: bool, the default of `serving_default`'s
            `exclude_history` input. Turn it off when source and target
            raw ids name unrelated things (the same string, two items).
        jit_compile: bool, compile the model's forward pass with XLA
            (`tf.function(jit_compile=True)` inside both signatures). A
            batch-1 request then costs about 0.6x the graph's CPU time
            (docs/speed.md). TF Serving runs it only with
            `--xla_cpu_compilation_enabled=true` (experimental there).
        constant_weights: bool, fold the forward pass's weights into the
            signatures as constants (`constant_weights.with_constant_weights`),
            so a request does not pass them in: with `jit_compile`, a
            batch-1 request took about 0.56x the time (docs/serving.md).
            The folded weights move from `variables/` into
            `saved_model.pb` (same total size); weights over 1 GiB are
            refused (`constant_weights.MAX_CONSTANT_BYTES`).

    Returns:
        The archive; call `write_out(path)` on it.
    """
    num_target_items = count_vocab_lines(target_vocab_path)
    check_top_k(top_k, num_target_items)
    _check_model(model, seq_len, num_target_items)
    source_lookup = IdLookup(source_vocab_path, name="source_lookup")
    target_lookup = IdLookup(target_vocab_path, name="target_lookup")
    signatures = _Signatures(
        model,
        source_lookup,
        target_lookup,
        seq_len,
        top_k,
        exclude_history,
        jit_compile,
        constant_weights,
    )
    default_exclude = tf.constant([bool(exclude_history)])

    # The default becomes the SignatureDef's `defaults` entry.
    def serve(source_items, exclude_history=default_exclude):
        return signatures.serve(source_items, exclude_history)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Lookup tables are resources, not variables: they must be tracked
    # explicitly, or the saved functions capture untracked tables and the
    # vocabulary files are not copied into assets/.
    archive.track(source_lookup)
    archive.track(target_lookup)
    history_spec = tf.TensorSpec(
        [None, None], tf.string, name=keys.SOURCE_ITEMS
    )
    archive.add_endpoint(
        keys.SERVE,
        serve,
        input_signature=[
            history_spec,
            tf.TensorSpec([None], tf.bool, name=keys.EXCLUDE_HISTORY),
        ],
    )
    archive.add_endpoint(
        keys.SCORE_ITEMS,
        signatures.score_items,
        input_signature=[
            history_spec,
            tf.TensorSpec([None, None], tf.string, name=keys.CANDIDATE_ITEMS),
        ],
    )
    return archive


def export_saved_model(
    model: keras.Model,
    export_dir: str,
    source_vocab_path: str,
    target_vocab_path: str,
    seq_len: int,
    top_k: int = DEFAULT_TOP_K,
    exclude_history: bool = True,
    jit_compile: bool = False,
    constant_weights: bool = False,
) -> None:
    """Writes the SavedModel of `build_export_archive(...)` to `export_dir`.

    Not atomic: `export_dir` is written in place. Use
    `uaf_tf.serving.export_run` (or `versioned_dir.atomic_version_dir`) to
    publish a version a server is watching.
    """
    archive = build_export_archive(
        model,
        source_vocab_path,
        target_vocab_path,
        seq_len,
        top_k,
        exclude_history,
        jit_compile,
        constant_weights,
    )
    archive.write_out(export_dir, verbose=False)
