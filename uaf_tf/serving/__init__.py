"""TF Serving export of fine-tuned UAF recommenders (raw string ids)."""

from uaf_tf.serving.history_encoding import encode_history
from uaf_tf.serving.id_lookup import IdLookup
from uaf_tf.serving.run_export import export_run
from uaf_tf.serving.saved_model_export import build_export_archive
from uaf_tf.serving.saved_model_export import export_saved_model
from uaf_tf.serving.server_config import BatchingConfig
from uaf_tf.serving.versioned_dir import atomic_version_dir

__all__ = [
    "BatchingConfig",
    "IdLookup",
    "atomic_version_dir",
    "build_export_archive",
    "encode_history",
    "export_run",
    "export_saved_model",
]
