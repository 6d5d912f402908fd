r"""UAF-RL's accuracy against its cost, over the reward's weights.

    python launch/rl_tradeoff.py --data_dir=data/movielens-100k \
        --pretrained=reproductions/ml100k/pretrain \
        --finetune_flagfile=launch/configs/finetune_quick.cfg \
        --cost_weights=0,0.5,1,2 --gammas=0.5,1,2 --seeds=0 \
        --out_dir=reproductions/ml100k-rl-tradeoff

Runs `launch/finetune.py --method=rl` once per (cost weight w, gamma,
seed), with the reward 1 - w f^2 for a hit and -gamma for a miss (Eq. 11
with a cost weight; paper w = 1, gamma = 1), then writes
`<out_dir>/tradeoff.md` / `.csv` (test MRR@5, HR@5, full HR@20 and the
mean number of fine-tuned blocks per test user, mean +- std over seeds)
and `tradeoff.png` (MRR@5 against fine-tuned blocks). Rerunning skips
finished cells and resumes interrupted ones. See
`uaf_tf.experiments.tradeoff`.
"""

import os
import shlex
import sys

from absl import app
from absl import flags

from uaf_tf.experiments import archive
from uaf_tf.experiments import reproduction
from uaf_tf.experiments import tradeoff

flags.DEFINE_string("data_dir", None, "Dataset directory (prepare_data.py).")
flags.DEFINE_string(
    "pretrained", None, "The pretraining run every cell starts from."
)
flags.DEFINE_string("out_dir", None, "Where the runs, logs and reports go.")
flags.DEFINE_string(
    "finetune_flagfile",
    "launch/configs/finetune_quick.cfg",
    "launch/finetune.py --flagfile of every cell.",
)
flags.DEFINE_list(
    "cost_weights", ["0", "0.5", "1", "2"], "Block-cost weights w (paper: 1)."
)
flags.DEFINE_list("gammas", ["0.5", "1", "2"], "Miss penalties (paper: 1).")
flags.DEFINE_list(
    "settings",
    [],
    "Explicit (w, gamma) settings as w:gamma, e.g. 0:1,2:1,1:0.5; replaces "
    "the cross product of --cost_weights and --gammas.",
)
flags.DEFINE_list("seeds", ["0"], "Seeds of every setting (--seed).")
flags.DEFINE_string(
    "extra_finetune_flags",
    "",
    "More launch/finetune.py flags for every cell, one shell-quoted string.",
)
flags.DEFINE_string(
    "archive_dir",
    "",
    "A results archive to keep in git (see launch/reproduce.py "
    "--archive_dir): finished cells are restored from it and saved into "
    "it, with tradeoff.md. Empty: no archive.",
)
flags.DEFINE_bool("dry_run", False, "Print the cells and their state only.")
flags.DEFINE_bool("report_only", False, "Run no cell; rewrite the report.")
flags.DEFINE_bool("plots", True, "Draw tradeoff.png (needs matplotlib).")
for _name in ("data_dir", "pretrained", "out_dir"):
    flags.mark_flag_as_required(_name)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        if FLAGS.settings:
            sweep = tradeoff.parse_settings(FLAGS.settings)
        else:
            sweep = tradeoff.settings(
                [float(w) for w in FLAGS.cost_weights],
                [float(g) for g in FLAGS.gammas],
            )
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    cells = tradeoff.plan(
        data_dir=FLAGS.data_dir,
        pretrained=FLAGS.pretrained,
        out_dir=FLAGS.out_dir,
        sweep=sweep,
        seeds=seeds,
        finetune_flagfile=FLAGS.finetune_flagfile,
        extra_finetune_flags=shlex.split(FLAGS.extra_finetune_flags),
    )
    if FLAGS.dry_run:
        print(
            reproduction.describe_plan(
                cells, FLAGS.archive_dir or None, FLAGS.out_dir
            )
        )
        return
    outcomes = reproduction.run_grid(
        cells,
        FLAGS.out_dir,
        archive_dir=FLAGS.archive_dir or None,
        run=not FLAGS.report_only,
        headline=reproduction.headline,
    )
    rows = tradeoff.write_report(
        cells,
        sweep,
        FLAGS.out_dir,
        command="python " + shlex.join(sys.argv),
        plots=FLAGS.plots,
    )
    print(tradeoff.markdown_table(rows))
    print(f"Wrote {FLAGS.out_dir}/{tradeoff.TRADEOFF_MD}")
    if FLAGS.archive_dir:
        archive.save_reports(
            [
                os.path.join(FLAGS.out_dir, name)
                for name in (tradeoff.TRADEOFF_MD, tradeoff.TRADEOFF_CSV)
            ],
            FLAGS.out_dir,
            FLAGS.archive_dir,
            covering=cells,
        )
    failed = [o for o in outcomes if o.status in ("failed", "blocked")]
    for outcome in failed:
        print(f"FAILED: {outcome.cell.name}; log {outcome.log}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
