"""Bad input and faults of training (issue 12), run as a user would.

Each case runs `launch/pretrain.py` or `launch/finetune.py` as subprocesses
on a tiny synthetic dataset and checks the exit status, the last stderr
line (one line, no traceback, for the user's errors) and, where a run is
written, values of its JSON files. `CASES` is plain data;
`run_training_cases(workdir)` runs them and returns one `CaseResult` each;
`markdown(results)` is the summary table (cases and passes per fault
class). Standalone:

    python launch/reliability_training_cases.py [--workdir=/tmp/rel] \
        [--only=<part of a case name>]

Placeholders in the arguments: `{data}` (the dataset), `{pretrained}` (a
finished 1-epoch pretraining run), `{finetuned}` (a finished fine-tuning
run), `{missing}` (a path that does not exist), `{empty}` (an empty
directory), `{broken_data}` (the dataset with one shard deleted), `{run}`
(a fresh run directory of the case's own).
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small, fast model options for every pretraining command.
TINY_PRETRAIN = (
    "--channels=8",
    "--dilations=1,2",
    "--batch_size=64",
    "--epochs=1",
    "--log_every_steps=0",
    "--jit_compile=false",
)
TINY_FINETUNE = (
    "--batch_size=64",
    "--epochs=1",
    "--log_every_steps=0",
    "--jit_compile=false",
)
# The one line a user's error ends in (uaf_tf.errors).
USER_ERROR = 2
_DIVERGED = (
    r"^error: Training stopped: .*(at|after) step \d+.*; the last good "
    r"checkpoint is \S+ckpt-\d+ \(step \d+\); continue from it with "
    r"--resume, e\.g\. with a lower --learning_rate\.$"
)


@dataclasses.dataclass(frozen=True)
class Step:
    """One command of a case and what it must do.

    Attributes:
        command: "pretrain" or "finetune" (`launch/<command>.py`).
        args: its arguments (placeholders allowed).
        status: the expected exit status.
        stderr: a regex a stderr line must match (`re.search`); with
            status 2 the whole stderr must be that one line.
        json_checks: `(file in {run}, dotted key, value)` to check after.
        one_line: with status 2, stderr must be the error line alone
            (False: a resumed run logs what it restored first).
    """

    command: str
    args: tuple[str, ...]
    status: int = USER_ERROR
    stderr: str = ""
    json_checks: tuple[tuple[str, str, object], ...] = ()
    one_line: bool = True


@dataclasses.dataclass(frozen=True)
class Case:
    """A named sequence of steps in a fault class."""

    fault: str
    name: str
    steps: tuple[Step, ...]


def _error(command, args, pattern):
    return Step(command, tuple(args), USER_ERROR, f"^error: {pattern}$")


_P = ("--data_dir={data}", "--run_dir={run}", *TINY_PRETRAIN)
_F = (
    "--data_dir={data}",
    "--pretrained={pretrained}",
    "--run_dir={run}",
    *TINY_FINETUNE,
)

CASES = (
    # === Wrong paths ===
    Case(
        "wrong path",
        "finetune --data_dir does not exist",
        (
            _error(
                "finetune",
                ["--data_dir={missing}", "--pretrained={pretrained}"],
                r"--data_dir=\S+: no such directory",
            ),
        ),
    ),
    Case(
        "wrong path",
        "finetune --pretrained does not exist",
        (
            _error(
                "finetune",
                ["--data_dir={data}", "--pretrained={missing}"],
                r"--pretrained=\S+: no such directory",
            ),
        ),
    ),
    Case(
        "wrong path",
        "finetune --pretrained is a dataset directory",
        (
            _error(
                "finetune",
                ["--data_dir={data}", "--pretrained={data}"],
                r"--pretrained=\S+: is a dataset directory, not a "
                r"pretraining run; .*",
            ),
        ),
    ),
    Case(
        "wrong path",
        "finetune --pretrained is a fine-tuning run",
        (
            _error(
                "finetune",
                ["--data_dir={data}", "--pretrained={finetuned}"],
                r"--pretrained=\S+: is a finetune run, not a pretraining "
                r"run; it started from --pretrained=\S+",
            ),
        ),
    ),
    Case(
        "wrong path",
        "pretrain --data_dir is an empty directory",
        (
            _error(
                "pretrain",
                ["--data_dir={empty}"],
                r"--data_dir=\S+: not a dataset directory \(no "
                r"dataset.json\); .*",
            ),
        ),
    ),
    Case(
        "wrong path",
        "pretrain --data_dir is a run directory",
        (
            _error(
                "pretrain",
                ["--data_dir={pretrained}"],
                r"--data_dir=\S+: is a run directory, not a dataset; .*",
            ),
        ),
    ),
    Case(
        "wrong path",
        "pretrain --data_dir lacks a shard dataset.json lists",
        (
            _error(
                "pretrain",
                ["--data_dir={broken_data}"],
                r"--data_dir=\S+: 1 of the \d+ files of pretrain/train "
                r"listed in dataset.json are missing .*",
            ),
        ),
    ),
    Case(
        "wrong path",
        "pretrain --run_dir is the dataset",
        (
            _error(
                "pretrain",
                ["--data_dir={data}", "--run_dir={data}"],
                r"--run_dir=\S+: is a dataset directory; .*",
            ),
        ),
    ),
    # === Invalid flag values ===
    *(
        Case(
            "invalid flag value",
            f"{command} {flag}",
            (
                _error(
                    command,
                    [*(_P if command == "pretrain" else _F), flag],
                    re.escape(message),
                ),
            ),
        )
        for command, flag, message in (
            (
                "pretrain",
                "--learning_rate=-1",
                "--learning_rate=-1.0: must be > 0 and finite",
            ),
            (
                "pretrain",
                "--learning_rate=nan",
                "--learning_rate=nan: must be > 0 and finite",
            ),
            (
                "pretrain",
                "--batch_size=0",
                "--batch_size=0: must be an integer >= 1",
            ),
            ("pretrain", "--epochs=0", "--epochs=0: must be an integer >= 1"),
            (
                "pretrain",
                "--dilations=1,0",
                "--dilations=1,0: must be one or more integers >= 1",
            ),
            (
                "finetune",
                "--temperature=0",
                "--temperature=0.0: must be > 0 and finite",
            ),
            ("finetune", "--gamma=-1", "--gamma=-1.0: must be >= 0 and finite"),
            (
                "finetune",
                "--train_fraction=1.5",
                "--train_fraction=1.5: must be in (0, 1]",
            ),
        )
    ),
    # === --resume with changed flags ===
    Case(
        "resume with changed flags",
        "--epochs changes and is recorded; --channels is ignored",
        (
            Step("pretrain", _P, 0),
            Step(
                "pretrain",
                ("--run_dir={run}", "--resume", "--epochs=2", "--channels=16"),
                0,
                r"(ignoring the new value 16|resume_history|recorded)",
                (
                    ("config.json", "channels", 8),
                    ("config.json", "training.epochs", 2),
                    ("config.json", "resume_history.0.changed.epochs.to", 2),
                    ("results.json", "epochs_run", 2),
                ),
            ),
        ),
    ),
    Case(
        "resume with changed flags",
        "a run is refused without --resume",
        (
            Step("pretrain", _P, 0),
            _error(
                "pretrain",
                _P,
                r"\S+ already holds a run \(checkpoint \S+\)\. Pass --resume "
                r"to continue it, or choose another --run_dir\.",
            ),
        ),
    ),
    # === Divergence ===
    # Adam's steps are about the learning rate in size, so on the tiny data
    # 1e8 still trains (measured); 1e12 overflows a weight at step 2. Its
    # step-1 checkpoint is finite but already exploded, so a resume at a
    # sane rate stops again, at the same checkpoint: nothing bad is ever
    # saved over it. (tests/training/trainer_test.py resumes past an
    # injected nan to the uninterrupted run's weights.)
    Case(
        "nan or inf loss",
        "learning rate 1e12 stops at the last good checkpoint, and stays",
        (
            Step(
                "pretrain",
                (
                    *_P,
                    "--epochs=3",
                    "--learning_rate=1e12",
                    "--checkpoint_every_steps=1",
                ),
                USER_ERROR,
                _DIVERGED,
            ),
            Step(
                "pretrain",
                ("--run_dir={run}", "--resume", "--learning_rate=1e-3"),
                USER_ERROR,
                _DIVERGED,
                (
                    (
                        "config.json",
                        "resume_history.0.changed.learning_rate.to",
                        1e-3,
                    ),
                ),
                one_line=False,
            ),
        ),
    ),
    Case(
        "nan or inf loss",
        "learning rate 1e8 (large, finite) trains to the end",
        (
            Step(
                "pretrain",
                (*_P, "--epochs=2", "--learning_rate=1e8"),
                0,
                "",
                (("results.json", "epochs_run", 2),),
            ),
        ),
    ),
)


@dataclasses.dataclass
class CaseResult:
    """What a case did: `passed`, and on failure, why (`detail`)."""

    fault: str
    name: str
    passed: bool
    detail: str
    seconds: float


def _env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": REPO,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }


def _launch(command: str, args, timeout: int = 600):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "launch", f"{command}.py"), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        cwd=REPO,
    )


def _lookup(value, dotted: str):
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def prepare(workdir: str) -> dict:
    """Builds the shared inputs of the cases in `workdir`; returns the
    placeholder values (but `{run}`)."""
    from uaf_tf import testing  # Imports TensorFlow: only here.

    paths = {
        "data": os.path.join(workdir, "data"),
        "pretrained": os.path.join(workdir, "pretrained"),
        "finetuned": os.path.join(workdir, "finetuned"),
        "missing": os.path.join(workdir, "does-not-exist"),
        "empty": os.path.join(workdir, "empty"),
        "broken_data": os.path.join(workdir, "broken-data"),
    }
    testing.build_tiny_dataset_dir(paths["data"])
    os.makedirs(paths["empty"], exist_ok=True)
    shutil.copytree(paths["data"], paths["broken_data"])
    with open(os.path.join(paths["data"], "dataset.json")) as f:
        first_shard = json.load(f)["split_files"]["pretrain/train"][0]
    os.remove(os.path.join(paths["broken_data"], first_shard))
    for command, args, run in (
        ("pretrain", TINY_PRETRAIN, "pretrained"),
        (
            "finetune",
            (*TINY_FINETUNE, f"--pretrained={paths['pretrained']}"),
            "finetuned",
        ),
    ):
        done = _launch(
            command,
            [f"--data_dir={paths['data']}", f"--run_dir={paths[run]}", *args],
        )
        if done.returncode != 0:
            raise RuntimeError(f"setup {command} failed:\n{done.stderr}")
    return paths


def run_case(case: Case, paths: dict, run_dir: str) -> CaseResult:
    """Runs one case's steps; the first unmet expectation fails it."""
    start = time.perf_counter()
    values = {**paths, "run": run_dir}

    def result(passed, detail=""):
        return CaseResult(
            case.fault, case.name, passed, detail, time.perf_counter() - start
        )

    for i, step in enumerate(case.steps, start=1):
        args = [a.format(**values) for a in step.args]
        done = _launch(step.command, args)
        lines = done.stderr.strip().splitlines()
        last = lines[-1] if lines else ""
        where = f"step {i} ({step.command})"
        if done.returncode != step.status:
            return result(
                False,
                f"{where}: exit {done.returncode}, expected {step.status}; "
                f"stderr ends: {last!r}",
            )
        if "Traceback" in done.stderr and step.status == USER_ERROR:
            return result(False, f"{where}: printed a traceback")
        if step.status == USER_ERROR and step.one_line and len(lines) != 1:
            return result(
                False, f"{where}: {len(lines)} stderr lines, expected one"
            )
        # A user's error is the one line; a run that goes on logs more.
        if step.stderr and not any(
            re.search(step.stderr, line) for line in lines
        ):
            return result(False, f"{where}: stderr {last!r} !~ {step.stderr!r}")
        for name, key, expected in step.json_checks:
            try:
                with open(os.path.join(run_dir, name)) as f:
                    got = _lookup(json.load(f), key)
            except (OSError, ValueError, KeyError, IndexError) as error:
                return result(False, f"{where}: {name} {key}: {error!r}")
            if got != expected:
                return result(
                    False, f"{where}: {name} {key} = {got!r}, not {expected!r}"
                )
    return result(True)


