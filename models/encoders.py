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

==========  ======  =======  ==============================================
parameter   symbol  default  meaning
==========  ======  =======  ==============================================
input_rate  r_in    1.0      spike probability per step of a white pixel
==========  ======  =======  ==============================================
"""

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
