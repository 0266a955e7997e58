"""What a run records, as objects: each recorder attaches its monitors and reads them back.

:class:`~plausigrad.protocols.engine.Simulator` always records the output spike counts
(:class:`OutputCounts`, what accuracy and loss are computed from); everything else is asked for
by passing recorders (``Simulator(..., recorders=[...])``). A recorder is part of the compiled
network (its monitors are Brian2 objects), so it is chosen when the simulator is made. After a
run, each recorder contributes fields of the :class:`~plausigrad.protocols.engine.EpochRecord`:

======================  ====================================  ===================================
recorder                records                               EpochRecord field
======================  ====================================  ===================================
:class:`OutputCounts`   forward-window counts of the output   ``output_counts`` (n_slots, n_out)
                        layer, once per slot
:class:`SleepCycles`    each (feedback, forward) pair once    ``cycle_state``: per cycle
                        per sleep cycle                       {name: array}
:class:`Snapshots`      the whole learned state every N       ``snapshots``: [(slot, state)]
                        training slots (alignment tracking)
:class:`Probes`         chosen variables of a few neurons or  ``probes``: {object: {"t", var}};
                        synapses every step, and the spikes   ``spikes``: {group: (i, step)}
                        of every neuron group (figures)
======================  ====================================  ===================================

Monitors that record per slot sample at the slot start (``when="start"``, before anything of the
slot runs), so record s holds the end of slot s − 1; probes sample just before the thresholds,
so a soma is seen before its reset.
"""

import numpy as np
from brian2 import NeuronGroup, SpikeMonitor, StateMonitor

from plausigrad.models.errors import require_positive
from plausigrad.models.clock import STEP
from plausigrad.models.schedule_signals import EVAL


class Recorder:
    """Base class: ``attach`` returns the Brian2 monitors, ``collect`` the record fields."""

    def attach(self, sim, built):
        """Create the monitors for the built network ``built`` of simulator ``sim``."""
        raise NotImplementedError

    def collect(self, sim, timeline):
        """{EpochRecord field: value} read from the monitors after a run over ``timeline``."""
        raise NotImplementedError


def _state_series(sim, monitors):
    """{state name: (n_values, n_records)} of StateMonitors recording learned-state variables."""
    state = sim._handles["built"].state
    return {name: np.asarray(getattr(mon, state[name].variable)) for name, mon in monitors.items()}


class OutputCounts(Recorder):
    """The output layer's ``count`` at the end of every slot (always recorded)."""

    def attach(self, sim, built):
        self.monitor = StateMonitor(built.output_group, "count", record=True,
                                    dt=sim.slot_duration, when="start", order=-10,
                                    name="output_counts")
        return [self.monitor]

    def collect(self, sim, timeline):
        counts = np.asarray(self.monitor.count).T  # record s = end of slot s - 1
        return {"output_counts": counts[1:timeline.n_slots]}


class SleepCycles(Recorder):
    """Every (feedback, forward) pair of the network once per sleep cycle (sleep block plus the
    samples before it); nothing when the run has no sleep or the rule no such pairs."""

    def attach(self, sim, built):
        self.monitors = {}
        if sim.sleep is None or not built.feedback_pairs:
            return []
        cycle = (sim.sleep.every_samples + sim.sleep.slots) * sim.slot_duration
        for names in built.feedback_pairs:
            for name in names:
                var = built.state[name]
                self.monitors[name] = StateMonitor(var.owner, var.variable, record=True, dt=cycle,
                                                   when="start", order=-10,
                                                   name=f"{name}_per_cycle")
        return list(self.monitors.values())

    def collect(self, sim, timeline):
        if not self.monitors:
            return {"cycle_state": []}
        series = _state_series(sim, self.monitors)
        n_records = min(s.shape[1] for s in series.values())
        return {"cycle_state": [{name: sim._unflat(name, s[:, r]) for name, s in series.items()}
                                for r in range(n_records)]}


class Snapshots(Recorder):
    """The whole learned state at the start of every ``every``-th slot of the training part
    (slot 0 included), e.g. for alignment tracking."""

    def __init__(self, every):
        require_positive("snapshot interval (slots)", every)
        self.every = every

    def attach(self, sim, built):
        self.monitors = {name: StateMonitor(var.owner, var.variable, record=True, when="start",
                                            order=-10, dt=self.every * sim.slot_duration,
                                            name=f"{name}_snapshots")
                         for name, var in built.state.items()}
        return list(self.monitors.values())

    def collect(self, sim, timeline):
        series = _state_series(sim, self.monitors)
        first_eval = int(np.flatnonzero(timeline.kinds >= EVAL)[0])
        snapshots = []
        for r in range(min(s.shape[1] for s in series.values())):
            slot = r * self.every
            if slot < first_eval:
                snapshots.append((slot, {name: sim._unflat(name, s[:, r])
                                         for name, s in series.items()}))
        return {"snapshots": snapshots}


class Probes(Recorder):
    """``{object name: (variables, indices)}``: these variables of a few neurons or synapses at
    every step, plus a ``SpikeMonitor`` on every neuron group. Only the given indices are
    stored, so recording costs little beyond the run itself."""

    def __init__(self, spec):
        self.spec = dict(spec)

    def attach(self, sim, built):
        by_name = {obj.name: obj for obj in built.objects}
        self.monitors = {name: StateMonitor(by_name[name], list(variables), record=list(indices),
                                            when="thresholds", order=-1, name=f"{name}_probe")
                         for name, (variables, indices) in self.spec.items()}
        self.spike_monitors = {obj.name: SpikeMonitor(obj, name=f"{obj.name}_spikes")
                               for obj in built.objects if isinstance(obj, NeuronGroup)}
        return list(self.monitors.values()) + list(self.spike_monitors.values())

    def collect(self, sim, timeline):
        probes = {}
        for name, mon in self.monitors.items():
            variables, indices = self.spec[name]
            probes[name] = {"t": np.round(np.asarray(mon.t / STEP)).astype(int),
                            "indices": list(indices)}
            for variable in variables:
                probes[name][variable] = np.asarray(getattr(mon, variable))
        spikes = {name: (np.asarray(mon.i), np.round(np.asarray(mon.t / STEP)).astype(int))
                  for name, mon in self.spike_monitors.items()}
        return {"probes": probes, "spikes": spikes}
