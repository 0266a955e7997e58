"""Record the golden runs that pin the behaviour of every rule (tests/golden/).

Each golden run is a tiny network trained for two epochs on the bundled MNIST subset with a fixed
seed, once on the runtime device (Cython) and once on C++ standalone. The final learned state
(weights, biases, feedback and optimiser arrays) goes into ``<rule>-<device>.npz`` and the
per-epoch metrics, less wall-clock timings, into ``<rule>-<device>.json``.
``tests/test_golden.py`` trains the same configurations and requires bit-identical state.

Re-record only for an intended change of behaviour, in its own commit with a changelog line:

    .venv/bin/python tools/record_golden.py [--device runtime|cpp] [--rule NAME]
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, "..", "tests", "golden")
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from golden_configs import GOLDEN, TIMING_KEYS, golden_run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("runtime", "cpp"), action="append")
    parser.add_argument("--rule", choices=sorted(GOLDEN), action="append")
    args = parser.parse_args(argv)
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    for rule in args.rule or sorted(GOLDEN):
        for device in args.device or ("runtime", "cpp"):
            with tempfile.TemporaryDirectory() as tmp:
                state, history = golden_run(rule, device, tmp)
            stem = os.path.join(GOLDEN_DIR, f"{rule}-{device}")
            np.savez(stem + ".npz", **state)
            metrics = [{k: v for k, v in entry.items() if k not in TIMING_KEYS} for entry in history]
            with open(stem + ".json", "w") as handle:
                json.dump(metrics, handle, indent=1, sort_keys=True)
            print(f"wrote {stem}.npz/.json: test accuracy per epoch "
                  f"{[e.get('test_accuracy') for e in metrics]}")


if __name__ == "__main__":
    main()
