"""The shared network builder and what models hand it: generated slot resets, state binding."""

import numpy as np
import pytest
from brian2 import NeuronGroup, ms
from brian2.utils.logger import BrianLogger

from plausigrad.models.errors import ConfigurationError
from plausigrad.models.layer import slot_reset_code
from plausigrad.models.synapses import signed_pathways
from plausigrad.protocols.engine import Simulator
from plausigrad.protocols.schedule import Windows
from plausigrad.rules.emstdp import EMSTDP
from plausigrad.rules.registry import make_rule

# these tests make Brian2 groups themselves: on the runtime device, whatever ran before
pytestmark = pytest.mark.usefixtures("runtime_device")

DECLARATION = """
v : 1                      # [soma] membrane
b : 1                      # [basal] bias (learned)
rate = count / T : 1       # [soma] a subexpression
count : 1                  # [soma] spikes
theta : 1 (constant, shared)  # [soma] threshold
dither : 1                 # [apical] start value
"""


def test_slot_reset_zeroes_every_declared_variable_but_kept_constants_and_subexpressions():
    code = slot_reset_code(DECLARATION, keep=("b",), start={"dither": "rand()"})
    assert code.splitlines() == ["v = 0", "count = 0", "dither = rand()"]


def test_slot_reset_rejects_names_it_does_not_declare():
    with pytest.raises(ValueError, match="undeclared variables: bias"):
        slot_reset_code(DECLARATION, keep=("bias",))


def test_slot_reset_runs_in_brian2_and_resets_what_it_names():
    group = NeuronGroup(3, DECLARATION.replace("/ T", "/ 2"), name="declared")
    group.v, group.b, group.count, group.theta = 1.5, 0.25, 4, 0.5
    group.run_regularly(slot_reset_code(DECLARATION, keep=("b",), start={"dither": "0.5"}),
                        dt=2 * ms, when="start")
    from brian2 import Network
    Network(group).run(1 * ms, namespace={})
    np.testing.assert_array_equal(group.v[:], 0)
    np.testing.assert_array_equal(group.count[:], 0)
    np.testing.assert_array_equal(group.dither[:], 0.5)
    np.testing.assert_array_equal(group.b[:], 0.25)  # kept
    assert float(group.theta[:]) == 0.5              # a constant is never reset


def test_signed_pathways_give_both_signs_and_their_events():
    pathways, events = signed_pathways("g", "x {sign}= w\ny {opposite}= 1", ("up", "down"))
    assert pathways == {"g_positive": "x += w\ny -= 1", "g_negative": "x -= w\ny += 1"}
    assert events == {"g_positive": "up", "g_negative": "down"}


def _inspect(rule, sizes=(7, 6, 5, 4)):
    simulator = Simulator(rule, sizes, Windows(5, 5), None, np.zeros((3, sizes[0])), np.zeros(3),
                          2, 1, device="runtime")
    BrianLogger.suppress_name("unused_brian_object")  # built to be inspected, never run
    network, _ = simulator.inspect()
    return simulator._handles["built"], network


@pytest.mark.parametrize("name, params", [("biograd", {"learning_rate": 0.1, "init_std": 0.1}),
                                          ("emstdp", {"feedback": "dfa"}),
                                          ("ssnnbp", {"learning_rate": 0.1, "init_std": 0.1})])
def test_builder_gives_every_layer_its_slot_reset_and_binds_the_layout(name, params):
    built, network = _inspect(make_rule(name, params))
    names = {obj.name for obj in network.sorted_objects}
    for layer in built.layers:
        assert f"{layer.name}_slot_reset" in names
        assert layer.slot_reset.splitlines()  # every layer has per-slot state to reset
    assert built.input_group is built.layers[0].group
    assert built.output_group is built.layers[-1].group
    assert "count = 0" in built.layers[-1].slot_reset.splitlines()  # the output's spike count
    for state_name, var in built.state.items():
        assert var.variable in var.owner.variables, state_name


class _WrongLayout(EMSTDP):
    """EMSTDP with a layout that disagrees with its network."""

    def state_layout(self, sizes):
        layout = super().state_layout(sizes)
        layout["W1"] = (sizes[0], sizes[1])  # transposed
        return layout


class _UnboundState(EMSTDP):
    def state_layout(self, sizes):
        return {**super().state_layout(sizes), "trace1": (sizes[1],)}


def test_a_layout_that_disagrees_with_the_network_is_an_error():
    with pytest.raises(ConfigurationError, match=r"state W1: the layout says \(7, 6\), but W1.w "
                                                 r"is \(6, 7\)"):
        _inspect(_WrongLayout())
    with pytest.raises(ConfigurationError, match="'trace1' has no binding"):
        _inspect(_UnboundState())


def test_biograd_decays_are_differential_equations_integrated_exactly():
    """c, v, x̂ (and the exact eligibility's ε) are ODEs with τ = −dt / ln d; one exact step of
    each is the lab's per-step factor, bit for bit (what keeps the golden runs identical)."""
    from plausigrad.models.compartment_neuron import CompartmentNeuronParameters
    from plausigrad.models.clock import STEP
    neuron = CompartmentNeuronParameters()
    for decay, tau in ((neuron.basal_decay, neuron.basal_time_constant),
                       (neuron.membrane_decay, neuron.membrane_time_constant)):
        assert float(np.exp(-STEP / tau)) == decay
    built, _ = _inspect(make_rule("biograd", {"eligibility": "exact", "learning_rate": 0.1,
                                              "init_std": 0.1}))
    assert set(built.layers[0].group.equations.diff_eq_names) == {"xhat"}
    for layer in built.layers[1:]:
        assert set(layer.group.equations.diff_eq_names) == {"c", "v", "xhat"}
        assert layer.group.state_updater.method_choice == "exact"
    assert set(built.state["W1"].owner.equations.diff_eq_names) == {"eps"}
    with pytest.raises(ConfigurationError, match=r"basal decay must lie in \(0, 1\)"):
        CompartmentNeuronParameters(basal_decay=0.0)
