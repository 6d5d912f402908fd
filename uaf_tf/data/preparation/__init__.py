"""Offline preparation: raw files -> a dataset directory.

Entry point: `builders.build_dataset(kind, out_dir, options, ...)`. Each
builder turns its input (GroupLens ratings, the original CSV files, two
interaction logs, planted synthetic data) into a stream of users that
`writer.write_dataset` encodes into the layout of
`uaf_tf.data.dataset_info`. Nothing here runs at training time; the online
side (`uaf_tf.data.pipelines`) reads only the written directory.
"""
