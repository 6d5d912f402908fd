"""The cells of a reproduction and the subprocesses that run them.

A reproduction is a list of `Cell`s, each one command line with its own
output: the pretraining run (optional), the popularity baselines and one
fine-tuning run per (method, seed, train fraction):

```
<out_dir>/pretrain/                          launch/pretrain.py --run_dir
<out_dir>/popularity/pretrain.json           launch/popularity_baseline.py
<out_dir>/popularity/finetune-frac<f>.json
<out_dir>/runs/<method>/frac<f>/seed<s>/     launch/finetune.py --run_dir
<out_dir>/logs/<cell>.log                    each cell's stdout + stderr
```

The profile task (`GridSpec(task="profile")`, paper Table 9) has instead
one `launch/profile.py` cell per (method, seed) for one label:
`<out_dir>/profile/<label>/<method>/seed<s>/` (and the pretraining cell,
if any; no popularity cells).

A cell whose output file exists (`results.json`, or the popularity JSON) is
skipped; a run directory holding checkpoints but no `results.json` is
continued with `--resume`; anything else starts afresh. So a reproduction
can be interrupted at any point and rerun, cell by cell. Several processes
can work through one grid together: each takes the cells nobody else is
running (`uaf_tf.experiments.cell_lock`).
"""

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence

import uaf_tf
from uaf_tf import run_dir as run_dir_lib
from uaf_tf.experiments import cell_lock

# The files of a run directory of launch/pretrain.py or launch/finetune.py
# the grid reads: results (written last) and the checkpoints.
RESULTS_FILE = run_dir_lib.RESULTS_FILE
CHECKPOINT_DIR = run_dir_lib.CHECKPOINT_DIR

PRETRAIN = "pretrain"
FINETUNE = "finetune"
POPULARITY = "popularity"
PROFILE = "profile"

# `GridSpec.task`: the recommendation tables or the profile task.
RECOMMENDATION = "recommendation"
TASKS = (RECOMMENDATION, PROFILE)

# State of a cell before it runs.
DONE = "done"
RESUME = "resume"
NEW = "new"

