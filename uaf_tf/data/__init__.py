"""Datasets: readers, builders, vocabularies, splits and tf.data pipelines.

Entry points: `builders.build_dataset` (any input -> dataset directory, see
`dataset_info.py` for the layout) and `pipelines` (directory -> tf.data).
Submodules are imported explicitly; this package imports nothing, so
`uaf_tf.data.synthetic.planted_arrays` does not pull in the builders.
"""
