"""Names of the exported signatures and their input and output tensors.

These strings are the serving API: TF Serving clients, the warm-up requests
and the tests all use them, so they live in one place.
"""

import numpy as np

# === Signatures ===
SERVE = "serving_default"  # history -> top-K items, policy, user embedding
SCORE_ITEMS = "score_items"  # history + candidate items -> their scores

# === Inputs (string tensors of raw ids, exactly as in the data files) ===
SOURCE_ITEMS = "source_items"  # [B, None] source history, oldest first
CANDIDATE_ITEMS = "candidate_items"  # [B, M] target items to score
# bool [B] (or [1] for all rows), optional, default True: leave the items
# of the request's history out of serving_default's top K.
EXCLUDE_HISTORY = "exclude_history"

# === Outputs ===
TOP_K_ITEMS = "top_k_items"  # string [B, K], best first
TOP_K_SCORES = "top_k_scores"  # float32 [B, K]
POLICY = "policy"  # float32 [B, N], 1 = fine-tuned copy of block l used
USER_EMBEDDING = "user_embedding"  # float32 [B, C]
SCORES = "scores"  # float32 [B, M]

# A client may pad the rows of a batch to equal length with this string;
# such entries are dropped before the history is left-padded to L.
PADDING_TOKEN = ""

# Score given to a candidate item that is not in the target vocabulary (or
# is the padding token): the lowest finite float32, so it ranks below every
# real item and stays valid JSON in TF Serving's REST responses (-inf would
# not).
UNKNOWN_ITEM_SCORE = float(np.finfo(np.float32).min)
