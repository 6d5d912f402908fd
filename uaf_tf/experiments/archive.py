"""A results archive: the small files of finished cells, kept in git.

A reproduction's output directory is large (checkpoints, weights,
TensorBoard) and git-ignored, and a fresh machine starts without it. The
archive (`GridSpec.archive_dir`, e.g. `docs/results/ml1m`) keeps, for every
finished cell, only what the reports read, under the cell's path relative
to `out_dir`:

```
<archive>/runs/<method>/frac<f>/seed<s>/results.json
<archive>/runs/<method>/frac<f>/seed<s>/config.json
<archive>/runs/<method>/frac<f>/seed<s>/test_instances.tsv.gz
<archive>/popularity/finetune-frac<f>.json
<archive>/pretrain/results.json, config.json
<archive>/results.md, results.csv     the last report over every archived cell
```

`test_instances.tsv` is stored gzipped (written with a zero mtime, so the
same ranks give the same bytes). No dataset file is archived: the ranks,
metrics and configs are results, and MovieLens' licence forbids
redistributing the data itself.

`restore` copies archived cells into `out_dir` before a reproduction
plans its work, so they count as done and the report includes them;
`save` copies a cell into the archive once it has finished. A pretraining
cell has no checkpoint in the archive, so it is restored only when no cell
that still has to run depends on it; otherwise it runs again (pretraining
is deterministic for a given dataset, flags and machine type), and `save`
warns when the new metrics differ from the archived ones.
"""

import gzip
import json
import os
import shutil
from collections.abc import Callable
from collections.abc import Sequence

from uaf_tf import run_dir as run_dir_lib
from uaf_tf.experiments import grid
from uaf_tf.experiments import instances

# results.json keys that must agree between two runs of the same cell (the
# rest: wall times, resume history, environment).
_REPRODUCIBLE_KEYS = ("best_epoch", "valid", "test")

_GZIP_SUFFIX = ".gz"


def _cell_files(cell: grid.Cell) -> list[str]:
    """The files of `cell` the reports read (output first)."""
    files = [cell.output]
    if cell.run_dir:
        files += [
            os.path.join(cell.run_dir, run_dir_lib.CONFIG_FILE),
            os.path.join(cell.run_dir, instances.TEST_INSTANCES_FILE),
        ]
    return files


def _archived_path(path: str, out_dir: str, archive_dir: str) -> str | None:
    """Where `path` (under `out_dir`) lives in the archive; None outside."""
    relative = os.path.relpath(path, out_dir)
    if relative.startswith(os.pardir):
        return None
    archived = os.path.join(archive_dir, relative)
    if os.path.basename(path) == instances.TEST_INSTANCES_FILE:
        archived += _GZIP_SUFFIX
    return archived


