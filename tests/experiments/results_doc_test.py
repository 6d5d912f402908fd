"""docs/results.md quotes the archived grids' reports, and stays in step."""

import os
import subprocess
import sys

import pytest

from uaf_tf.experiments import results_doc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

REPORT = """# Reproduction of the UAF paper's tables

- Command: `{command} --report_only --noplots`
- {machines}

## Training fraction 1.0 (layout of the paper's Table 2)

| Model | MRR@5 |
|---|---|
| UAF-Soft | {mrr} |

- Test split.
- Missing (1 of the grid's cells): `runs/soft/frac1.0/seed1`.

## Does pretraining learn more than popularity?

| Source-domain model | loss |
|---|---|
"""

COMMAND = (
    "python launch/reproduce.py --seeds=0,1 --out_dir=o "
    "--archive_dir=docs/results/g"
)
MACHINES = (
    "Machines of the finished runs: 2 on AMD EPYC (config.json "
    "`environment.cpu`); runs on different CPU models agree to float "
    "tolerance, not bit for bit."
)

DOC = """# Results

Prose before.

<!-- archive-report: docs/results/g -->
an old table
<!-- /archive-report -->

**Reading.** Written by hand.
"""


def _archive(root, mrr):
    os.makedirs(root / "docs/results/g", exist_ok=True)
    (root / "docs/results/g/results.md").write_text(
        REPORT.format(mrr=mrr, command=COMMAND, machines=MACHINES)
    )


def test_update_quotes_the_report_and_keeps_the_prose(tmp_path):
    _archive(tmp_path, "0.2757")
    assert [b.archive for b in results_doc.stale(DOC, str(tmp_path))] == [
        "docs/results/g"
    ]
    updated = results_doc.update(DOC, str(tmp_path))
    assert updated.startswith("# Results\n\nProse before.\n\n")
    assert updated.endswith("\n\n**Reading.** Written by hand.\n")
    (block,) = results_doc.blocks(updated)
    assert block.line == 5
    assert block.body.splitlines() == [
        "Run, archived and reported (add `--report_only` to rewrite the "
        "table from `docs/results/g/` alone) by:",
        "",
        "```",
        COMMAND,
        "```",
        "",
        "| Model | MRR@5 |",
        "|---|---|",
        "| UAF-Soft | 0.2757 |",
        "",
        "- Test split.",
        "- Missing (1 of the grid's cells): `runs/soft/frac1.0/seed1`.",
        "- " + MACHINES,
    ]
    assert results_doc.stale(updated, str(tmp_path)) == []
    assert results_doc.update(updated, str(tmp_path)) == updated
    # A new cell in the archive's report makes the document stale again.
    _archive(tmp_path, "0.2760 ± 0.0004")
    assert len(results_doc.stale(updated, str(tmp_path))) == 1


@pytest.mark.parametrize(
    "document, message",
    [
        (
            "a\n<!-- archive-report: x -->\nb\n",
            "doc.md:2: archive-report marker without",
        ),
        (
            "a\n<!-- /archive-report -->\n",
            "doc.md:2: <!-- /archive-report --> without",
        ),
        (
            "<!-- archive-report: x -->\n<!-- archive-report: y -->\n",
            "doc.md:2: archive-report marker inside the block opened at line 1",
        ),
    ],
)
def test_unbalanced_markers_name_the_line(document, message):
    with pytest.raises(results_doc.ResultsDocError, match=message):
        results_doc.blocks(document, "doc.md")


def test_a_missing_or_tableless_report_says_what_to_run(tmp_path):
    with pytest.raises(
        results_doc.ResultsDocError, match="--archive_dir=docs/results/g"
    ):
        results_doc.update(DOC, str(tmp_path))
    os.makedirs(tmp_path / "docs/results/g")
    (tmp_path / "docs/results/g/results.md").write_text("# empty\n")
    with pytest.raises(results_doc.ResultsDocError, match="--report_only"):
        results_doc.update(DOC, str(tmp_path))


def test_the_command_line_checks_then_rewrites(tmp_path):
    _archive(tmp_path, "0.2757")
    doc = tmp_path / "results.md"
    doc.write_text(DOC)
    command = [
        sys.executable,
        os.path.join(ROOT, "launch/update_results_doc.py"),
        f"--doc={doc}",
        f"--root={tmp_path}",
    ]
    env = dict(os.environ, PYTHONPATH=ROOT)
    check = subprocess.run(
        command + ["--check"], capture_output=True, text=True, env=env
    )
    assert check.returncode == 1
    assert f"{doc}:5: stale against docs/results/g/results.md" in check.stdout
    assert doc.read_text() == DOC
    subprocess.run(command, check=True, env=env)
    assert "0.2757" in doc.read_text()
    again = subprocess.run(
        command + ["--check"], capture_output=True, text=True, env=env
    )
    assert again.returncode == 0, again.stdout


def test_docs_results_md_quotes_the_committed_archive():
    """A report archived but not quoted fails here.

    Fix: python launch/update_results_doc.py
    """
    with open(os.path.join(ROOT, "docs/results.md")) as f:
        document = f.read()
    assert len(results_doc.blocks(document)) >= 2
    stale = results_doc.stale(document, ROOT, "docs/results.md")
    assert not stale, [
        f"docs/results.md:{b.line} vs {b.archive}" for b in stale
    ]
