"""One reproduction: run the grid's cells, then write every report file.

```
<out_dir>/results.md                  the tables (report.markdown_report)
<out_dir>/results.csv                 the same numbers, one row per cell
<out_dir>/learning_curves_frac<f>.png paper Fig. 5
<out_dir>/block_utilisation_frac<f>.png paper Fig. 3
<out_dir>/tb/                         TensorBoard (tensorboard_report)
```

The report is written from whatever cells have finished, and names the
missing ones, so it can be read while a long reproduction is under way.
"""

import dataclasses
import json
import os
import shlex
from collections.abc import Callable
from collections.abc import Sequence

from uaf_tf.experiments import archive
from uaf_tf.experiments import cell_lock
from uaf_tf.experiments import grid
from uaf_tf.experiments import plots
from uaf_tf.experiments import report
from uaf_tf.experiments import tensorboard_report

RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
# `describe_plan`'s state of a cell the archive holds.
ARCHIVED = "archived"
# `describe_plan`: another process runs the cell (`cell_lock`).
RUNNING = "running"


def _read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def headline(cell: grid.Cell) -> str:
    """One line of what a finished cell reached (read from its output)."""
    results = _read_json(cell.output) or {}
    if cell.kind == grid.FINETUNE:
        test = results.get("test") or {}
        return (
            f"test sampled/mrr@5 {test.get('sampled/mrr@5', float('nan')):.4f}"
            f" hr@5 {test.get('sampled/hr@5', float('nan')):.4f}"
            f" (best epoch {results.get('best_epoch')})"
        )
    if cell.kind == grid.PRETRAIN:
        valid = results.get("valid") or {}
        return (
            f"valid loss {valid.get('loss', float('nan')):.4f} full/hr@20 "
            f"{valid.get('full/hr@20', float('nan')):.4f}"
        )
    if "test" in results:
        return f"test sampled/mrr@5 {results['test']['sampled/mrr@5']:.4f}"
    valid = results.get("valid") or {}
    return f"valid loss {valid.get('loss', float('nan')):.4f}"


def describe_plan(
    cells: Sequence[grid.Cell],
    archive_dir: str | None = None,
    out_dir: str = "",
) -> str:
    """The plan as text: one line per cell with its state and command.

    With `archive_dir`, a cell missing from `out_dir` but held by the
    archive shows as `[archived]` (it will be restored, not run). A cell
    another process is running on the same `out_dir` shows as `[running]`
    with that process (`cell_lock`).
    """
    lines = []
    counts = dict.fromkeys(
        (grid.DONE, grid.RESUME, grid.NEW, ARCHIVED, RUNNING), 0
    )
    for cell in cells:
        state = cell.state()
        holder = None
        if (
            state != grid.DONE
            and archive_dir
            and archive.is_archived(cell, out_dir, archive_dir)
        ):
            state = ARCHIVED
        elif state != grid.DONE and out_dir:
            holder = cell_lock.CellLock(out_dir, cell.name).held_elsewhere()
            state = RUNNING if holder else state
        counts[state] += 1
        lines.append(
            f"[{state}] {cell.name}" + (f" (by {holder})" if holder else "")
        )
        if state not in (grid.DONE, ARCHIVED, RUNNING):
            lines.append("    " + shlex.join(cell.command()))
    summary = (
        f"{len(cells)} cells: {counts[grid.DONE]} done, "
        + (f"{counts[RUNNING]} running elsewhere, " if counts[RUNNING] else "")
        + f"{counts[grid.RESUME]} to resume, {counts[grid.NEW]} to start"
    )
    if archive_dir:
        summary += f", {counts[ARCHIVED]} in the archive {archive_dir}"
    lines.append(summary + ".")
    return "\n".join(lines)


@dataclasses.dataclass
class ReportFiles:
    """What `write_report` wrote.

    Attributes:
        markdown, csv: paths of results.md / results.csv.
        figures: PNG paths.
        tensorboard: the TensorBoard log directory.
        missing: names of fine-tuning cells without results.
        notes: problems met while writing (e.g. no matplotlib).
    """

    markdown: str
    csv: str
    figures: list
    tensorboard: str
    missing: list
    notes: list


