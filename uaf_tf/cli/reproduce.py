r"""The paper's tables in one command: methods x seeds x training fractions.

    python launch/reproduce.py --data_dir=data/movielens-100k \
        --pretrained=checkpoints/ml100k-pretrain --out_dir=reproductions/ml100k

or, pretraining first (once, into <out_dir>/pretrain):

    python launch/reproduce.py --data_dir=data/movielens-100k \
        --pretrain_flagfile=launch/configs/pretrain_quick.cfg \
        --out_dir=reproductions/ml100k --train_fractions=1.0,0.5,0.1

Each (method, seed, fraction) cell is one `launch/finetune.py` run in
`<out_dir>/runs/<method>/frac<f>/seed<s>` (its output in
`<out_dir>/logs/`). Rerunning skips finished cells and resumes interrupted
ones, so a long reproduction can be spread over several invocations; a
failing cell is reported and the others still run (exit status 1 at the
end). Several invocations with the same `--out_dir` (more cores, or
machines sharing the directory) work through the grid together: each takes
the cells nobody else is running (a lock per cell in `<out_dir>/locks/`,
released when its holder exits, however it exits). Then, from whatever has
finished, it writes `<out_dir>/results.md` and `results.csv` (Table 2 /
Tables 6-7 layout, mean +- std over seeds, paired t-tests against the best
baseline, the popularity floor, and the pretrained model against a
popularity model of the source domain), the figures
`learning_curves_frac<f>.png` (Fig. 5) and `block_utilisation_frac<f>.png`
(Fig. 3; needs matplotlib), and TensorBoard summaries in `<out_dir>/tb`.
See `uaf_tf.experiments`.

`--task=profile --profile_label={gender,age,occupation}` runs the user
profile prediction of paper Table 9 instead: one `launch/profile.py` cell
per (method, seed) in `<out_dir>/profile/<label>/<method>/seed<s>`
(resumable like the others; flags from `--profile_flagfile` and
`--extra_finetune_flags`), then `<out_dir>/profile_<label>.md` and `.csv`
(accuracy and macro-F1, mean +- std over seeds, and the majority-class
baseline on the same test users). Its default methods are the UAF variants
and the Finetune baselines.
"""

import os
import shlex
import sys

from absl import app
from absl import flags

from uaf_tf import errors
from uaf_tf.cli import common_flags
from uaf_tf.experiments import archive
from uaf_tf.experiments import grid
from uaf_tf.experiments import profile_report
from uaf_tf.experiments import report
from uaf_tf.experiments import reproduction

# The flag files of a source checkout (launch/configs/), like the launch
# scripts `grid` runs.
_CONFIG_DIR = os.path.join(
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ),
    "launch",
    "configs",
)


