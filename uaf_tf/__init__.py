"""uaf-tf: User-specific Adaptive Fine-tuning (UAF, TKDE 2021), Keras 3."""

__version__ = "0.1.0"

# === Python API (`uaf_tf.api`) ===
# Resolved on first use (PEP 562): importing `uaf_tf.config_flags` or
# `uaf_tf.data.vocab` must not import the training stack and TensorFlow
# (the launch scripts silence TF's start-up lines before importing it).
_API_NAMES = (
    "DATASET_KINDS",
    "Dataset",
    "Recommendations",
    "Run",
    "finetune",
    "load_run",
    "open_dataset",
    "predict_profile",
    "prepare_dataset",
    "pretrain",
)


def __getattr__(name):
    if name in _API_NAMES:
        from uaf_tf import api

        return getattr(api, name)
    raise AttributeError(f"module 'uaf_tf' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_API_NAMES})
