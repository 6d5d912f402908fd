"""Experiment orchestration and reporting over run directories.

The modules here talk to training runs only through their command lines
(`launch/finetune.py`, `launch/pretrain.py`) and the files a run directory
holds (`config.json`, `results.json`, `test_instances.tsv`), so they keep
working whatever the training code looks like inside:

- `grid`: the (method, seed, train fraction) cells and their subprocesses.
- `instances`: the per-instance test ranks file of a run.
- `significance`: paired t-tests (`tfp.distributions.StudentT`).
- `report`: the paper's Table 2 / 6-7 layout as Markdown and CSV.
- `plots`: learning curves (Fig. 5) and block utilisation (Fig. 3).
- `tensorboard_report`: the same numbers as TensorBoard summaries.
- `popularity`: the popularity floor of both domains.

Nothing here is imported by `uaf_tf/__init__.py`; `instances` imports only
NumPy so the training code may write its file without an import cycle.
"""
