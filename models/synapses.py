"""Synapses of the compartment network: feedforward (basal), feedback (apical), and both at once.

Feedforward synapse ``W_ji`` (presynaptic i in layer l-1, postsynaptic j in layer l)::

    on a presynaptic spike:   I_basal_j += W_ji        (integrated by c_j in the next step)

Feedback synapse ``B_jk`` (presynaptic error unit k in layer l+1, postsynaptic neuron j in l)::

    on error_positive of k:   u_j += q · B_jk ;  D_j += ψ̄_j · B_jk
    on error_negative of k:   u_j -= q · B_jk ;  D_j -= ψ̄_j · B_jk

so the apical compartment u_j integrates Σ_k B_jk · q · (n⁺_k - n⁻_k) ≈ Σ_k B_jk ψ̄_k δ_k, and the
error unit D_j receives the same signal gated by the neuron's own mean pseudo-derivative ψ̄_j,
to be passed further down (ALGORITHMS.md §2.4, [PROPOSAL]). q is ``error_quantum``.

Symmetric feedback (B = Wᵀ) needs no second matrix: the feedforward ``Synapses`` object carries
the backward path as ``on_post`` pathways triggered by the *postsynaptic* error events and
reads the same ``w`` — a crossbar's transposed read (DESIGN.md, "one Synapses object may carry a
forward path on presynaptic spikes and a backward path on postsynaptic events").

The plasticity of each synapse type (eligibility, update, sleep) is contributed by a rule from
:mod:`plausigrad.rules`; this module only assembles the pieces.
"""

import numpy as np
from brian2 import Synapses

FEEDFORWARD_MODEL = "w : 1  # feedforward weight onto the basal dendrite\n"
FEEDFORWARD_ON_PRE = "I_basal_post += w"
FEEDBACK_MODEL = "B : 1  # feedback weight onto the apical dendrite\n"


#: (pathway suffix, sign, opposite sign) of a pair of signed pathways
SIGNS = (("positive", "+", "-"), ("negative", "-", "+"))


def signed_pathways(prefix, code, events=("error_positive", "error_negative")):
    """The two pathways of a signed event pair, as ``(pathways, on_event)`` dicts.

    ``{prefix}_positive`` runs on ``events[0]``, ``{prefix}_negative`` on ``events[1]``; ``code``
    is formatted with ``{sign}`` (``+`` / ``-``) and ``{opposite}`` (``-`` / ``+``). Every signed
    error or gradient path in plausigrad is written through this one function: BioGrad's apical
    errors, EMSTDP's error units, SSNN-BP's gradient streams.
    """
    pathways, on_event = {}, {}
    for (suffix, sign, opposite), event in zip(SIGNS, events):
        pathways[f"{prefix}_{suffix}"] = code.format(sign=sign, opposite=opposite)
        on_event[f"{prefix}_{suffix}"] = event
    return pathways, on_event


def apical_pathways(weight, receiver):
    """The two signed error pathways writing into the apical side ``receiver`` (pathways,
    on_event).

    ``weight`` is the variable carrying the feedback strength (``B``, or ``w`` for symmetric
    feedback); ``receiver`` is ``"post"`` for feedback synapses and ``"pre"`` when the backward
    path runs on a feedforward synapse.
    """
    return signed_pathways("apical", f"u_{receiver} {{sign}}= error_quantum * {weight}\n"
                                     f"err_{receiver} {{sign}}= psibar_{receiver} * {weight}")


def feedforward_synapses(pre, post, *, name, symmetric_feedback=False, extra_model="",
                         extra_on_pre=None, extra_on_post=None, extra_events=None):
    """All-to-all feedforward synapses ``pre -> post`` (basal), with optional extras from a rule.

    With ``symmetric_feedback`` the postsynaptic error events travel back through the same ``w``
    into the presynaptic apical compartment.
    """
    on_pre = {"pre": FEEDFORWARD_ON_PRE, **(extra_on_pre or {})}
    on_post = dict(extra_on_post or {})
    on_event = dict(extra_events or {})
    if symmetric_feedback:
        pathways, events = apical_pathways("w", "pre")
        on_post.update(pathways)
        on_event.update(events)
    synapses = Synapses(pre, post, model=FEEDFORWARD_MODEL + extra_model, on_pre=on_pre,
                        on_post=on_post or None, on_event=on_event, method="exact", name=name)
    connect_all_to_all(synapses)
    return synapses


def feedback_synapses(upper, lower, *, name, extra_model="", extra_on_pre=None,
                      extra_on_post=None, extra_events=None):
    """All-to-all feedback synapses from the error units of ``upper`` to the apical of ``lower``."""
    pathways, events = apical_pathways("B", "post")
    on_pre = {**pathways, **(extra_on_pre or {})}
    on_event = {**events, **(extra_events or {})}
    synapses = Synapses(upper, lower, model=FEEDBACK_MODEL + extra_model, on_pre=on_pre,
                        on_post=extra_on_post, on_event=on_event, name=name)
    connect_all_to_all(synapses)
    return synapses


def connect_all_to_all(synapses):
    """Connect every pre to every post in a fixed, documented order: pre-major.

    Synapse k joins pre ``k // n_post`` to post ``k % n_post``, so a weight vector reshapes to a
    (n_pre, n_post) matrix on every device (standalone creates synapses only when it runs, so the
    order must not be read back from Brian2).
    """
    n_pre, n_post = len(synapses.source), len(synapses.target)
    synapses.connect(i=np.repeat(np.arange(n_pre), n_post), j=np.tile(np.arange(n_post), n_pre))


def synapse_vector_to_matrix(values, n_pre, n_post):
    """Weights in synapse order -> matrix indexed [post, pre] (a copy, never a view of Brian2's
    arrays, whose memory is released when the device is reinitialised)."""
    return np.array(values, dtype=np.float64).reshape(n_pre, n_post).T.copy()


def matrix_to_synapse_vector(matrix):
    """Matrix indexed [post, pre] -> weights in synapse order (pre-major)."""
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float64).T).ravel()
