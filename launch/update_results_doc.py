r"""Rewrites the archived grids' tables in docs/results.md from the archive.

    python launch/update_results_doc.py            # rewrite in place
    python launch/update_results_doc.py --check    # exit 1 when stale

Every block between `<!-- archive-report: docs/results/<grid> -->` and
`<!-- /archive-report -->` is replaced by the grid's command, table and
notes from `docs/results/<grid>/results.md` (see
`uaf_tf.experiments.results_doc`). Rewrite that report first, with the
grid's full command and `--report_only`, when cells were added by a run
over part of the grid. The readings outside the markers are not touched.
"""

import sys

from absl import app
from absl import flags

from uaf_tf.experiments import results_doc

flags.DEFINE_string(
    "doc",
    "docs/results.md",
    "The document whose archive-report blocks to rewrite.",
)
flags.DEFINE_string(
    "root",
    ".",
    "Directory the blocks' archive paths are relative to (the repository "
    "root).",
)
flags.DEFINE_bool(
    "check",
    False,
    "Change nothing; list the stale blocks and exit 1 when there are any.",
)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    with open(FLAGS.doc) as f:
        document = f.read()
    try:
        if FLAGS.check:
            stale = results_doc.stale(document, FLAGS.root, FLAGS.doc)
            for block in stale:
                print(
                    f"{FLAGS.doc}:{block.line}: stale against "
                    f"{block.archive}/results.md"
                )
            if stale:
                print("Rewrite with: python launch/update_results_doc.py")
                sys.exit(1)
            print(f"{FLAGS.doc}: every archive-report block is current.")
            return
        updated = results_doc.update(document, FLAGS.root, FLAGS.doc)
    except results_doc.ResultsDocError as error:
        sys.exit(f"Error: {error}")
    count = len(results_doc.blocks(updated, FLAGS.doc))
    if updated == document:
        print(f"{FLAGS.doc}: {count} archive-report blocks, already current.")
        return
    with open(FLAGS.doc, "w") as f:
        f.write(updated)
    print(f"Rewrote {count} archive-report blocks in {FLAGS.doc}.")


if __name__ == "__main__":
    app.run(main)
