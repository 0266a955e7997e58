"""``make bench``: speed of one BioGrad epoch, as ratios measured in ONE process on this machine.

What is timed (784-500-10, T_f = 20, T_b = 10, sleep 20 slots every 1000 samples, batch 8):

1. C++ standalone: compile time of a fresh build, then samples/s of a run over a slice, and the
   seconds of a full MNIST epoch (60 000 train + 10 000 test) extrapolated from it;
2. the same slice design on the runtime device (Cython), on a smaller slice;
3. the anti-pattern this engine avoids: a Python loop calling ``net.run()`` once per sample
   (runtime, Cython), on a smaller slice still;
4. exact (per-synapse) against factorised eligibility on C++ standalone;
5. EMSTDP beside it (784-100-10, the MNIST script's 49 + 50 steps per sample, batch 10, symmetric
   feedback): C++ standalone compile time, samples/s over a slice and the extrapolated seconds of
   a full MNIST epoch (``--rules emstdp`` times only this part);
6. SSNN-BP beside them (784-500-10, T = 32 + 3 pipeline-drain steps, online per-step coincidence
   updates): the same three numbers (``--rules ssnnbp`` times only this part);
7. BioGrad's published profile (the lab's 784-500-100-10, windows 60 + 5, batch 128, a block of
   256 sleep slots after every 128 samples) with its two forms of the per-synapse trace, event-
   driven against per-step, on the same slice (``--rules biograd-published`` times only this
   part);
8. event input (``--rules nmnist``): synthetic full-size N-MNIST (70 000 samples, each a real
   subset sample translated on the sensor, :func:`~plausigrad.protocols.event_data.synthetic_frames`)
   bit-packed into the compiled run, against static MNIST on the same BioGrad network
   (2312- or 784-500-10, 20 + 10 steps, sleep): peak memory of the running binary (its full
   data table loaded), the table's bytes per sample, compile seconds and samples/s over a slice.
   Needs the N-MNIST subset (``--nmnist-dir``, default ``../shared/data/nmnist``).

Samples/s count training and evaluation slots alike. Results go to stdout and to
``results/bench.json``. Data: full MNIST when ``--data-dir``/``PLAUSIGRAD_DATA_DIR`` is given,
else the bundled subset (same image statistics, fewer samples).
"""

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np

from plausigrad.protocols.datasets import load_dataset
from plausigrad.protocols.devices import Device
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.schedule import SleepSchedule, Windows
from plausigrad.rules.registry import make_rule

SIZES = (784, 500, 10)
WINDOWS = Windows(20, 10)
SLEEP = SleepSchedule(every_samples=1000, slots=20)
FULL_EPOCH_SAMPLES = 70_000


def _simulator(rule, images, labels, n_train, n_eval, device, build_root, name):
    return Simulator(rule, SIZES, WINDOWS, SLEEP, images[:n_train + n_eval],
                     labels[:n_train + n_eval], n_train, n_eval,
                     device=Device(device, os.path.join(build_root, name)))


def _time_run(simulator, rule, state, n_train):
    record = simulator.run(state, np.arange(n_train), 1, rule.learning_rate_values(2))
    samples = simulator.n_train + simulator.n_eval
    return {"samples": samples, "seconds": round(record.run_seconds, 3),
            "samples_per_second": round(samples / record.run_seconds, 1)}


def _time_per_sample_loop(rule, state, images, labels, n_samples):
    """The pattern to avoid: one ``net.run(slot)`` call per sample from Python (runtime)."""
    simulator = Simulator(rule, SIZES, WINDOWS, None, images[:n_samples], labels[:n_samples],
                          n_samples, 0, device="runtime")
    from plausigrad.protocols.devices import activate_device
    activate_device("runtime")
    net, namespace = simulator._build(simulator.timeline(np.arange(n_samples)))
    simulator._assign(state, rule.learning_rate_values(2))
    net.run(simulator.slot_duration, namespace=namespace)  # code generation, not timed
    started = time.perf_counter()
    for _ in range(n_samples - 1):
        net.run(simulator.slot_duration, namespace=namespace)
    seconds = time.perf_counter() - started
    return {"samples": n_samples - 1, "seconds": round(seconds, 3),
            "samples_per_second": round((n_samples - 1) / seconds, 1)}


#: The other rules, each timed with its default windows on the network of its MNIST results:
#: rule name (in the registry) -> layer sizes.
RULE_BENCHES = {"emstdp": (784, 100, 10), "ssnnbp": (784, 500, 10)}


