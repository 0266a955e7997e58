"""The simulation step: every model in plausigrad is a discrete-time map of 1 ms steps.

``STEP`` is ``defaultclock.dt`` of every network the engine builds, the dt of the time constants
τ = −dt / ln d (:mod:`plausigrad.models.compartment_neuron`) and the unit the recorders read
spike times in. It lives apart from :mod:`plausigrad.models.schedule_signals`, which stays free
of Brian2 so that the analysis and the CLI can read the slot kinds without importing it.
"""

from brian2 import ms

STEP = 1 * ms
