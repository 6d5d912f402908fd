"""Keeps the tables of a results document in step with the results archive.

A document (docs/results.md) quotes the report of an archived grid between
two markers:

```
<!-- archive-report: docs/results/ml1m -->
...the grid's command, its table and the notes under it...
<!-- /archive-report -->
```

`update` rewrites what lies between them from `<archive>/results.md` (the
report `launch/reproduce.py --archive_dir=<archive>` leaves there): the
command that runs and archives the grid, the first table and its notes.
The readings around the markers stay hand-written. `stale` lists the blocks
that differ from the archive, so a test can fail when a new cell was
archived but the document was not rewritten.
"""

import dataclasses
import os
import re

BEGIN = re.compile(r"^<!-- archive-report: (?P<archive>\S+) -->$")
END = "<!-- /archive-report -->"

# Report-only flags: the document shows the command that runs the grid.
_REPORT_ONLY_FLAGS = (" --report_only", " --noplots")


class ResultsDocError(ValueError):
    """A marker or an archive report the document cannot be built from."""


@dataclasses.dataclass(frozen=True)
class Block:
    """One quoted report.

    Attributes:
        archive: the archive directory named by the begin marker (relative
            to the repository root).
        line: 1-based line of the begin marker in the document.
        body: the text between the markers (without them).
    """

    archive: str
    line: int
    body: str


def blocks(document: str, path: str = "<document>") -> list[Block]:
    """The `Block`s of `document`, in order.

    Raises:
        ResultsDocError: a begin marker without its end (or nested), or an
            end marker without a begin; the message names `path` and line.
    """
    found = []
    open_block = None
    body: list[str] = []
    for number, line in enumerate(document.splitlines(), start=1):
        match = BEGIN.match(line.strip())
        if match:
            if open_block:
                raise ResultsDocError(
                    f"{path}:{number}: archive-report marker inside the "
                    f"block opened at line {open_block[1]}"
                )
            open_block = (match["archive"], number)
            body = []
        elif line.strip() == END:
            if not open_block:
                raise ResultsDocError(
                    f"{path}:{number}: {END} without an archive-report marker"
                )
            found.append(Block(open_block[0], open_block[1], "\n".join(body)))
            open_block = None
        elif open_block:
            body.append(line)
    if open_block:
        raise ResultsDocError(
            f"{path}:{open_block[1]}: archive-report marker without {END}"
        )
    return found


def quoted_report(report: str, archive: str) -> str:
    """The block body for an archive's `results.md` text.

    The command (without its report-only flags) in a code block, then the
    first table and the notes under it, and the machines line.

    Raises:
        ResultsDocError: the report has no command line or no table.
    """
    command = re.search(r"^- Command: `(.*)`$", report, re.M)
    table = re.search(
        r"^(\| Model \|.*?)\n\n(.*?)(?:\n\n|\Z)", report, re.M | re.S
    )
    if not command or not table:
        raise ResultsDocError(
            f"{archive}/results.md has no '- Command:' line or no "
            "'| Model |' table; rewrite it with the grid's command and "
            "--report_only."
        )
    text = command[1]
    for flag in _REPORT_ONLY_FLAGS:
        text = text.replace(flag, "")
    machines = re.search(r"^- Machines of the finished runs: .*$", report, re.M)
    lines = [
        "Run, archived and reported (add `--report_only` to rewrite the "
        f"table from `{archive}/` alone) by:",
        "",
        "```",
        text,
        "```",
        "",
        table[1],
        "",
        table[2].rstrip("\n"),
    ]
    if machines:
        lines.append(machines[0])
    return "\n".join(lines)


def _read_report(archive: str, root: str) -> str:
    path = os.path.join(root, archive, "results.md")
    if not os.path.exists(path):
        raise ResultsDocError(
            f"{path} does not exist: run the grid with --archive_dir={archive}"
        )
    with open(path) as f:
        return f.read()


def update(document: str, root: str, path: str = "<document>") -> str:
    """`document` with every block rewritten from its archive's report.

    Args:
        document: the document's text.
        root: the directory archive paths are relative to (the repository).
        path: the document's name, for error messages.
    """
    blocks(document, path)  # Raises on unbalanced markers.
    out: list[str] = []
    inside = False
    for line in document.splitlines(keepends=True):
        match = BEGIN.match(line.strip())
        if match:
            out.append(line)
            body = quoted_report(
                _read_report(match["archive"], root), match["archive"]
            )
            out.append(body + "\n")
            inside = True
        elif line.strip() == END:
            out.append(line)
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def stale(document: str, root: str, path: str = "<document>") -> list[Block]:
    """The blocks whose text differs from their archive's report."""
    return [
        block
        for block in blocks(document, path)
        if block.body
        != quoted_report(_read_report(block.archive, root), block.archive)
    ]
