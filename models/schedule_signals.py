"""Schedule signals: the clock flags every group of a network reads.

A run is a sequence of equal slots of ``slot_steps`` steps; a ``TimedArray`` ``slot_kind(t)``
(sampled at the slot duration) says what each slot is, and the step inside the slot is
``timestep(t, dt) % slot_steps``. From these, every group derives the same flags as Brian2
subexpressions, so equations can say *when* something happens without any Python control flow:

=================  =========================================================================
flag               true (1) when
=================  =========================================================================
in_forward         forward window of a TRAIN or EVAL slot (input on, spikes counted)
in_sleep           a SLEEP slot (noise drive, Hebbian learning of feedback weights)
spiking_allowed    in_forward or in_sleep (somata are silent in the feedback window)
feedback_onset     first step of the feedback window of a TRAIN slot
error_step         feedback window of a TRAIN slot except its last step (error events)
learn_step         last step of a TRAIN slot (weight update)
batch_start        first step of every ``batch_size``-th slot (mini-batch updates are applied)
training_slot      a TRAIN slot
in_feedback        the whole feedback window of a TRAIN slot (EMSTDP's phase 2, in which the
                   input keeps streaming and the error units drive the somata)
stimulus_on        in_forward or in_feedback: the input of a rule that streams the sample
                   through both windows (EMSTDP) is on
=================  =========================================================================

``in_feedback`` and ``stimulus_on`` were added for EMSTDP, which now derives its own windows
from these flags (their bounds depend on its profile:
:class:`plausigrad.models.integrate_and_fire.SlotTiming`); they stay for plug-in rules
(docs/writing-a-rule.md). Rules that do not read a flag are unaffected, since unused
subexpressions generate no code.

The vocabulary lives in ``models`` because equations need it; the timelines that fill
``slot_kind`` are built by :mod:`plausigrad.protocols.schedule`.
"""

#: Slot kinds, the values of ``slot_kind(t)``.
TRAIN, SLEEP, EVAL, IDLE = 0, 1, 2, 3


def schedule_equations():
    """Subexpressions for the schedule flags, to be appended to every group's model.

    Needs ``slot_kind`` (TimedArray), ``forward_steps``, ``slot_steps`` and ``batch_size`` in the
    namespace.
    """
    return f'''
step_in_slot = timestep(t, dt) % slot_steps : integer
slot_type = int(slot_kind(t) + 0.5) : integer
training_slot = int(slot_type == {TRAIN}) : integer
in_sleep = int(slot_type == {SLEEP}) : integer
in_forward = int(step_in_slot < forward_steps and (slot_type == {TRAIN} or slot_type == {EVAL})) : integer
spiking_allowed = int(in_forward > 0 or in_sleep > 0) : integer
feedback_onset = int(step_in_slot == forward_steps) * training_slot : integer
error_step = int(step_in_slot >= forward_steps and step_in_slot < slot_steps - 1) * training_slot : integer
learn_step = int(step_in_slot == slot_steps - 1) * training_slot : integer
in_feedback = int(step_in_slot >= forward_steps) * training_slot : integer
stimulus_on = int(in_forward > 0 or in_feedback > 0) : integer
batch_start = int(step_in_slot == 0 and (timestep(t, dt) // slot_steps) % batch_size == 0) : integer
'''


def slot_kind_condition(kind):
    """Expression true in slots of ``kind``, usable in a slot-clocked ``run_regularly``."""
    return f"int(int(slot_kind(t) + 0.5) == {kind})"
