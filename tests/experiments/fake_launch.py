"""A stand-in for launch/finetune.py and launch/pretrain.py in grid tests.

Appends its argv to `<run_dir>/invocations.txt`, then by `--method`:
`crash` exits 3 without output; `interrupt` leaves a checkpoint index but
no results.json and exits 1 (unless resumed, then it finishes); anything
else writes a results.json whose test MRR@5 is 0.1 + 0.01 * seed (`slow`
after sleeping 0.5 s, so that two grids on one directory overlap).
"""

import json
import os
import sys
import time


def main(argv):
    args = dict(a[2:].split("=", 1) for a in argv if "=" in a)
    resumed = "--resume" in argv
    run_dir = args["run_dir"]
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "invocations.txt"), "a") as f:
        f.write(" ".join(argv) + "\n")
    method = args.get("method", "pretrain")
    print(f"fake {method} seed {args.get('seed')}")
    if method == "crash":
        print("Traceback: planted failure")
        return 3
    if method == "interrupt" and not resumed:
        os.makedirs(os.path.join(run_dir, "ckpt"), exist_ok=True)
        with open(os.path.join(run_dir, "ckpt", "checkpoint"), "w") as f:
            f.write('model_checkpoint_path: "ckpt-1"\n')
        return 1
    saw_own_line = None
    if method == "watch_log":
        # Is this line in the cell's log while the cell still runs? The log
        # is <out_dir>/logs/<cell name with / -> _>.log, and the run dir
        # <out_dir>/runs/<method>/frac<f>/seed<s>.
        parts = os.path.normpath(run_dir).split(os.sep)
        out_dir = os.sep.join(parts[:-4])
        log = os.path.join(out_dir, "logs", "_".join(parts[-4:]) + ".log")
        print("first line of the cell", flush=True)
        saw_own_line = False
        for _ in range(100):
            with open(log) as f:
                if "first line of the cell" in f.read():
                    saw_own_line = True
                    break
            time.sleep(0.1)
    if method == "slow":
        time.sleep(0.5)
    seed = int(args.get("seed", 0))
    mrr = 0.1 + 0.01 * seed
    results = {
        "valid": {"loss": 5.0, "full/hr@20": 0.2, "sampled/mrr@5": mrr},
        "test": {"sampled/mrr@5": mrr, "sampled/hr@5": 2 * mrr},
        "best_epoch": 1,
        "epochs_run": 2,
        "wall_time_s": 1.0,
        "saw_own_line": saw_own_line,
        "history": [
            {"epoch": 1, "valid": {"sampled/mrr@5": mrr - 0.05}},
            {"epoch": 2, "valid": {"sampled/mrr@5": mrr}},
        ],
    }
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
