"""SSNN-BP: test accuracy and update angle to the R1 gradient against the spike-train length T.

For every T: ``plausigrad train --rule ssnnbp --forward-steps T`` (C++ standalone, Δw_min = η/T so
the expected step η is the same for every T), then ``plausigrad align`` of the final checkpoint
(runtime device, one mini-batch of the probe set, R1 = the rate-network cross-entropy gradient),
each in its own process, one after the other. Writes ``OUT/sweep.json`` and ``OUT/sweep.md``.

    .venv/bin/python tools/ssnnbp_T_sweep.py --out runs/ssnnbp_sweep --hidden 500 --epochs 2 \
        --train-limit 2000 --eta 0.016 --T 8,16,32,64,128
"""

import argparse
import json
import os
import subprocess
import sys

from plausigrad.protocols.angles import format_angle

CLI = [sys.executable, "-m", "plausigrad.protocols.cli"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--T", default="8,16,32,64,128")
    parser.add_argument("--eta", type=float, default=0.016, help="Δw_min · T, kept fixed")
    parser.add_argument("--hidden", default="500")
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train-limit", default=None)
    parser.add_argument("--test-limit", default=None)
    parser.add_argument("--probe-size", default="64")
    parser.add_argument("--no-align", action="store_true",
                        help="accuracy only (the align step compiles Cython code per T: minutes)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for steps in (int(t) for t in args.T.split(",")):
        run = os.path.join(args.out, f"T{steps}")
        common = [] if args.data_dir is None else ["--data-dir", args.data_dir]
        train = CLI + ["train", "--rule", "ssnnbp", "--hidden", args.hidden, "--epochs",
                       args.epochs, "--forward-steps", str(steps), "--lr", str(args.eta / steps),
                       "--out", run] + common
        for option, value in (("--train-limit", args.train_limit),
                              ("--test-limit", args.test_limit)):
            if value is not None:
                train += [option, value]
        if not os.path.exists(os.path.join(run, "checkpoint.json")):
            subprocess.run(train, check=True)
        empty = {"update_angle_r1": None, "error_angle": None}  # not measured: null in JSON
        alignment = {"layers": {"W1": empty, "W2": empty}}
        if not args.no_align:
            align_json = os.path.join(run, "alignment.json")
            subprocess.run(CLI + ["align", run, "--probe-size", args.probe_size, "--out",
                                  align_json] + common, check=True)
            with open(align_json) as handle:
                alignment = json.load(handle)
        with open(os.path.join(run, "metrics.json")) as handle:
            epochs = json.load(handle)["epochs"]
        rows.append({"T": steps, "dw_min": args.eta / steps,
                     "test_accuracy": epochs[-1]["test_accuracy"],
                     "best_test_accuracy": max(e["test_accuracy"] for e in epochs),
                     "run_seconds_per_epoch": epochs[-1]["run_seconds"],
                     "angle_W1": alignment["layers"]["W1"]["update_angle_r1"],
                     "angle_W2": alignment["layers"]["W2"]["update_angle_r1"],
                     "error_angle_hidden": alignment["layers"]["W1"]["error_angle"]})
        print(rows[-1], flush=True)
        with open(os.path.join(args.out, "sweep.json"), "w") as handle:
            json.dump({"command": sys.argv, "rows": rows}, handle, indent=1)
    lines = ["| T | Δw_min | test acc (last) | best | θ(ΔW1, R1) | θ(ΔW2, R1) | θ(ν, e_BP) | s/epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['T']} | {r['dw_min']:.2e} | {100 * r['test_accuracy']:.2f} % | "
                     f"{100 * r['best_test_accuracy']:.2f} % | {format_angle(r['angle_W1'])} | "
                     f"{format_angle(r['angle_W2'])} | {format_angle(r['error_angle_hidden'])} | "
                     f"{r['run_seconds_per_epoch']:.0f} |")
    with open(os.path.join(args.out, "sweep.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
