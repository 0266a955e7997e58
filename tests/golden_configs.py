"""The golden-run configurations (shared by tests/test_golden.py and tools/record_golden.py).

One tiny network per rule, two epochs on the first 40 training / 16 test images of the bundled
MNIST subset, fixed seed. Each exercises the rule's richest default path: BioGrad with sleep
(mini-batches, sleep blocks, plastic B), EMSTDP with fixed random feedback (error units, feedback
synapses, RMS normaliser), SSNN-BP with biases (WTA output, coincidence updates).
"""

from plausigrad.protocols.training import RunConfig, train

COMMON = dict(hidden=(20,), epochs=2, train_limit=40, test_limit=16, seed=0)

GOLDEN = {
    "biograd": dict(rule="biograd", forward_steps=12, feedback_steps=6, sleep_every=16,
                    sleep_slots=2, rule_params={}),
    "emstdp": dict(rule="emstdp", forward_steps=12, feedback_steps=13,
                   rule_params={"feedback": "fa", "batch_size": 4, "profile": "revised"}),
    "ssnnbp": dict(rule="ssnnbp", forward_steps=8, feedback_steps=3,
                   rule_params={"bias_learning_rate": 0.001}),
}

#: metrics that depend on the machine, not on the computation
TIMING_KEYS = {"run_seconds", "epoch_seconds", "samples_per_second", "compile_seconds",
               "cpu_cores"}


def golden_run(rule, device, out_dir, build_root=None):
    """Train golden configuration ``rule`` on ``device``; returns (final state, metrics)."""
    config = RunConfig(device=device, **COMMON, **GOLDEN[rule])
    history = train(config, out_dir, log=lambda *_: None, build_root=build_root or out_dir)
    from plausigrad.protocols.checkpoint import load_checkpoint
    _, state = load_checkpoint(out_dir)
    return state, history
