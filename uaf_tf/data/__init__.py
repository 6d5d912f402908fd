"""Datasets: the on-disk contract and the online tf.data input path.

- `dataset_info`: the layout of a prepared dataset directory.
- `examples`, `vocab`: TFRecord features and vocabulary files.
- `splits`, `negatives`, `pipelines`: directory -> tf.data at train time.
- `preparation/`: offline, raw files -> dataset directory
  (`preparation.builders.build_dataset`).

Preparation imports these modules; none of them imports preparation.
Submodules are imported explicitly; this package imports nothing, so
reading a dataset does not pull in the builders.
"""
