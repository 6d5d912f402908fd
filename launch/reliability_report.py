r"""Runs every fault and bad-input class against the commands; writes
docs/reliability.md.

Each case is a `Case` record: the class of fault it belongs to, the input
files it writes into a fresh work directory, the command line, and a check
of the result (exit status, the one error line, stats.json). Every case
runs its command in a subprocess, as a user would. To add a class (e.g.
training or serving faults), append `Case`s to `CASES` (or a list built
by a function, like `kill_cases`); the report groups them by class.

```
python launch/reliability_report.py            # writes docs/reliability.md
python launch/reliability_report.py --out=/tmp/r.md --only=non_utf8
```
"""

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREPARE = ("{python}", "launch/prepare_data.py")
WORK = "$WORK"  # How the work directory is shown in the report.


@dataclasses.dataclass
class Result:
    """What a case's command did."""

    returncode: int
    stdout: str
    stderr: str
    work_dir: str

    @property
    def last_error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""

    def stats(self, out: str = "out") -> dict | None:
        path = os.path.join(self.work_dir, out, "stats.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input or fault, the command run on it, and its check.

    Attributes:
        fault_class: the class of fault (a heading of the report).
        name: short case name.
        files: input file name -> bytes, written into the work directory.
        argv: the command, `{work}` standing for the work directory and
            `{python}` for this interpreter.
        check: `check(result)` returns `None` if the outcome is the
            documented one, else what went wrong.
        describe: the expected outcome in words (for the report).
        run: optional replacement for running `argv` once (e.g. a kill
            test); `run(case, work_dir) -> Result`.
    """

    fault_class: str
    name: str
    files: dict
    argv: tuple
    check: Callable[[Result], str | None]
    describe: str
    run: Callable | None = None


def _command(case: Case, work_dir: str) -> list[str]:
    return [a.format(work=work_dir, python=sys.executable) for a in case.argv]


def _shown_command(case: Case) -> str:
    """The command as typed, `$WORK` left for the shell to expand."""
    shown = []
    for arg in case.argv:
        arg = arg.format(work=WORK, python="python")
        safe = all(c.isalnum() or c in "-_=./,$:" for c in arg)
        shown.append(arg if safe else shlex.quote(arg))
    return " ".join(shown)


def _env() -> dict:
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": REPO_ROOT + (os.pathsep + path if path else ""),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def run_command(argv: list[str], work_dir: str) -> Result:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_env(),
        timeout=600,
    )
    return Result(done.returncode, done.stdout, done.stderr, work_dir)


# === Checks ===


def error_line(*fragments: str) -> Callable[[Result], str | None]:
    """Exit status 2, no traceback, a last stderr line `error: ...`
    holding every fragment (`{work}` is the work directory)."""

    def check(result: Result) -> str | None:
        line = result.last_error_line
        if result.returncode != 2:
            return f"exit status {result.returncode}, expected 2: {line}"
        if "Traceback" in result.stderr:
            return "a traceback was printed"
        if not line.startswith("error: "):
            return f"last line is not 'error: ...': {line!r}"
        for fragment in fragments:
            fragment = fragment.format(work=result.work_dir)
            if fragment not in line:
                return f"{fragment!r} not in {line!r}"
        if not os.path.exists(os.path.join(result.work_dir, "out")):
            return None
        if os.path.exists(os.path.join(result.work_dir, "keep")):
            return None  # A case that refuses an existing directory.
        return "a failed build left an out/ directory"

    return check


def built(**expected) -> Callable[[Result], str | None]:
    """Exit status 0 and stats.json values: `key=value`, nested keys
    joined by `__` (`bad_lines__not_utf8__count=1`)."""

    def check(result: Result) -> str | None:
        if result.returncode != 0:
            return f"exit status {result.returncode}: {result.last_error_line}"
        stats = result.stats()
        if stats is None:
            return "no stats.json"
        for key, value in expected.items():
            got = stats
            for part in key.split("__"):
                got = got.get(part) if isinstance(got, dict) else None
            if got != value:
                shown = key.replace("__", ".")
                return f"stats.json {shown} = {got!r}, expected {value!r}"
        return None

    return check


# === Data cases (issue 12) ===

PRE = b"1,2,3\n2,3,4\n3,4,5\n4,5,6\n"
FINE = b"1,2,,a,b\n2,3,,b,c\n3,4,,c,a\n"


def original_case(
    fault_class, name, pre, fine, check, describe, *flags, out="out"
):
    return Case(
        fault_class,
        name,
        {"pre.csv": pre, "fine.csv": fine},
        (
            *PREPARE,
            "--dataset=original",
            "--pretrain_file={work}/pre.csv",
            "--finetune_file={work}/fine.csv",
            f"--out_dir={{work}}/{out}",
            "--num_eval_negatives=1",
            *flags,
        ),
        check,
        describe,
    )


ERRORS = "Expected errors are one line, exit 2 (item 4)"
ENCODING = "Non-UTF-8 input (item 3)"
OVER_LONG = "Over-long pretraining line (item 1)"
SILENT = "Malformed data accepted silently (item 7)"
MISLEADING = "Misleading errors (item 8, data)"
KILLED = "Killed rebuild (items 2, 11)"

LONG_LINE = ",".join(str(i) for i in range(1, 5001)).encode() + b"\n"
LONG_ID = b"x" * 100_000

CASES = [
    original_case(
        ERRORS,
        "bad line",
        PRE,
        FINE + b"no separator\n",
        error_line("{work}/fine.csv:4: missing_separator: "),
        "one line `fine.csv:4: missing_separator: ...`",
    ),
    Case(
        ERRORS,
        "missing input file",
        {"pre.csv": PRE},
        (
            *PREPARE,
            "--dataset=original",
            "--pretrain_file={work}/pre.csv",
            "--finetune_file={work}/missing.csv",
            "--out_dir={work}/out",
        ),
        error_line("{work}/missing.csv: cannot read: No such file"),
        "one line naming the file",
    ),
    Case(
        ERRORS,
        "missing flag",
        {},
        (*PREPARE, "--dataset=movielens", "--out_dir={work}/out"),
        error_line("--dataset=movielens needs --ratings_file."),
        "one line naming the flag",
    ),
    original_case(
        ERRORS,
        "flag out of range",
        PRE,
        FINE,
        error_line("num_shards=0"),
        "one line naming the flag and value",
        "--num_shards=0",
    ),
    Case(
        ERRORS,
        "out_dir not a dataset",
        {"pre.csv": PRE, "fine.csv": FINE, "keep/notes.txt": b"mine"},
        (
            *PREPARE,
            "--dataset=original",
            "--pretrain_file={work}/pre.csv",
            "--finetune_file={work}/fine.csv",
            "--out_dir={work}/keep",
            "--num_eval_negatives=1",
        ),
        error_line("--out_dir={work}/keep: exists and is not a dataset"),
        "refused, the directory left alone",
    ),
    original_case(
        ENCODING,
        "Latin-1 byte",
        PRE,
        FINE + b"1,caf\xe9,,a\n",
        error_line("{work}/fine.csv:4: not_utf8: byte 0xe9 at byte 6"),
        "one line `fine.csv:4: not_utf8: ...`",
    ),
    original_case(
        ENCODING,
        "Latin-1 byte, skipped",
        PRE,
        FINE + b"1,caf\xe9,,a\n",
        built(bad_lines__not_utf8__count=1, finetune_instances=6),
        "built; stats.json counts 1 not_utf8 line",
        "--skip_bad_lines",
    ),
    original_case(
        ENCODING,
        "UTF-16 file",
        PRE,
        FINE.decode().encode("utf-16"),
        error_line("{work}/fine.csv:1: not_utf8: byte 0xff at byte 1"),
        "one line at line 1",
    ),
    original_case(
        ENCODING,
        "binary file",
        bytes(range(256)) * 8,
        FINE,
        error_line("{work}/pre.csv:1: not_utf8: "),
        "one line at line 1",
    ),
    original_case(
        ENCODING,
        "UTF-8 BOM",
        b"\xef\xbb\xbf0," + PRE,
        FINE,
        built(bad_lines={}, seq_len=4),
        "built, BOM dropped (was misplaced_padding)",
    ),
    original_case(
        OVER_LONG,
        "5000-item line, no --seq_len",
        PRE + LONG_LINE,
        FINE,
        error_line("{work}/pre.csv:5: over_long_sequence: 5000 source"),
        "one line: over the cap (200)",
    ),
    original_case(
        OVER_LONG,
        "5000-item line, skipped",
        PRE + LONG_LINE,
        FINE,
        built(seq_len=3, bad_lines__over_long_sequence__count=1),
        "built with L = 3 (the longest good line), the line counted",
        "--skip_bad_lines",
    ),
    original_case(
        SILENT,
        "whitespace around ids",
        b" 1 , 2,3\n2,3,4\n3,4,5\n",
        b"1 ,2,, a,b\n",
        built(source_vocab_size=5, target_vocab_size=2),
        "' 1 ' is id '1': vocabularies of 5 and 2 ids",
    ),
    original_case(
        SILENT,
        "duplicate lines, kept",
        PRE,
        FINE + b"1,2,,a,b\n",
        built(duplicate_lines__count=1, finetune_instances=8),
        "kept and counted in stats.json",
    ),
    original_case(
        SILENT,
        "duplicate lines, dropped",
        PRE,
        FINE + b"1,2,,a,b\n",
        built(duplicate_lines__count=1, finetune_instances=6),
        "dropped and counted",
        "--drop_duplicate_lines",
    ),
    original_case(
        SILENT,
        "100 KB item id",
        PRE,
        FINE + b"1,2,," + LONG_ID + b"\n",
        error_line("{work}/fine.csv:4: over_long_id: an id of 100000"),
        "one line `over_long_id`",
    ),
    original_case(
        MISLEADING,
        "empty fine-tuning file",
        PRE,
        b"",
        error_line("{work}/fine.csv: no usable line (the file is empty)"),
        "one line naming the empty file",
    ),
    original_case(
        MISLEADING,
        "every line skipped",
        PRE,
        b"x\ny\n",
        error_line("{work}/fine.csv: no usable line (2 bad lines skipped)"),
        "one line naming the file and the count",
        "--skip_bad_lines",
    ),
    original_case(
        MISLEADING,
        "tab-separated pretraining file",
        PRE.replace(b",", b"\t"),
        FINE,
        error_line("{work}/pre.csv: every pretraining line is a single"),
        "one line naming the pretraining file",
    ),
]


def _run_killed_rebuild(case: Case, work_dir: str) -> Result:
    """Builds out/, then SIGKILLs a rebuild once its staging directory
    holds a few shards, then reruns it; the Result is the rerun's with
    what was seen after the kill prepended to stdout."""
    argv = _command(case, work_dir)
    first = run_command(argv + ["--seed=1"], work_dir)
    if first.returncode:
        return first
    out = os.path.join(work_dir, "out")
    before = _tree(out)
    child = subprocess.Popen(
        argv + ["--seed=2"],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while child.poll() is None and time.monotonic() < deadline:
        staged = [
            os.path.join(work_dir, n)
            for n in os.listdir(work_dir)
            if n.startswith(".out.tmp-")
        ]
        if staged and sum(len(f) for _, _, f in os.walk(staged[0])) >= 5:
            break
        time.sleep(0.002)
    killed_mid_build = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    after = _tree(out)
    rerun = run_command(argv + ["--seed=2"], work_dir)
    leftovers = [n for n in os.listdir(work_dir) if n.startswith(".out.")]
    rerun.stdout = (
        f"killed mid-build: {killed_mid_build}; old dataset intact after "
        f"the kill: {after == before}; leftovers after rerun: {leftovers}\n"
        + rerun.stdout
    )
    return rerun


def _tree(root: str) -> dict:
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def _check_killed(result: Result) -> str | None:
    first = result.stdout.splitlines()[0] if result.stdout else ""
    if "killed mid-build: True" not in first:
        return f"not killed mid-build: {first}"
    if "old dataset intact after the kill: True" not in first:
        return f"old dataset changed: {first}"
    if "leftovers after rerun: []" not in first:
        return first
    return built(seed=2)(result)


def kill_cases() -> list[Case]:
    users = "".join(
        f"{u % 97 + 1},{u % 89 + 2},{u % 83 + 3}\n" for u in range(20000)
    ).encode()
    targets = "".join(
        f"{u % 97 + 1},{u % 89 + 2},,{u % 50 + 1},{u % 41 + 1}\n"
        for u in range(20000)
    ).encode()
    return [
        Case(
            KILLED,
            "SIGKILL during a rebuild, then rerun",
            {"pre.csv": users, "fine.csv": targets},
            (
                *PREPARE,
                "--dataset=original",
                "--pretrain_file={work}/pre.csv",
                "--finetune_file={work}/fine.csv",
                "--out_dir={work}/out",
                "--num_shards=8",
                "--num_eval_negatives=20",
            ),
            _check_killed,
            "old dataset intact after the kill; rerun completes; no leftovers",
            run=_run_killed_rebuild,
        )
    ]


def all_cases() -> list[Case]:
    return CASES + kill_cases()


# === Report ===


def run_case(case: Case) -> tuple[str | None, Result]:
    work_dir = tempfile.mkdtemp(prefix="uaf-reliability-")
    try:
        for name, data in case.files.items():
            path = os.path.join(work_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        if case.run is not None:
            result = case.run(case, work_dir)
        else:
            result = run_command(_command(case, work_dir), work_dir)
        failure = case.check(result)
        result.stderr = result.stderr.replace(work_dir, WORK)
        result.stdout = result.stdout.replace(work_dir, WORK)
        return failure, result
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _outcome(result: Result) -> str:
    if result.returncode == 0:
        first = result.stdout.splitlines()[0] if result.stdout else ""
        if first.startswith("killed mid-build"):
            return f"exit 0; {first}"
        return "exit 0, built"
    line = result.last_error_line
    if len(line) > 160:
        line = line[:160] + "..."
    return f"exit {result.returncode}: `` {line} ``"  # May hold a `.


def write_report(rows: list, path: str, seconds: float) -> None:
    classes = list(dict.fromkeys(case.fault_class for case, _, _ in rows))
    passed = sum(1 for _, failure, _ in rows if failure is None)
    lines = [
        "# Reliability: faults and bad input",
        "",
        "Generated by `python launch/reliability_report.py` (do not edit "
        "by hand). Every case runs its command in a subprocess on files "
        "written into a fresh work directory (`$WORK`) and checks the "
        "documented outcome: an expected error is one line "
        "`error: <file>:<line>: <kind>: <reason>` with exit status 2 and "
        "no traceback; a build is checked through its `stats.json`.",
        "",
        f"**{passed} of {len(rows)} cases behave as documented** "
        f"({seconds:.0f} s).",
        "",
        "| Class | Cases | As documented |",
        "|---|---|---|",
    ]
    for fault_class in classes:
        mine = [r for r in rows if r[0].fault_class == fault_class]
        ok = sum(1 for _, failure, _ in mine if failure is None)
        lines.append(f"| {fault_class} | {len(mine)} | {ok} |")
    for fault_class in classes:
        lines += ["", f"## {fault_class}", ""]
        lines += ["| Case | Expected | Outcome | OK |", "|---|---|---|---|"]
        for case, failure, result in rows:
            if case.fault_class != fault_class:
                continue
            ok = "yes" if failure is None else f"**no**: {failure}"
            outcome = _outcome(result).replace("|", "\\|")
            lines.append(
                f"| {case.name} | {case.describe} | {outcome} | {ok} |"
            )
        lines += ["", "Commands:", "", "```"]
        for case, _, _ in rows:
            if case.fault_class == fault_class:
                lines.append(f"# {case.name}")
                lines.append(_shown_command(case))
        lines += ["```"]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "docs", "reliability.md")
    )
    parser.add_argument(
        "--only", default="", help="Run cases whose name contains this."
    )
    args = parser.parse_args(argv)
    cases = [
        c
        for c in all_cases()
        if args.only.lower() in (c.name + c.fault_class).lower()
    ]
    rows = []
    started = time.monotonic()
    for case in cases:
        failure, result = run_case(case)
        rows.append((case, failure, result))
        status = "ok" if failure is None else f"FAILED: {failure}"
        print(f"[{case.fault_class}] {case.name}: {status}", flush=True)
    write_report(rows, args.out, time.monotonic() - started)
    print(f"Wrote {args.out}")
    return 0 if all(f is None for _, f, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
