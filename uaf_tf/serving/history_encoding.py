"""Client histories of raw id strings -> the model's fixed-length id input."""

import tensorflow as tf

from uaf_tf.data import dataset_info
from uaf_tf.serving import signature_keys


def encode_history(source_items, to_ids, seq_len: int):
    """Turns raw source histories into left-padded int32 ids `[B, L]`.

    The steps, in order, per row of `source_items`:
    1. drop every `signature_keys.PADDING_TOKEN` ("") entry, wherever it is
       (clients use it to make the rows of a batch equally long);
    2. keep the most recent `seq_len` remaining entries (the rightmost ones:
       histories are oldest first);
    3. map raw ids to integer ids with `to_ids`; unknown ids become the
       padding/unknown id 0 and keep their position;
    4. left-pad with 0 to length `seq_len`, as the training data is.

    A row that is empty after step 1 becomes all padding, which the model
    scores like any other input (a defined, history-free result).

    Args:
        source_items: string tensor `[B, None]`, raw ids, oldest first.
        to_ids: callable, string tensor -> int ids of the same shape
            (e.g. `IdLookup.to_ids`), 0 for unknown ids.
        seq_len: int, L.

    Returns:
        int32 tensor `[B, L]`.
    """
    if seq_len < 1:
        raise ValueError(f"`seq_len` must be >= 1. Received: seq_len={seq_len}")
    source_items = tf.convert_to_tensor(source_items)
    if source_items.dtype != tf.string:
        raise TypeError(
            "`source_items` must be a string tensor of raw item ids. "
            f"Received: dtype={source_items.dtype.name}"
        )
    present = tf.not_equal(source_items, signature_keys.PADDING_TOKEN)
    kept = tf.ragged.boolean_mask(source_items, present)  # [B, (n)]
    recent = kept[:, -seq_len:]  # [B, (<= L)]
    ids = tf.ragged.map_flat_values(to_ids, recent)
    # Left-pad = reverse each row, right-pad to L, reverse back.
    reversed_rows = tf.reverse(ids, axis=[1])
    right_padded = reversed_rows.to_tensor(
        default_value=tf.cast(dataset_info.PAD_ID, ids.dtype),
        shape=[None, seq_len],
    )
    return tf.cast(tf.reverse(right_padded, axis=[1]), tf.int32)
