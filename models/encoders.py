"""Input encoders: turn pixel intensities into spike trains.

Bernoulli rate coding (ALGORITHMS.md §2.3, [PROPOSAL]): in every step of the forward window,
input neuron i spikes with probability ``input_rate · p_i(t)``, with p_i ∈ [0, 1] the pixel
intensity of the sample presented in the current slot. The encoder keeps the same outgoing trace
as a compartment neuron, since the eligibility of the first weight layer needs it::

    s_i[t] ~ Bernoulli(input_rate · p_i)          (only while ``in_forward``)
    x̂_i[t] = d_c · x̂_i[t-1] + s_i[t]
    x̄_i    = (1/T_f) Σ_t x̂_i[t-1]                 (``xsum / forward_steps``)

x̂ decays between steps as ``dx̂/dt = −x̂ / τ_c`` (exact integration; τ_c = −dt / ln d_c, as in
:mod:`plausigrad.models.compartment_neuron`), after its previous value is kept as ``xlag``.

``pixel_expression`` is any Brian2 expression for p_i; the protocol passes a 2-D ``TimedArray``
lookup indexed by the slot's data row, so one run presents a whole epoch.

Event input (N-MNIST, :mod:`plausigrad.protocols.event_data`) uses the same sources: p_i is then
the binned value of unit i in the current step (:func:`packed_event_expression`), 0 or 1 for
binary frames, and with r_in = 1 every event is a spike and nothing else is (a draw u < 1 always
holds). The frames of a sample are packed into its data row, b bits per cell and
52 // b cells per float64 word (float64 holds integers below 2**53 exactly): binary frames,
b = 1, take 2668 words (21 KB) for 2312 units × 60 bins, instead of a dense (bins × units) row.
Count frames (b > 1) still give one spike per non-empty cell here; a rule with graded input
reads the count itself (:func:`plausigrad.models.lif_neuron.lif_input_layer`, ``graded``).

==========  ======  =======  ==============================================
parameter   symbol  default  meaning
==========  ======  =======  ==============================================
input_rate  r_in    1.0      spike probability per step of a white pixel
==========  ======  =======  ==============================================
"""

from dataclasses import dataclass

from brian2 import NeuronGroup

from plausigrad.models.layer import make_layer

INPUT_STATE = '''
dxhat/dt = -xhat / tau_basal : 1  # [axon] outgoing presynaptic trace, decays with τ_c
xlag : 1    # [axon] x̂ of the previous step
xsum : 1    # [axon] Σ x̂ over the forward window
xbar = xsum / forward_steps : 1  # [axon] mean trace
'''

#: Before the decay of x̂ (Brian2's exact integrator, order -1): the trace of the previous step.
INPUT_STEP = '''
xlag = xhat
xsum += xlag * in_forward
'''

#: How a Bernoulli source draws its random numbers.
DRAWS = ("independent", "shared")


def bernoulli_source(n_inputs, pixel_expression, schedule_equations, *, state, reset,
                     gate="in_forward", name="input", extra_events=None, keep=(),
                     draw="independent"):
    """The Bernoulli rate code every rule's input layer shares.

    Input neuron i spikes with probability ``input_rate · p_i`` in every step where the schedule
    flag ``gate`` is on (``in_forward``: the forward window; EMSTDP's ``stimulus``: every step
    the stimulus is shown). ``state`` (model equations, with ``# [tag]`` compartment comments) and
    ``reset`` are the rule's own bookkeeping of the input spikes; every variable of ``state`` but
    those in ``keep`` is reset at a slot start (:func:`plausigrad.models.layer.make_layer`). Zero
    pixels skip the random draw (short-circuit), which matters: about 80 % of MNIST pixels are
    zero. Returns a :class:`~plausigrad.models.layer.Layer`.

    ``draw``: ``independent`` draws u_i[t] ~ U(0, 1) per pixel and step, s_i[t] = 1{u_i[t] <
    r_in p_i}; ``shared`` draws one u[t] per step for all pixels (s_i[t] = 1{u[t] < r_in p_i}),
    as EMSTDP's public code does (``randy``: one number per step, tiled over pixels and batch):
    each pixel still spikes with probability r_in p_i, but the brighter pixels' spikes are
    nested supersets of the dimmer ones'.
    """
    if draw not in DRAWS:
        raise ValueError(f"draw must be one of {DRAWS}, got {draw!r}")
    model = state + f"pixel = {pixel_expression} : 1\n" + schedule_equations
    uniform = "rand()"
    if draw == "shared":
        model += "u_step : 1 (shared)  # one uniform number per step, shared by all pixels\n"
        uniform = "u_step"
    group = NeuronGroup(n_inputs, model,
                        threshold=f"{gate} > 0 and pixel > 0 and {uniform} < input_rate * pixel",
                        reset=reset, events=extra_events, method="exact", name=name)
    if draw == "shared":
        group.run_regularly("u_step = rand()", when="groups", order=-3, name=f"{name}_draw")
    return make_layer(group, state, keep=keep)