# The profile task's methods (`uaf_tf.training.profile.METHODS`, which
# imports TensorFlow): every method but those without a profile variant
# (the cross-domain baselines and PeterRec).
PROFILE_METHODS = tuple(
    m
    for m in report.METHOD_ORDER
    if m not in ("mtl", "conet", "ddtcdr", "peterrec")
)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this script's flags on `flag_values` (once)."""
    if "train_fractions" in flag_values:
        return
    fv = {"flag_values": flag_values}
    flags.DEFINE_string(
        "data_dir", None, "Dataset directory (launch/prepare_data.py).", **fv
    )
    flags.DEFINE_string(
        "pretrained",
        None,
        "An existing pretraining run (launch/pretrain.py) every cell "
        "fine-tunes from. Give this or --pretrain_flagfile.",
        **fv,
    )
    flags.DEFINE_string(
        "pretrain_flagfile",
        None,
        "Pretrain first, with this launch/pretrain.py flag file, into "
        "<out_dir>/pretrain (a resumable cell like the others). Give this "
        "or --pretrained.",
        **fv,
    )
    flags.DEFINE_string(
        "out_dir", None, "Where the runs, logs and reports go.", **fv
    )
    flags.DEFINE_list(
        "methods",
        list(report.METHOD_ORDER),
        "launch/finetune.py --method values, comma-separated (default: "
        "every baseline and UAF variant, in the paper's order).",
        **fv,
    )
    flags.DEFINE_list(
        "seeds", ["0", "1", "2"], "Seeds of every method (--seed).", **fv
    )
    flags.DEFINE_list(
        "train_fractions",
        ["1.0"],
        "Training fractions (--train_fraction); the paper's Tables 6-7 use "
        "1.0,0.5,0.1.",
        **fv,
    )
    flags.DEFINE_string(
        "finetune_flagfile",
        os.path.join(_CONFIG_DIR, "finetune_quick.cfg"),
        "launch/finetune.py --flagfile of every cell.",
        **fv,
    )
    flags.DEFINE_enum(
        "task",
        grid.RECOMMENDATION,
        list(grid.TASKS),
        "recommendation: the fine-tuning tables (Tables 2, 6-7); profile: "
        "user-profile prediction of --profile_label (Table 9).",
        **fv,
    )
    flags.DEFINE_enum(
        "profile_label",
        "gender",
        ["gender", "age", "occupation"],
        "--task=profile: the profile label to predict.",
        **fv,
    )
    flags.DEFINE_string(
        "profile_flagfile",
        os.path.join(_CONFIG_DIR, "profile_quick.cfg"),
        "--task=profile: launch/profile.py --flagfile of every cell.",
        **fv,
    )
    flags.DEFINE_string(
        "extra_finetune_flags",
        "",
        "More launch/finetune.py flags for every cell (launch/profile.py "
        "flags with --task=profile), one shell-quoted string, e.g. "
        "'--epochs=5 --jit_compile=false'.",
        **fv,
    )
    flags.DEFINE_string(
        "extra_pretrain_flags",
        "",
        "More launch/pretrain.py flags for the pretraining cell.",
        **fv,
    )
    flags.DEFINE_bool(
        "popularity",
        True,
        "Also compute the popularity baselines of both domains.",
        **fv,
    )
    flags.DEFINE_bool(
        "plots", True, "Draw the PNG figures (needs matplotlib).", **fv
    )
    flags.DEFINE_bool("stream", False, "Echo every line the cells print.", **fv)
    flags.DEFINE_bool(
        "dry_run",
        False,
        "Print the cells, their state and commands; run nothing.",
        **fv,
    )
    flags.DEFINE_string(
        "archive_dir",
        "",
        "A results archive to keep in git (e.g. docs/results/ml1m): the small "
        "files of every finished cell (results.json, config.json, "
        "test_instances.tsv.gz) and the last report. Archived cells are "
        "restored into --out_dir first and skipped, so a fresh machine "
        "continues the grid; each cell is archived when it finishes. "
        "Empty: no archive.",
        **fv,
    )
    flags.DEFINE_bool(
        "report_only",
        False,
        "Run no cell; rewrite the reports from the finished ones (the "
        "results.md header quotes this invocation's flags; it warns when "
        "finished runs' config.json files disagree).",
        **fv,
    )