_LAUNCH_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "launch"
)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One command of a reproduction.

    Attributes:
        name: unique, path-like name, e.g. `runs/gumbel/frac1.0/seed0`.
        kind: `PRETRAIN`, `FINETUNE`, `POPULARITY` or `PROFILE`.
        argv: the command, without `--resume`.
        output: the file whose existence means the cell is finished.
        run_dir: the run directory (checkpoints live there); None for
            cells that cannot resume.
        depends_on: names of cells that must succeed first.
        method, seed, fraction: the grid coordinates of a fine-tuning cell
            (a profile cell has a method and a seed).
    """

    name: str
    kind: str
    argv: tuple[str, ...]
    output: str
    run_dir: str | None = None
    depends_on: tuple[str, ...] = ()
    method: str | None = None
    seed: int | None = None
    fraction: float | None = None

    def state(self) -> str:
        """`DONE`, `RESUME` (checkpoints, no output) or `NEW`."""
        if os.path.exists(self.output):
            return DONE
        if self.run_dir and has_checkpoint(self.run_dir):
            return RESUME
        return NEW

    def command(self) -> list[str]:
        """The command to run now (`--resume` added when resuming)."""
        argv = list(self.argv)
        if self.state() == RESUME:
            argv.append("--resume")
        return argv


def has_checkpoint(run_dir: str) -> bool:
    """Whether `run_dir/ckpt` holds a `tf.train.CheckpointManager` index."""
    return os.path.exists(os.path.join(run_dir, CHECKPOINT_DIR, "checkpoint"))


def format_fraction(fraction: float) -> str:
    """`1` -> `"1.0"`, `0.5` -> `"0.5"`: the `frac<f>` directory part."""
    return str(float(fraction))


def finetune_run_dir(
    out_dir: str, method: str, fraction: float, seed: int
) -> str:
    """`<out_dir>/runs/<method>/frac<f>/seed<s>`."""
    return os.path.join(
        out_dir,
        "runs",
        method,
        f"frac{format_fraction(fraction)}",
        f"seed{seed}",
    )


def profile_run_dir(out_dir: str, label: str, method: str, seed: int) -> str:
    """`<out_dir>/profile/<label>/<method>/seed<s>`."""
    return os.path.join(out_dir, PROFILE, label, method, f"seed{seed}")


def popularity_output(out_dir: str, task: str, fraction: float = 1.0) -> str:
    """`<out_dir>/popularity/pretrain.json` or `finetune-frac<f>.json`."""
    name = (
        "pretrain.json"
        if task == PRETRAIN
        else f"finetune-frac{format_fraction(fraction)}.json"
    )
    return os.path.join(out_dir, POPULARITY, name)


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """What `plan` expands into cells.

    Attributes:
        data_dir: dataset directory (launch/prepare_data.py).
        out_dir: where every cell writes.
        methods: `--method` values, in the order to run them.
        seeds: `--seed` values.
        train_fractions: `--train_fraction` values.
        finetune_flagfile: `--flagfile` of every fine-tuning run.
        pretrained: an existing pretraining run; None to pretrain into
            `<out_dir>/pretrain` with `pretrain_flagfile`.
        pretrain_flagfile: `--flagfile` of the pretraining cell.
        extra_finetune_flags: appended to every fine-tuning command.
        extra_pretrain_flags: appended to the pretraining command.
        popularity: also run the popularity baselines.
        python: the interpreter of the child processes.
        task: `RECOMMENDATION` (the fine-tuning tables) or `PROFILE`
            (user-profile prediction of `profile_label`; its cells use
            `finetune_flagfile` and `extra_finetune_flags` as their
            launch/profile.py flags, and no popularity cells run).
        profile_label: `gender`, `age` or `occupation` (profile task).
        finetune_script, pretrain_script, popularity_script,
            profile_script: the launch scripts (tests swap in fakes).
        archive_dir: a results archive (`uaf_tf.experiments.archive`):
            finished cells are restored from it and saved into it; None
            for none.
    """

    data_dir: str
    out_dir: str
    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    train_fractions: tuple[float, ...] = (1.0,)
    finetune_flagfile: str | None = None
    pretrained: str | None = None
    pretrain_flagfile: str | None = None
    extra_finetune_flags: tuple[str, ...] = ()
    extra_pretrain_flags: tuple[str, ...] = ()
    popularity: bool = True
    python: str = sys.executable
    finetune_script: str = os.path.join(_LAUNCH_DIR, "finetune.py")
    pretrain_script: str = os.path.join(_LAUNCH_DIR, "pretrain.py")
    popularity_script: str = os.path.join(_LAUNCH_DIR, "popularity_baseline.py")
    task: str = RECOMMENDATION
    profile_label: str = "gender"
    profile_script: str = os.path.join(_LAUNCH_DIR, "profile.py")
    archive_dir: str | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(
                f"`task` must be one of {TASKS}. Received: task={self.task!r}"
            )
        if bool(self.pretrained) == bool(self.pretrain_flagfile):
            raise ValueError(
                "Give exactly one of `pretrained` (an existing run) and "
                "`pretrain_flagfile` (pretrain here). Received: "
                f"pretrained={self.pretrained!r}, "
                f"pretrain_flagfile={self.pretrain_flagfile!r}"
            )
        for name in ("methods", "seeds", "train_fractions"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(
                    f"`{name}` must be non-empty without repeats. "
                    f"Received: {name}={values!r}"
                )
        for fraction in self.train_fractions:
            if not 0.0 < fraction <= 1.0:
                raise ValueError(
                    f"Train fractions must be in (0, 1]. Received: {fraction}"
                )

    @property
    def pretrained_run(self) -> str:
        """The pretraining run the fine-tuning cells start from."""
        return self.pretrained or os.path.join(self.out_dir, PRETRAIN)


def _pretrain_cells(spec: GridSpec) -> tuple[list[Cell], tuple[str, ...]]:
    """The pretraining cell (if `spec` pretrains) and the dependency of
    the cells that need it."""
    cells = []
    pretrain_deps = ()
    if spec.pretrain_flagfile:
        run_dir = spec.pretrained_run
        cells.append(
            Cell(
                name=PRETRAIN,
                kind=PRETRAIN,
                argv=(
                    spec.python,
                    spec.pretrain_script,
                    f"--flagfile={spec.pretrain_flagfile}",
                    f"--data_dir={spec.data_dir}",
                    f"--run_dir={run_dir}",
                    *spec.extra_pretrain_flags,
                ),
                output=os.path.join(run_dir, RESULTS_FILE),
                run_dir=run_dir,
            )
        )
        pretrain_deps = (PRETRAIN,)
    return cells, pretrain_deps


def _method_cell(
    spec: GridSpec,
    kind: str,
    script: str,
    run_dir: str,
    task_flags: tuple[str, ...],
    pretrain_deps,
    method: str,
    seed: int,
    fraction: float | None = None,
) -> Cell:
    """A fine-tuning or profile cell: `script` with the fine-tuning
    flagfile, `task_flags`, the method, seed, data, pretrained run and run
    directory, then `extra_finetune_flags`."""
    flagfile = (
        (f"--flagfile={spec.finetune_flagfile}",)
        if spec.finetune_flagfile
        else ()
    )
    return Cell(
        name=os.path.relpath(run_dir, spec.out_dir),
        kind=kind,
        argv=(
            spec.python,
            script,
            *flagfile,
            f"--method={method}",
            f"--seed={seed}",
            *task_flags,
            f"--data_dir={spec.data_dir}",
            f"--pretrained={spec.pretrained_run}",
            f"--run_dir={run_dir}",
            *spec.extra_finetune_flags,
        ),
        output=os.path.join(run_dir, RESULTS_FILE),
        run_dir=run_dir,
        depends_on=pretrain_deps,
        method=method,
        seed=seed,
        fraction=fraction,
    )


def _profile_cells(spec: GridSpec, pretrain_deps) -> list[Cell]:
    """One launch/profile.py cell per (seed, method), seed-major."""
    return [
        _method_cell(
            spec,
            PROFILE,
            spec.profile_script,
            profile_run_dir(spec.out_dir, spec.profile_label, method, seed),
            (f"--profile_label={spec.profile_label}",),
            pretrain_deps,
            method,
            seed,
        )
        for seed in spec.seeds
        for method in spec.methods
    ]


def plan(spec: GridSpec) -> list[Cell]:
    """All cells of `spec`, in the order they run.

    Order: pretraining (if any), the popularity baselines, then fine-tuning
    by train fraction, then seed, then method, so that an interrupted
    reproduction holds complete seeds of the first fraction first. The
    profile task: pretraining (if any), then its cells by seed, then
    method.
    """
    cells, pretrain_deps = _pretrain_cells(spec)
    if spec.task == PROFILE:
        return cells + _profile_cells(spec, pretrain_deps)
    if spec.popularity:
        output = popularity_output(spec.out_dir, PRETRAIN)
        cells.append(
            Cell(
                name=f"{POPULARITY}/pretrain",
                kind=POPULARITY,
                argv=(
                    spec.python,
                    spec.popularity_script,
                    "--task=pretrain",
                    f"--data_dir={spec.data_dir}",
                    f"--pretrained={spec.pretrained_run}",
                    f"--output={output}",
                ),
                output=output,
                depends_on=pretrain_deps,
            )
        )
        for fraction in spec.train_fractions:
            output = popularity_output(spec.out_dir, FINETUNE, fraction)
            cells.append(
                Cell(
                    name=f"{POPULARITY}/finetune-frac"
                    f"{format_fraction(fraction)}",
                    kind=POPULARITY,
                    argv=(
                        spec.python,
                        spec.popularity_script,
                        "--task=finetune",
                        f"--data_dir={spec.data_dir}",
                        f"--train_fraction={fraction}",
                        f"--output={output}",
                    ),
                    output=output,
                    fraction=fraction,
                )
            )
    for fraction in spec.train_fractions:
        for seed in spec.seeds:
            for method in spec.methods:
                cells.append(
                    _method_cell(
                        spec,
                        FINETUNE,
                        spec.finetune_script,
                        finetune_run_dir(spec.out_dir, method, fraction, seed),
                        (f"--train_fraction={fraction}",),
                        pretrain_deps,
                        method,
                        seed,
                        fraction,
                    )
                )
    return cells


def log_path(out_dir: str, cell: Cell) -> str:
    """`<out_dir>/logs/<cell name, / -> _>.log`."""
    return os.path.join(out_dir, "logs", cell.name.replace("/", "_") + ".log")


@dataclasses.dataclass
class Outcome:
    """What happened to a cell in `run_cells`.

    Attributes:
        cell: the cell.
        status: `"skipped"` (already done), `"ok"`, `"failed"` (non-zero
            exit, or exit 0 without its output file), `"blocked"` (a
            dependency failed) or `"elsewhere"` (another process was
            running it: `cell_lock`).
        seconds: wall time of the subprocess (0 unless it ran).
        log: the cell's log file.
        detail: exit code, tail of the log, the failed dependency, or the
            process that runs the cell.
    """

    cell: Cell
    status: str
    seconds: float = 0.0
    log: str = ""
    detail: str = ""


def _child_env() -> dict:
    """The children import the same `uaf_tf` as this process, and write
    their output unbuffered (a piped Python child otherwise holds what it
    prints without flushing until it exits)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(uaf_tf.__file__)))
    paths = [root] + [p for p in env.get("PYTHONPATH", "").split(":") if p]
    env["PYTHONPATH"] = ":".join(dict.fromkeys(paths))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _progress(
    pending: Sequence[Cell], durations: dict, finished: int, failed: int
) -> str:
    """`"3 finished (1 failed), 9 to go; mean 95 s/cell, ETA 14 min"`.

    The ETA sums, over the pending cells, the mean wall time so far of
    cells of the same kind (pretraining, popularity and fine-tuning cells
    take very different times); while a pending kind has no timing yet the
    ETA waits for it. The mean is that of fine-tuning cells once one ran.
    """
    text = f"{finished} finished ({failed} failed), {len(pending)} to go"
    all_times = [t for times in durations.values() for t in times]
    if not all_times:
        return text
    means = {k: sum(v) / len(v) for k, v in durations.items()}
    mean = means.get(FINETUNE, sum(all_times) / len(all_times))
    text += f"; mean {_format_seconds(mean)}/cell"
    untimed = sorted({c.kind for c in pending} - set(means))
    if untimed:
        return text + f", ETA after the first {untimed[0]} cell"
    eta = sum(means[cell.kind] for cell in pending)
    return text + f", ETA {_format_seconds(eta)}"