def _copy(source: str, destination: str) -> None:
    """Copies `source` to `destination` atomically, gzipping or gunzipping
    when exactly one of them ends in `.gz`."""
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    temporary = destination + ".tmp"
    if destination.endswith(_GZIP_SUFFIX) and not source.endswith(_GZIP_SUFFIX):
        with open(source, "rb") as src, open(temporary, "wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0
            ) as dst:
                shutil.copyfileobj(src, dst)
    elif source.endswith(_GZIP_SUFFIX) and not destination.endswith(
        _GZIP_SUFFIX
    ):
        with gzip.open(source, "rb") as src, open(temporary, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copyfile(source, temporary)
    os.replace(temporary, destination)


def is_archived(cell: grid.Cell, out_dir: str, archive_dir: str) -> bool:
    """Whether the archive holds `cell`'s output."""
    archived = _archived_path(cell.output, out_dir, archive_dir)
    return archived is not None and os.path.exists(archived)


def restore(
    cells: Sequence[grid.Cell],
    out_dir: str,
    archive_dir: str,
) -> list[grid.Cell]:
    """Copies the archived cells missing from `out_dir` into it.

    A cell some other cell depends on (pretraining) is restored only when
    every cell depending on it is finished or archived: the archive has no
    checkpoint to fine-tune from.

    Returns:
        The restored cells.
    """

    def finished(cell):
        return cell.state() == grid.DONE or is_archived(
            cell, out_dir, archive_dir
        )

    needed = {
        name for cell in cells if not finished(cell) for name in cell.depends_on
    }
    restored = []
    for cell in cells:
        if cell.state() == grid.DONE or cell.name in needed:
            continue
        if not is_archived(cell, out_dir, archive_dir):
            continue
        for path in _cell_files(cell):
            archived = _archived_path(path, out_dir, archive_dir)
            if (
                archived
                and os.path.exists(archived)
                and not os.path.exists(path)
            ):
                _copy(archived, path)
        restored.append(cell)
    return restored


def _reproducible_part(path: str) -> dict:
    with open(path) as f:
        results = json.load(f)
    return {k: results.get(k) for k in _REPRODUCIBLE_KEYS}


def save(
    cell: grid.Cell,
    out_dir: str,
    archive_dir: str,
    *,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Copies the finished `cell`'s files into the archive.

    When the archive already held a different result for the cell (a
    pretraining run again, say), `echo` gets a warning naming both.

    Returns:
        The archive paths written.
    """
    archived_output = _archived_path(cell.output, out_dir, archive_dir)
    if archived_output is None or not os.path.exists(cell.output):
        return []
    if (
        os.path.exists(archived_output)
        and cell.output.endswith(".json")
        and _reproducible_part(archived_output)
        != _reproducible_part(cell.output)
    ):
        echo(
            f"Warning: {cell.name} differs from its archived result "
            f"{archived_output} in {', '.join(_REPRODUCIBLE_KEYS)}; the "
            "archive now holds the new one (cells archived earlier may "
            "have started from the old one)."
        )
    written = []
    for path in _cell_files(cell):
        archived = _archived_path(path, out_dir, archive_dir)
        if archived and os.path.exists(path):
            _copy(path, archived)
            written.append(archived)
    return written


def save_finished(
    cells: Sequence[grid.Cell],
    out_dir: str,
    archive_dir: str,
    *,
    echo: Callable[[str], None] = print,
) -> list[grid.Cell]:
    """`save` for every finished cell the archive does not hold yet.

    Returns:
        The cells saved.
    """
    saved = []
    for cell in cells:
        if cell.state() == grid.DONE and not is_archived(
            cell, out_dir, archive_dir
        ):
            save(cell, out_dir, archive_dir, echo=echo)
            saved.append(cell)
    return saved


def cells_not_covered(
    cells: Sequence[grid.Cell], out_dir: str, archive_dir: str
) -> list[str]:
    """The archived cells under `runs/` that `cells` leave out.

    A grid run over some of the archive's methods or seeds writes a report
    over those alone; it must not replace the archive's report over all of
    them.

    Returns:
        The archived cells' results.json paths, relative to the archive,
        that no cell of `cells` writes; sorted.
    """
    planned = {os.path.relpath(cell.output, out_dir) for cell in cells}
    archived = []
    runs = os.path.join(archive_dir, "runs")
    for root, _, names in os.walk(runs):
        if run_dir_lib.RESULTS_FILE in names:
            archived.append(
                os.path.relpath(
                    os.path.join(root, run_dir_lib.RESULTS_FILE), archive_dir
                )
            )
    return sorted(path for path in archived if path not in planned)


def save_reports(
    paths: Sequence[str],
    out_dir: str,
    archive_dir: str,
    *,
    covering: Sequence[grid.Cell] | None = None,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Copies report files (results.md, results.csv, ...) written in
    `out_dir` into the archive at the same relative paths.

    With `covering` (the cells the reports were written over), nothing is
    copied when the archive holds cells outside them (`cells_not_covered`):
    a report over some methods or seeds would replace the one over all.
    `echo` then says so.

    Returns:
        The archive paths written.
    """
    if covering is not None:
        left_out = cells_not_covered(covering, out_dir, archive_dir)
        if left_out:
            echo(
                f"The archive {archive_dir} holds {len(left_out)} cells this "
                f"command does not cover ({left_out[0]}"
                f"{', ...' if len(left_out) > 1 else ''}), so its report was "
                "left as it was; rewrite it with the grid's full command and "
                "--report_only."
            )
            return []
    written = []
    for path in paths:
        archived = _archived_path(path, out_dir, archive_dir)
        if archived and os.path.exists(path):
            _copy(path, archived)
            written.append(archived)
    return written