def run_training_cases(
    workdir: str, cases=CASES, echo=None
) -> list[CaseResult]:
    """Prepares the inputs in `workdir` and runs every case; `echo(line)`
    (e.g. `print`) reports each result as it comes."""
    paths = prepare(workdir)
    results = []
    for i, case in enumerate(cases):
        run_dir = os.path.join(workdir, "runs", f"case-{i:02d}")
        results.append(run_case(case, paths, run_dir))
        if echo is not None:
            echo(describe(results[-1]))
    return results


def describe(result: CaseResult) -> str:
    state = "pass" if result.passed else "FAIL"
    return (
        f"[{state}] {result.fault}: {result.name} ({result.seconds:.0f} s)"
        + (f" {result.detail}" if result.detail else "")
    )


def markdown(results: list[CaseResult]) -> str:
    """The summary table, one row per fault class, then the failures."""
    lines = [
        "| fault class | cases | passed |",
        "|---|---|---|",
    ]
    faults = list(dict.fromkeys(r.fault for r in results))
    for fault in faults:
        mine = [r for r in results if r.fault == fault]
        lines.append(
            f"| {fault} | {len(mine)} | {sum(r.passed for r in mine)} |"
        )
    for r in results:
        if not r.passed:
            lines.append(f"\nFAILED {r.fault} / {r.name}: {r.detail}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    workdir, cases = None, CASES
    for arg in argv[1:]:
        if arg.startswith("--workdir="):
            workdir = arg.split("=", 1)[1]
        elif arg.startswith("--only="):  # Substring of the case names.
            cases = [c for c in CASES if arg.split("=", 1)[1] in c.name]
    workdir = workdir or tempfile.mkdtemp(prefix="uaf-reliability-")
    results = run_training_cases(
        workdir, cases, echo=lambda line: print(line, flush=True)
    )
    print(markdown(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