def bench_rule(name, images, labels, build_root, cpp_slice=3000):
    """A rule with its default parameters and windows on C++ standalone: compile seconds,
    samples/s over ``cpp_slice`` samples (one sixth of them evaluation slots) and the seconds of a
    full MNIST epoch extrapolated from them."""
    sizes = RULE_BENCHES[name]
    rule = make_rule(name)
    state = rule.initial_state(sizes, np.random.default_rng(0))
    eval_part = cpp_slice // 6
    n_train = cpp_slice - eval_part
    simulator = Simulator(rule, sizes, Windows(*rule.default_windows), None,
                          images[:cpp_slice], labels[:cpp_slice], n_train, eval_part,
                          device=Device("cpp", os.path.join(build_root, name)))
    result = {"network": "-".join(map(str, sizes)), "windows": list(rule.default_windows),
              **{key: value for key, value in rule.describe().items()
                 if key in ("feedback", "batch_size")},
              "cpp_compile_seconds": round(simulator.compile(), 1)}
    result["cpp"] = _time_run(simulator, rule, state, n_train)
    result["cpp_full_epoch_seconds_extrapolated"] = round(
        FULL_EPOCH_SAMPLES / result["cpp"]["samples_per_second"], 1)
    return result


#: The published BioGrad bench: the lab's network, on a slice of 2 mini-batches (and their sleep
#: blocks) and one of evaluation.
PUBLISHED_SIZES = (784, 500, 100, 10)


def bench_published_traces(images, labels, build_root, n_train=256, n_eval=128):
    """BioGrad ``--profile published`` on C++ standalone with each trace form: compile seconds
    and samples/s (training + evaluation samples; the sleep slots in between are simulated but
    not counted), and the event form's speed-up."""
    results = {"network": "-".join(map(str, PUBLISHED_SIZES)), "train_samples": n_train,
               "eval_samples": n_eval}
    state = None
    for form in ("event", "per_step"):
        rule = make_rule("biograd", {"profile": "published", "trace_form": form})
        if state is None:
            state = rule.initial_state(PUBLISHED_SIZES, np.random.default_rng(0))
        every, slots = rule.sleep_defaults(len(PUBLISHED_SIZES) - 2)
        simulator = Simulator(rule, PUBLISHED_SIZES, Windows(*rule.default_windows),
                              SleepSchedule(every_samples=every, slots=slots),
                              images[:n_train + n_eval], labels[:n_train + n_eval], n_train,
                              n_eval, device=Device("cpp", os.path.join(build_root, f"pub_{form}")))
        results[f"{form}_compile_seconds"] = round(simulator.compile(), 1)
        record = simulator.run(state, np.arange(n_train), 1,
                               rule.learning_rate_values(len(PUBLISHED_SIZES) - 1))
        results[form] = {"samples": n_train + n_eval, "sleep_slots": n_train // every * slots,
                         "seconds": round(record.run_seconds, 3),
                         "samples_per_second": round((n_train + n_eval) / record.run_seconds, 2)}
    results["event_vs_per_step"] = round(results["event"]["samples_per_second"]
                                         / results["per_step"]["samples_per_second"], 1)
    return results


class PeakMemory:
    """Peak resident memory (VmHWM, bytes) of this process's child called ``main`` (the compiled
    standalone binary, which Brian2 starts as a direct child), polled from ``/proc`` every
    ``period`` s while the context is open; ``peak`` is None when no such child was seen.
    VmHWM is the kernel's high-water mark, so a peak between two polls is caught as long as
    one poll comes after it (the binary's peak is its data tables, loaded at start)."""

    def __init__(self, period=0.2):
        self.period, self.peak = period, None
        self._stop = threading.Event()

    def _poll(self):
        me = str(os.getpid())
        while not self._stop.wait(self.period):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        fields = dict(line.split(":", 1) for line in handle if ":" in line)
                except OSError:
                    continue
                if fields.get("Name", "").strip() == "main" and \
                        fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    kib = int(fields["VmHWM"].split()[0])
                    self.peak = max(self.peak or 0, kib * 1024)

    def __enter__(self):
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


#: The event-input bench: BioGrad's default network and windows, on both inputs.
EVENT_HIDDEN = (500,)


