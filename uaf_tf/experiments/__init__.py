"""Experiment orchestration and reporting over run directories.

The modules here talk to training runs only through their command lines
(`launch/finetune.py`, `launch/pretrain.py`) and the files a run directory
holds (`config.json`, `results.json`, `test_instances.tsv`), so they keep
working whatever the training code looks like inside:

- `grid`: the (method, seed, train fraction) cells and their subprocesses.
- `cell_lock`: which process runs a cell, so several share one grid.
- `reproduction`: a grid run through its results archive, then reported.
- `archive`: the committed copy of finished cells (`docs/results/`).
- `results_doc`: docs/results.md's tables rewritten from the archive.
- `instances`: the per-instance test ranks file of a run.
- `significance`: paired t-tests (`tfp.distributions.StudentT`).
- `report`: the paper's Table 2 / 6-7 layout as Markdown and CSV.
- `plots`: learning curves (Fig. 5) and block utilisation (Fig. 3).
- `tensorboard_report`: the same numbers as TensorBoard summaries.
- `popularity`: the popularity floor of both domains.
- `profile_report`: the profile task's table (paper Table 9).
- `tradeoff`: UAF-RL's accuracy against fine-tuned blocks.

Nothing here is imported by `uaf_tf/__init__.py`; `instances` imports only
NumPy so the training code may write its file without an import cycle.
"""
