"""The locality audit reads the generated Brian2 model: local rules pass, non-local ones are named."""

import json
import subprocess
import sys

import pytest
from brian2 import NetworkOperation, NeuronGroup, Synapses

from plausigrad.analysis.audit import audit_objects, audit_rule, format_report, report_json
from plausigrad.protocols.training import RunConfig
from plausigrad.rules.biograd import BioGrad, BioGradParameters

# these tests make Brian2 groups themselves: on the runtime device, whatever ran before
pytestmark = pytest.mark.usefixtures("runtime_device")


def _reads(report, synapses, target):
    (statement,) = [s for s in report.statements if s.synapses == synapses and s.target == target
                    and s.reads]
    return {r.name: (r.source, r.detail) for r in statement.reads}, statement


def test_biograd_is_local_and_names_compartments():
    report = audit_rule(BioGrad(BioGradParameters(feedback="sleep")))
    assert report.local and report.online
    reads, statement = _reads(report, "W1", "grad")
    assert statement.event_based and "learn" in statement.trigger
    assert reads["u_post"] == ("post", "apical")
    assert reads["psibar_post"] == ("post", "soma")
    assert reads["xbar_pre"] == ("pre", "axon")
    hebbian = [s for s in report.statements if s.synapses == "B1" and s.event_based]
    reads = {r.name: (r.source, r.detail) for r in hebbian[0].reads}
    assert reads["I_last_pre"] == ("pre", "basal")  # the upper unit's dendritic input
    assert reads["step_in_slot_pre"][0] == "phase"
    # the decay of B runs on a slot clock, not on an event: reported, with its statement
    assert not report.event_based
    assert any("B1" in line and "sleep_decay" in line for line in report.verdict())


@pytest.mark.parametrize("rule_name", ["emstdp", "ssnnbp"])
def test_emstdp_and_ssnnbp_are_local_and_event_based(rule_name):
    report = audit_rule(RunConfig(rule=rule_name).make_rule())
    assert report.statements, "no plasticity statement found"
    assert report.local and report.event_based and report.online, report.verdict()
    assert all(s.synapses.startswith("W") for s in report.statements)


def test_report_follows_the_rule_options():
    """Derived from the model: the exact eligibility adds per-step synaptic statements."""
    factorised = audit_rule(BioGrad(BioGradParameters(feedback="fa")))
    exact = audit_rule(BioGrad(BioGradParameters(feedback="fa", eligibility="exact")))
    assert factorised.event_based and not exact.event_based
    reads, statement = _reads(exact, "W2", "eps")
    assert "every step" in statement.trigger and reads["xlag_pre"] == ("pre", "axon")
    assert exact.local


def test_non_local_updates_are_flagged_with_their_statement():
    pre = NeuronGroup(3, "x : 1", threshold="x > 0", name="audit_pre")
    post = NeuronGroup(2, "wsum : 1\nlayer_error : 1 (shared)", name="audit_post")
    post.run_regularly("layer_error = 0.5", name="audit_post_error")
    greedy = Synapses(pre, post, "w : 1\nwsum_post = w : 1 (summed)",
                      on_pre="w -= 0.01 * wsum_post", name="greedy")
    global_error = Synapses(pre, post, "v : 1", on_pre="v += layer_error_post * x_pre",
                            name="global_error")
    honest = Synapses(pre, post, "k : 1", on_pre="k += x_pre", name="honest")
    hidden = Synapses(pre, post, "q : 1", on_pre="total = 2 * wsum_post\nq += total",
                      name="hidden_in_temporary")
    report = audit_objects([pre, post, greedy, global_error, honest, hidden], {}, rule="test")
    assert not report.local
    by_name = {s.synapses: s for s in report.statements}
    assert not by_name["greedy"].local and not by_name["global_error"].local
    assert by_name["honest"].local
    assert not by_name["hidden_in_temporary"].local  # a temporary does not launder a read
    assert any("sum over the synapses of greedy" in p for p in by_name["greedy"].breaks())
    assert any("layer_error" in p and "global quantity" in p
               for p in by_name["global_error"].breaks())
    verdict = "\n".join(report.verdict())
    assert "w -= 0.01 * wsum_post" in verdict and "v += layer_error_post * x_pre" in verdict
    assert json.loads(report_json(report))["local"] is False
    assert "**NO**" in format_report(report, markdown=True)


def test_python_code_in_the_network_is_not_online():
    pre = NeuronGroup(2, "x : 1", threshold="x > 0", name="op_pre")
    syn = Synapses(pre, pre, "w : 1", on_pre="w += x_pre", name="op_syn")
    report = audit_objects([pre, syn, NetworkOperation(lambda: None, name="replay")], {})
    assert not report.online and report.opaque == ["replay"]


def test_cli_audit_writes_markdown(tmp_path):
    out = tmp_path / "audit.md"
    done = subprocess.run([sys.executable, "-m", "plausigrad.protocols.cli", "audit",
                           "--feedback", "symmetric", "--format", "markdown", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| W1 | on presynaptic event 'learn'" in out.read_text()
    bad = subprocess.run([sys.executable, "-m", "plausigrad.protocols.cli", "audit", "--format",
                          "yaml"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_brian2_adapter_reads_the_synaptic_pathways():
    """synaptic_pathways is the one reader of Brian2's private Synapses._pathways: this fails
    if Brian2 renames it or changes what it holds."""
    from brian2.synapses.synapses import SynapticPathway
    from plausigrad.analysis.audit import synaptic_pathways
    group = NeuronGroup(2, "v : 1", threshold="v > 1", events={"other": "v > 2"})
    synapses = Synapses(group, group, "w : 1", on_pre={"pre": "v += w", "extra": "w += 1"},
                        on_post="w -= 1", on_event={"extra": "other"})
    pathways = synaptic_pathways(synapses)
    assert all(isinstance(p, SynapticPathway) for p in pathways)
    assert sorted(p.code.strip() for p in pathways) == ["v += w", "w += 1", "w -= 1"]


def test_compartment_tags_are_declared_beside_the_group():
    from plausigrad.models.compartments import compartments, declare_compartments
    group = declare_compartments(NeuronGroup(1, "v : 1\nc : 1"), "v : 1  # [soma] m\nc : 1\n"
                                 "r = v / 2 : 1  # [axon] readout")
    assert compartments(group) == {"v": "soma", "r": "axon"}
    assert compartments(NeuronGroup(1, "v : 1")) == {}
    assert not hasattr(group, "_compartments")


def _sorted_report(report):
    """The JSON report with its statements in a fixed order (the network's object order is not)."""
    data = json.loads(report_json(report))
    data["statements"] = sorted(data["statements"], key=lambda s: json.dumps(s, sort_keys=True))
    return data


@pytest.mark.parametrize("rule_name", ["biograd", "emstdp", "ssnnbp"])
def test_event_input_leaves_every_learning_statement_as_it_is(rule_name):
    """With N-MNIST's bit-packed event input only the input group's drive changes: the audit of
    every rule reads the same statements, with the same verdict, as with images."""
    rule = RunConfig(rule=rule_name).make_rule()
    images = _sorted_report(audit_rule(rule))
    events = audit_rule(rule, event_bins=6)
    assert events.local and events.online
    assert _sorted_report(events) == images
    assert images["statements"]  # not an empty comparison