def spec_from_flags(fv: flags.FlagValues) -> grid.GridSpec:
    if not fv.data_dir or not fv.out_dir:
        raise app.UsageError("--data_dir and --out_dir are required.")
    if bool(fv.pretrained) == bool(fv.pretrain_flagfile):
        raise app.UsageError(
            "Give exactly one of --pretrained and --pretrain_flagfile."
        )
    profile = fv.task == grid.PROFILE
    methods = tuple(fv.methods)
    if profile and not fv["methods"].present:
        methods = PROFILE_METHODS
    flagfile = fv.profile_flagfile if profile else fv.finetune_flagfile
    try:
        seeds = tuple(int(s) for s in fv.seeds)
        fractions = tuple(float(f) for f in fv.train_fractions)
        return grid.GridSpec(
            data_dir=fv.data_dir,
            out_dir=fv.out_dir,
            methods=methods,
            seeds=seeds,
            train_fractions=fractions,
            finetune_flagfile=flagfile or None,
            pretrained=fv.pretrained,
            pretrain_flagfile=fv.pretrain_flagfile,
            extra_finetune_flags=tuple(shlex.split(fv.extra_finetune_flags)),
            extra_pretrain_flags=tuple(shlex.split(fv.extra_pretrain_flags)),
            popularity=fv.popularity,
            task=fv.task,
            profile_label=fv.profile_label,
            archive_dir=fv.archive_dir or None,
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from error


def run(flag_values: flags.FlagValues = flags.FLAGS, command: str = "") -> int:
    """Runs the reproduction the flags describe; returns the exit status.

    `command` (the command line) is quoted at the top of results.md.
    """
    spec = spec_from_flags(flag_values)
    if flag_values.dry_run:
        print(
            reproduction.describe_plan(
                grid.plan(spec), spec.archive_dir, spec.out_dir
            )
        )
        return 0
    if (
        flag_values.report_only
        and not os.path.isdir(spec.out_dir)
        and not (spec.archive_dir and os.path.isdir(spec.archive_dir))
    ):
        raise errors.UserError(
            f"--report_only: --out_dir={spec.out_dir} does not exist"
            + (
                f" and neither does --archive_dir={spec.archive_dir}"
                if spec.archive_dir
                else ""
            )
            + ", so there are no runs to report; give the out_dir (or "
            "archive) of an earlier reproduction"
        )
    if spec.task == grid.PROFILE:
        return _run_profile(spec, flag_values, command)
    outcomes, files = reproduction.reproduce(
        spec,
        command=command,
        run=not flag_values.report_only,
        stream=flag_values.stream,
        make_plots=flag_values.plots,
    )
    failed = [o for o in outcomes if o.status in ("failed", "blocked")]
    print(f"Wrote {files.markdown}, {files.csv}, {files.tensorboard}/")
    for path in files.figures:
        print(f"Wrote {path}")
    if files.missing:
        print(
            f"{len(files.missing)} fine-tuning cells have no results yet: "
            + ", ".join(files.missing)
        )
    for outcome in failed:
        print(
            f"{outcome.status.upper()}: {outcome.cell.name} "
            f"({outcome.detail.splitlines()[0]}); log {outcome.log}"
        )
    return 1 if failed else 0


def _run_profile(
    spec: grid.GridSpec, flag_values: flags.FlagValues, command: str
) -> int:
    """`run` for `--task=profile`: the cells, then profile_<label>.md/csv."""
    outcomes = reproduction.run_grid(
        grid.plan(spec),
        spec.out_dir,
        archive_dir=spec.archive_dir,
        run=not flag_values.report_only,
        headline=profile_report.headline,
        stream=flag_values.stream,
    )
    markdown, csv, missing = profile_report.write_profile_report(
        spec, command=command
    )
    if spec.archive_dir:
        archive.save_reports([markdown, csv], spec.out_dir, spec.archive_dir)
    print(f"Wrote {markdown}, {csv}")
    if missing:
        print(
            f"{len(missing)} profile cells have no results yet: "
            + ", ".join(missing)
        )
    failed = [o for o in outcomes if o.status in ("failed", "blocked")]
    for outcome in failed:
        print(
            f"{outcome.status.upper()}: {outcome.cell.name} "
            f"({outcome.detail.splitlines()[0]}); log {outcome.log}"
        )
    return 1 if failed else 0


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # absl leaves sys.argv whole: the exact command, flags included.
    status = run(flag_values, "python " + shlex.join(sys.argv))
    if status:
        sys.exit(status)


def entry_point() -> None:
    """The `uaf-reproduce` command (also `python launch/reproduce.py`)."""
    common_flags.run_command(sys.modules[__name__], define_flags, main)