def _run_logged(
    command: Sequence[str],
    log: str,
    env: dict,
    stream: bool,
    echo: Callable[[str], None],
) -> int:
    """Runs `command`, appending its output to `log` line by line (so
    `tail -f` follows it; with `stream`, also to `echo`); its exit code."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
        f.write(
            f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n"
        )
        f.flush()
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
        )
        for line in process.stdout:
            f.write(line)
            f.flush()
            if stream:
                echo(line.rstrip("\n"))
        return process.wait()


def run_cells(
    cells: Sequence[Cell],
    out_dir: str,
    *,
    headline: Callable[[Cell], str] | None = None,
    stream: bool = False,
    echo: Callable[[str], None] = print,
    on_finished: Callable[[Cell], None] | None = None,
) -> list[Outcome]:
    """Runs every unfinished cell, one subprocess after another.

    A finished cell is skipped; a failed cell is reported with its log and
    the others still run (cells depending on it are `"blocked"`). After
    each cell `echo` gets a progress line: cells finished / to run, the
    mean wall time of the cells run so far, the ETA of the rest, and
    `headline(cell)` (e.g. the test MRR@5 it reached).

    Several processes may run the same cells at once: each holds the cell
    it runs (`cell_lock`) and leaves a held cell to its holder
    (`"elsewhere"`), and a cell whose dependency another process runs
    waits for it. So two `reproduce.py` commands on one `--out_dir` share
    the grid, and neither runs a cell twice.

    Args:
        cells: from `plan`, in order.
        out_dir: the logs go to `<out_dir>/logs/`.
        headline: cell -> one-line summary of its output file.
        stream: also echo every line the children print.
        echo: where progress lines go.
        on_finished: called with each cell that finished here, before
            the next one starts (e.g. to archive it).

    Returns:
        One `Outcome` per cell, in order.
    """
    states = {cell.name: cell.state() for cell in cells}
    to_run = [cell for cell in cells if states[cell.name] != DONE]
    echo(
        f"{len(cells)} cells: {len(cells) - len(to_run)} done, "
        f"{sum(states[c.name] == RESUME for c in to_run)} to resume, "
        f"{sum(states[c.name] == NEW for c in to_run)} to start."
    )
    outcomes, failed, durations = [], set(), {}
    by_name = {cell.name: cell for cell in cells}
    elsewhere = set()  # Cells another process was running when we came.
    env = _child_env()
    started = 0
    for cell in cells:
        log = log_path(out_dir, cell)
        if states[cell.name] == DONE:
            outcomes.append(Outcome(cell, "skipped", log=log))
            continue
        started += 1
        position = f"[{started}/{len(to_run)}] {cell.name}"
        for name in sorted(elsewhere.intersection(cell.depends_on)):
            echo(f"{position}: waiting for {name}, run by another process ...")
            cell_lock.CellLock(out_dir, name).wait_until_free()
            elsewhere.discard(name)
            if by_name[name].state() != DONE:
                failed.add(name)
        blockers = [name for name in cell.depends_on if name in failed]
        if blockers:
            failed.add(cell.name)
            outcomes.append(
                Outcome(
                    cell, "blocked", log=log, detail=f"{blockers[0]} failed"
                )
            )
            echo(f"{position}: not run, {blockers[0]} failed.")
            continue
        lock = cell_lock.CellLock(out_dir, cell.name)
        if not lock.acquire():
            elsewhere.add(cell.name)
            outcomes.append(
                Outcome(cell, "elsewhere", log=log, detail=lock.holder())
            )
            echo(f"{position}: left to {lock.holder()}, which runs it.")
            continue
        try:
            state = cell.state()
            if state == DONE:  # Another process finished it since the plan.
                outcomes.append(Outcome(cell, "skipped", log=log))
                echo(f"{position}: finished by another process meanwhile.")
                continue
            echo(f"{position}: {state} ... (log {log})")
            start = time.monotonic()
            code = _run_logged(cell.command(), log, env, stream, echo)
        finally:
            lock.release()
        seconds = time.monotonic() - start
        if code == 0 and os.path.exists(cell.output):
            durations.setdefault(cell.kind, []).append(seconds)
            if on_finished:
                on_finished(cell)
            summary = headline(cell) if headline else ""
            outcomes.append(Outcome(cell, "ok", seconds, log))
            status = f"done in {_format_seconds(seconds)}"
            if summary:
                status += f": {summary}"
        else:
            failed.add(cell.name)
            detail = (
                f"exit code {code}"
                if code
                else f"exit code 0 but no {os.path.basename(cell.output)}"
            )
            outcomes.append(
                Outcome(cell, "failed", seconds, log, f"{detail}\n{_tail(log)}")
            )
            status = f"FAILED ({detail}); see {log}"
        echo(
            f"{position} {status} | "
            + _progress(to_run[started:], durations, started, len(failed))
        )
    return outcomes