def write_report(
    spec: grid.GridSpec,
    *,
    command: str = "",
    make_plots: bool = True,
    echo: Callable[[str], None] = print,
) -> ReportFiles:
    """Writes results.md, results.csv, the figures and TensorBoard.

    Args:
        spec: the reproduction; its cells say which runs to read.
        command: the command line, quoted at the top of results.md.
        make_plots: draw the PNG figures (needs matplotlib).
        echo: where problems are reported.
    """
    cells = grid.plan(spec)
    runs, missing = report.load_runs(cells)
    popularity = {
        f: _read_json(grid.popularity_output(spec.out_dir, grid.FINETUNE, f))
        for f in spec.train_fractions
    }
    tables = report.fraction_tables(
        runs, missing, spec.train_fractions, popularity
    )
    pretrained_config = (
        _read_json(os.path.join(spec.pretrained_run, "config.json")) or {}
    )
    pretraining = report.pretraining_section(
        _read_json(os.path.join(spec.pretrained_run, grid.RESULTS_FILE)),
        _read_json(grid.popularity_output(spec.out_dir, grid.PRETRAIN)),
        backbone={"sasrec": "SASRec"}.get(
            pretrained_config.get("backbone"), "NextItNet"
        ),
    )
    notes, figures = [], []
    if make_plots:
        try:
            for fraction in spec.train_fractions:
                name = grid.format_fraction(fraction)
                figures.append(
                    plots.plot_learning_curves(
                        plots.learning_curves(runs, fraction),
                        os.path.join(
                            spec.out_dir, f"learning_curves_frac{name}.png"
                        ),
                        title=f"Validation learning curves, training "
                        f"fraction {name} (paper Fig. 5)",
                    )
                )
                figures.append(
                    plots.plot_block_utilisation(
                        plots.block_utilisation(runs, fraction),
                        os.path.join(
                            spec.out_dir, f"block_utilisation_frac{name}.png"
                        ),
                        title="Fine-tuned block utilisation on test\n"
                        f"training fraction {name} (paper Fig. 3)",
                    )
                )
        except ImportError as error:
            notes.append(f"No figures: {error}")
            echo(f"No figures: {error}")
    context = []
    if command:
        context.append(f"Command: `{command}`")
    context += [
        f"Dataset: `{spec.data_dir}`; pretrained run: `{spec.pretrained_run}`.",
        "Fine-tuning flags: "
        + " ".join(
            f"`{f}`"
            for f in (
                f"--flagfile={spec.finetune_flagfile}"
                if spec.finetune_flagfile
                else "(launch/finetune.py defaults)",
                *spec.extra_finetune_flags,
            )
        ),
        f"Methods: {', '.join(report.label(m) for m in spec.methods)}; "
        f"seeds: {', '.join(map(str, spec.seeds))}; training fractions: "
        f"{', '.join(map(grid.format_fraction, spec.train_fractions))}.",
        f"Finished fine-tuning runs: {len(runs)} of "
        f"{len(runs) + len(missing)}.",
    ]
    log_dir = os.path.join(spec.out_dir, tensorboard_report.TENSORBOARD_DIR)
    if figures:
        context.append(
            "Figures: "
            + ", ".join(
                f"[{os.path.basename(p)}]({os.path.basename(p)})"
                for p in figures
            )
            + "; TensorBoard: `tensorboard --logdir "
            f"{log_dir}`."
        )
    machines = report.run_machines(runs)
    if len(machines) > 1:
        context.append(
            "Machines of the finished runs: "
            + ", ".join(
                f"{n} without a recorded CPU model"
                if cpu == report.CPU_NOT_RECORDED
                else f"{n} on {cpu}"
                for cpu, n in machines.items()
            )
            + " (config.json `environment.cpu`); runs on different CPU "
            "models agree to float tolerance, not bit for bit."
        )
    differences = report.config_differences(runs)
    if differences:
        context.append(
            "Warning: the finished runs differ in "
            + "; ".join(f"`{k}` {v}" for k, v in differences.items())
            + " (config.json), beyond method, seed and fraction."
        )
    context += notes
    markdown = report.markdown_report(
        tables,
        title="Reproduction of the UAF paper's tables",
        context=context,
        pretraining=pretraining,
    )
    os.makedirs(spec.out_dir, exist_ok=True)
    paths = {}
    for name, text in (
        (RESULTS_MD, markdown),
        (RESULTS_CSV, report.csv_report(tables)),
    ):
        paths[name] = os.path.join(spec.out_dir, name)
        with open(paths[name] + ".tmp", "w") as f:
            f.write(text)
        os.replace(paths[name] + ".tmp", paths[name])
    log_dir = tensorboard_report.write(
        spec.out_dir, runs, spec.train_fractions, markdown
    )
    return ReportFiles(
        paths[RESULTS_MD],
        paths[RESULTS_CSV],
        figures,
        log_dir,
        [c.name for c in missing],
        notes,
    )


def run_grid(
    cells: Sequence[grid.Cell],
    out_dir: str,
    *,
    archive_dir: str | None = None,
    run: bool = True,
    headline: Callable[[grid.Cell], str] | None = None,
    stream: bool = False,
    echo: Callable[[str], None] = print,
) -> list[grid.Outcome]:
    """Runs the unfinished `cells` (if `run`), through a results archive.

    With `archive_dir`, archived cells are restored into `out_dir` first
    (so they are skipped and reported), each cell is archived as it
    finishes, and finished cells the archive lacks are archived at the end
    (`uaf_tf.experiments.archive`).

    Returns:
        The cells' outcomes (empty when not `run`).
    """
    on_finished = None
    if archive_dir:
        restored = archive.restore(cells, out_dir, archive_dir)
        if restored:
            echo(
                f"Restored {len(restored)} finished cells from the archive "
                f"{archive_dir}."
            )

        def on_finished(cell):
            archive.save(cell, out_dir, archive_dir, echo=echo)

    outcomes = []
    if run:
        outcomes = grid.run_cells(
            cells,
            out_dir,
            headline=headline,
            stream=stream,
            echo=echo,
            on_finished=on_finished,
        )
    if archive_dir:
        saved = archive.save_finished(cells, out_dir, archive_dir, echo=echo)
        if saved:
            echo(f"Archived {len(saved)} finished cells into {archive_dir}.")
    return outcomes


def reproduce(
    spec: grid.GridSpec,
    *,
    command: str = "",
    run: bool = True,
    stream: bool = False,
    make_plots: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[list[grid.Outcome], ReportFiles]:
    """Runs the unfinished cells of `spec` (if `run`, through its archive:
    `run_grid`), then the report (also copied into the archive, unless the
    archive holds cells `spec` leaves out: its report covers all of them).

    Returns:
        The cells' outcomes (empty when not `run`) and the report files.
    """
    outcomes = run_grid(
        grid.plan(spec),
        spec.out_dir,
        archive_dir=spec.archive_dir,
        run=run,
        headline=headline,
        stream=stream,
        echo=echo,
    )
    files = write_report(
        spec, command=command, make_plots=make_plots, echo=echo
    )
    if spec.archive_dir:
        archive.save_reports(
            [files.markdown, files.csv],
            spec.out_dir,
            spec.archive_dir,
            covering=grid.plan(spec),
            echo=echo,
        )
    return outcomes, files