def bench_event_input(mnist_images, mnist_labels, nmnist_dir, build_root, cpp_slice=3000,
                      n_rows=FULL_EPOCH_SAMPLES, seed=0):
    """BioGrad (defaults: 20 + 10 steps, sleep) on C++ standalone with a data table of
    ``n_rows`` samples (full size by default), once with synthetic N-MNIST event frames
    (bit-packed, 60 binary 5 ms bins, 2312 inputs) and once with static MNIST images (784
    inputs, rates): compile seconds, samples/s over ``cpp_slice`` samples (one sixth of them
    evaluation), the peak memory of the running binary and the table's bytes per sample."""
    from plausigrad.protocols.event_data import (N_UNITS, load_nmnist_split, locate_nmnist,
                                                 pack_frames, synthetic_frames)
    from plausigrad.models.encoders import PackedEvents
    source = load_nmnist_split(locate_nmnist(nmnist_dir), "Train")
    started = time.perf_counter()
    frames = synthetic_frames(source, n_rows, np.random.default_rng(seed))
    packed = pack_frames(frames)
    results = {"rule": "biograd", "windows": [WINDOWS.forward_steps, WINDOWS.feedback_steps],
               "table_samples": n_rows, "slice_samples": cpp_slice,
               "synthetic_source": f"{len(source)} N-MNIST training files at {nmnist_dir}",
               "events_per_sample": round(float(np.diff(frames.offsets).mean()), 1),
               "synthesis_seconds": round(time.perf_counter() - started, 1)}
    event_labels = frames.labels
    del frames
    if len(mnist_labels) < n_rows:  # the bundled subset: its images repeated to full size
        repeats = -(-n_rows // len(mnist_labels))
        mnist_images = np.tile(mnist_images, (repeats, 1))
        mnist_labels = np.tile(mnist_labels, repeats)
    inputs = {"nmnist": (packed, event_labels, N_UNITS,
                         PackedEvents(N_UNITS, source.binning.n_bins)),
              "mnist": (mnist_images[:n_rows], mnist_labels[:n_rows], mnist_images.shape[1],
                        None)}
    eval_part = cpp_slice // 6
    for name, (table, labels, n_inputs, encoding) in inputs.items():
        sizes = (n_inputs, *EVENT_HIDDEN, 10)
        rule = make_rule("biograd")
        state = rule.initial_state(sizes, np.random.default_rng(seed))
        # the whole table is in the binary; the run presents the first rows of it
        simulator = Simulator(rule, sizes, WINDOWS, SLEEP, table, labels, cpp_slice - eval_part,
                              eval_part, device=Device("cpp", os.path.join(build_root, f"ev_{name}")),
                              input_encoding=encoding)
        entry = {"network": "-".join(map(str, sizes)),  # the table as the binary holds it
                 "table_bytes_per_sample": int(simulator.images[0].nbytes),
                 "table_gib": round(simulator.images.nbytes / 2**30, 2),
                 "cpp_compile_seconds": round(simulator.compile(), 1)}
        with PeakMemory() as memory:
            entry["cpp"] = _time_run(simulator, rule, state, cpp_slice - eval_part)
        entry["binary_peak_memory_gib"] = (None if memory.peak is None
                                           else round(memory.peak / 2**30, 2))
        results[name] = entry
        del simulator
    results["ratios"] = {
        "nmnist_vs_mnist_samples_per_second": round(
            results["nmnist"]["cpp"]["samples_per_second"]
            / results["mnist"]["cpp"]["samples_per_second"], 2),
        "nmnist_vs_mnist_binary_memory": (
            None if None in (results["nmnist"]["binary_peak_memory_gib"],
                             results["mnist"]["binary_peak_memory_gib"])
            else round(results["nmnist"]["binary_peak_memory_gib"]
                       / results["mnist"]["binary_peak_memory_gib"], 2))}
    return results


def run_bench(data_dir=None, cpp_slice=5000, runtime_slice=300, loop_slice=40, exact_slice=500,
              rules=("biograd", "emstdp", "ssnnbp", "biograd-published", "nmnist"),
              nmnist_dir="../shared/data/nmnist"):
    dataset = load_dataset("mnist", data_dir=data_dir)
    images = np.concatenate([dataset.train_images, dataset.test_images])
    labels = np.concatenate([dataset.train_labels, dataset.test_labels])
    cpp_slice = min(cpp_slice, dataset.num_train)
    build_root = tempfile.mkdtemp(prefix="plausigrad_bench_")
    results = {"cpu_cores": os.cpu_count(), "data": dataset.source}
    if "biograd" in rules:
        results.update(_bench_biograd(images, labels, build_root, cpp_slice, runtime_slice,
                                      loop_slice, exact_slice))
    for name in RULE_BENCHES:
        if name not in rules:
            continue
        results[name] = bench_rule(name, images, labels, build_root,
                                   min(3000, dataset.num_train))
        if "cpp" in results:
            results["ratios"][f"{name}_vs_biograd_full_epoch_seconds"] = round(
                results[name]["cpp_full_epoch_seconds_extrapolated"]
                / results["cpp_full_epoch_seconds_extrapolated"], 2)
    if "biograd-published" in rules:
        results["biograd_published_traces"] = bench_published_traces(images, labels, build_root)
    if "nmnist" in rules:
        results["event_input"] = bench_event_input(images, labels, nmnist_dir, build_root)
    return results


def _bench_biograd(images, labels, build_root, cpp_slice, runtime_slice, loop_slice, exact_slice):
    rule = make_rule("biograd")
    state = rule.initial_state(SIZES, np.random.default_rng(0))
    results = {"network": "-".join(map(str, SIZES)),
               "windows": [WINDOWS.forward_steps, WINDOWS.feedback_steps]}

    eval_part = cpp_slice // 6
    cpp = _simulator(rule, images, labels, cpp_slice - eval_part, eval_part, "cpp", build_root,
                     "cpp")
    results["cpp_compile_seconds"] = round(cpp.compile(), 1)
    results["cpp"] = _time_run(cpp, rule, state, cpp_slice - eval_part)
    results["cpp_full_epoch_seconds_extrapolated"] = round(
        FULL_EPOCH_SAMPLES / results["cpp"]["samples_per_second"], 1)

    runtime = _simulator(rule, images, labels, runtime_slice, 0, "runtime", build_root, "rt")
    _time_run(runtime, rule, state, runtime_slice)  # first run compiles the Cython code objects
    results["runtime_cython"] = _time_run(runtime, rule, state, runtime_slice)
    results["per_sample_net_run_loop"] = _time_per_sample_loop(rule, state, images, labels,
                                                               loop_slice)

    exact_rule = make_rule("biograd", {"eligibility": "exact"})
    exact = _simulator(exact_rule, images, labels, exact_slice, 0, "cpp", build_root, "exact")
    results["cpp_exact_compile_seconds"] = round(exact.compile(), 1)
    results["cpp_exact_eligibility"] = _time_run(exact, exact_rule, state, exact_slice)
    results["cpp_factorised_same_slice"] = _time_run(
        _simulator(rule, images, labels, exact_slice, 0, "cpp", build_root, "fact"), rule, state,
        exact_slice)

    speed = results["cpp"]["samples_per_second"]
    results["ratios"] = {
        "cpp_vs_runtime": round(speed / results["runtime_cython"]["samples_per_second"], 1),
        "cpp_vs_per_sample_loop": round(
            speed / results["per_sample_net_run_loop"]["samples_per_second"], 1),
        "factorised_vs_exact": round(results["cpp_factorised_same_slice"]["samples_per_second"]
                                     / results["cpp_exact_eligibility"]["samples_per_second"], 1)}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="results/bench.json")
    choices = ("biograd", *RULE_BENCHES, "biograd-published", "nmnist")
    parser.add_argument("--nmnist-dir", default="../shared/data/nmnist",
                        help="N-MNIST subset the synthetic full-size data is drawn from "
                             "(part nmnist)")
    parser.add_argument("--rules", default=",".join(choices),
                        help=f"comma-separated parts to time ({', '.join(choices)})")
    args = parser.parse_args(argv)
    rules = tuple(args.rules.split(","))
    unknown = sorted(set(rules) - set(choices))
    if unknown:
        parser.exit(2, f"error: unknown rule(s) for --rules: {', '.join(unknown)} "
                       f"(choose from {', '.join(choices)})\n")
    if "nmnist" in rules:
        from plausigrad.protocols.datasets import DatasetError
        from plausigrad.protocols.event_data import list_split, locate_nmnist
        try:
            list_split(locate_nmnist(args.nmnist_dir), "Train")
        except DatasetError as exc:
            parser.exit(2, f"error: part nmnist needs the N-MNIST subset: {exc}\n")
    results = run_bench(args.data_dir, rules=rules, nmnist_dir=args.nmnist_dir)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