def bernoulli_input(n_inputs, pixel_expression, schedule_equations, *, name="input",
                    extra_events=None):
    """Bernoulli spike sources in the forward window, with the outgoing trace x̂ (BioGrad)."""
    layer = bernoulli_source(n_inputs, pixel_expression, schedule_equations, state=INPUT_STATE,
                             reset="xhat += 1", name=name, extra_events=extra_events)
    layer.group.run_regularly(INPUT_STEP, when="groups", order=-2, name=f"{name}_before_decay")
    layer.group.state_updater.order = -1
    return layer


#: Bits of a float64 word a packed event row uses (integers below 2**53 are exact): with one bit
#: per cell (binary frames), 52 cells per word.
PACKED_BITS = 52


def cells_per_word(bits):
    """Cells of ``bits`` bits each in one float64 word of a packed row."""
    return PACKED_BITS // bits


def packed_event_expression(table, row_time, n_units, n_bins, step="step_in_slot", bits=1):
    """Brian2 expression for the binned event value of input unit ``i`` in the current step
    (0 or 1 for binary frames, the event count for ``bits`` > 1), read from the packed row of the
    slot's sample in the 2-D ``TimedArray`` ``table`` (``table(row_time, word)``). ``step`` is
    the bin the step presents (an integer expression; the schedule's ``step_in_slot`` by
    default); bins outside [0, n_bins) have no events.

    Cell k = bin · n_units + i is field k mod m of word k // m, m = 52 // bits cells of ``bits``
    bits each; its value is (y mod 2**bits) − (y mod 1) with y = word / 2**(bits · field): the
    division by a power of 2 and the float remainders are exact in float64, no step converts a
    52-bit value to an integer (a floor would, on the numpy target, and overflow), and no
    comparison of a TimedArray value goes through sympy (which refuses to order it).
    """
    per_word = cells_per_word(bits)
    cell = f"(clip({step}, 0, {n_bins - 1}) * {n_units} + i)"
    word = f"{table}({row_time}, {cell} // {per_word})"
    if bits == 1:  # the binary layout's expression, exactly as it has always been generated
        shifted = f"({word} / 2.0**({cell} % {per_word}))"
        field_value = f"({shifted} % 2 - {shifted} % 1)"
    else:
        shifted = f"({word} / 2.0**({bits} * ({cell} % {per_word})))"
        field_value = f"({shifted} % {2 ** bits} - {shifted} % 1)"
    return f"int({step} >= 0 and {step} < {n_bins}) * {field_value}"


@dataclass(frozen=True)
class PackedEvents:
    """The input encoding of packed binned events (``input_encoding`` of the engine's
    ``Simulator``): ``n_units`` inputs, ``n_bins`` bins per sample, ``bits`` per cell (1: binary
    frames; more: event counts up to 2**bits − 1). ``counts``: the cells hold event counts, which
    a rule with graded input (``LearningRule.accepts_event_counts``) integrates as x = the count;
    with ``counts`` False every cell is 0 or 1."""

    n_units: int
    n_bins: int
    bits: int = 1
    counts: bool = False

    @property
    def words(self):
        """float64 words per packed row."""
        return -(-self.n_bins * self.n_units // cells_per_word(self.bits))

    def expression(self, table, row_time, step="step_in_slot"):
        return packed_event_expression(table, row_time, self.n_units, self.n_bins, step,
                                       self.bits)
