"""Plausibility audit: is every weight update local, event-based and online? Read off the model.

The audit does not trust a hand-written description of a rule. It builds the rule's network (on
the runtime device, without running it) and reads the Brian2 objects themselves: the on-event
pathways of every ``Synapses`` object (``on_pre`` / ``on_post`` / custom events) and its
``run_regularly`` code. Every statement that changes a synaptic variable (a weight, an
eligibility trace, a gradient accumulator) is a *plasticity statement*; for each, every name it
reads is traced to where its value lives:

==============  ===============================================================================
source          meaning
==============  ===============================================================================
synapse         a variable of this synapse (its weight, trace, accumulator)
pre / post      a variable of the presynaptic / postsynaptic neuron, with its compartment
                (``[basal]``, ``[soma]``, ``[apical]``, ``[axon]`` tags of the model equations)
phase           a schedule flag (a subexpression of the clock and the slot timeline only)
constant        a constant, or a shared parameter that no code changes during a run (a
                learning rate set between runs)
noise           a local random draw (``rand()``)
non-local       anything else: a summed variable (an aggregate over other synapses), a linked
                variable (another group's state), a shared variable that code changes during the
                run (a global quantity), or a data array read directly (not through a neuron)
==============  ===============================================================================

Subexpressions are followed to their leaves (ψ̄ of the postsynaptic neuron is ``psisum_post``,
a soma variable). A rule is **local** if no plasticity statement reads a non-local value;
**event-based** if every plasticity statement runs on a spike or another neuron event (a
``run_regularly`` statement is clock-driven and is listed); **online** if nothing in the network
is opaque Python (a ``NetworkOperation`` could read or replay anything) and no plasticity
statement reads the data set directly.
"""

import json
from dataclasses import asdict, dataclass, field

from brian2 import NetworkOperation, NeuronGroup, Synapses
from brian2.core.functions import Function
from brian2.core.variables import Constant, LinkedVariable, Subexpression
from brian2.groups.group import CodeRunner
from brian2.synapses.synapses import SynapticPathway
from brian2.utils.logger import BrianLogger
from brian2.utils.stringtools import get_identifiers

from plausigrad.models.compartments import compartments

LOCAL_SOURCES = ("synapse", "pre", "post", "phase", "constant", "noise")
CLOCK_NAMES = {"t", "dt", "t_in_timesteps"}
RANDOM_FUNCTIONS = {"rand", "randn", "poisson"}
#: TimedArrays of the slot timeline (phase information, not data).
SCHEDULE_ARRAYS = {"slot_kind", "slot_row"}


@dataclass
class Read:
    """One name a plasticity statement reads, and where its value lives."""

    name: str
    source: str
    detail: str = ""


@dataclass
class Statement:
    """One plasticity statement of a synapse group."""

    synapses: str
    trigger: str
    event_based: bool
    code: str
    target: str
    reads: list = field(default_factory=list)

    @property
    def local(self):
        return all(r.source in LOCAL_SOURCES for r in self.reads)

    def breaks(self):
        """The principles this statement breaks, each with the reason."""
        problems = [f"non-local: {r.name} ({r.detail})" for r in self.reads
                    if r.source not in LOCAL_SOURCES]
        if not self.event_based:
            problems.append(f"not event-based: {self.trigger}")
        return problems


@dataclass
class AuditReport:
    """All plasticity statements of a network and the verdict per principle."""

    rule: str
    statements: list
    opaque: list = field(default_factory=list)  #: NetworkOperations found in the network

    @property
    def local(self):
        return all(s.local for s in self.statements)

    @property
    def event_based(self):
        return all(s.event_based for s in self.statements)

    @property
    def online(self):
        return not self.opaque and not any(r.source == "non-local" and r.detail.startswith("data")
                                           for s in self.statements for r in s.reads)

    def verdict(self):
        """One line per principle, naming each statement that breaks it."""
        lines = []
        for principle, ok in (("local", self.local), ("event-based", self.event_based),
                              ("online", self.online)):
            if ok:
                lines.append(f"{principle}: yes")
                continue
            lines.append(f"{principle}: NO")
            for s in self.statements:
                for problem in s.breaks():
                    if problem.startswith("non-local") == (principle == "local") and \
                            principle != "online":
                        lines.append(f"  {s.synapses} [{s.trigger}] `{s.code}` -> {problem}")
            if principle == "online":
                lines += [f"  opaque Python code: NetworkOperation {name}" for name in self.opaque]
        return lines

    def to_json(self):
        return {"rule": self.rule, "local": self.local, "event_based": self.event_based,
                "online": self.online, "opaque": self.opaque,
                "statements": [{**asdict(s), "local": s.local, "breaks": s.breaks()}
                               for s in self.statements]}


class _Model:
    """What the audit needs to know about the whole network."""

    def __init__(self, objects, namespace):
        self.objects = list(objects)
        self.namespace = dict(namespace)
        self.summed = {}  # (group name, variable) -> synapses name
        self.written = set()  # (owner name, variable) written by some statement
        for obj in self.objects:
            if isinstance(obj, Synapses):
                for updater in obj.summed_updaters.values():
                    self.summed[(updater.target.name, updater.target_var.name)] = obj.name
            for owner, code in _code_blocks(obj):
                for target, _, _ in _statements(code):
                    self.written.add(_owner_of(obj, owner, target))

    def classify(self, group, name, seen=()):
        """[(source, detail)] for the value ``name`` read in the context of ``group``."""
        if name in CLOCK_NAMES:
            return [("phase", "clock")]
        if name in ("i", "j", "N", "N_incoming", "N_outgoing", "N_pre", "N_post"):
            return [("constant", "index or size")]
        variables = group.variables
        if name in variables:
            var = variables[name]
            if isinstance(var, Constant):
                return [("constant", "")]
            side, base, owner = self._side(group, name, var)
            return self._variable(owner, base, owner.variables[base], side, seen)
        value = self.namespace.get(name)
        if isinstance(value, Function) or name in RANDOM_FUNCTIONS:
            if name in RANDOM_FUNCTIONS:
                return [("noise", "local random draw")]
            if name in SCHEDULE_ARRAYS:
                return [("phase", "slot timeline")]
            if hasattr(value, "values"):  # a TimedArray holding data
                return [("non-local", f"data array {name} read directly")]
            return []
        if value is not None:
            return [("constant", "")]
        return []  # a pure function: int, clip, exp, abs, ...

    @staticmethod
    def _side(group, name, var):
        """(side, name in its owner, owner) of a name read by ``group``'s code."""
        if isinstance(group, Synapses):
            if name.endswith("_pre") and name[:-4] in group.source.variables:
                return "pre", name[:-4], group.source
            if name.endswith("_post") and name[:-5] in group.target.variables:
                return "post", name[:-5], group.target
            if getattr(var, "owner", group) is not group and name in group.target.variables:
                return "post", name, group.target  # Brian2 reads an unsuffixed name from post
            return "synapse", name, group
        return "neuron", name, group

    def _variable(self, owner, base, var, side, seen):
        key = (owner.name, base)
        if key in seen:
            return []
        if isinstance(var, LinkedVariable):
            return [("non-local", f"linked to {var.variable.owner.name}")]
        if key in self.summed:
            return [("non-local", f"sum over the synapses of {self.summed[key]} onto "
                                  f"{owner.name} (summed variable {base})")]
        if isinstance(var, Subexpression):
            results = []
            for identifier in sorted(get_identifiers(var.expr)):
                results += self.classify(owner, identifier, seen + (key,))
            if all(source in ("phase", "constant") for source, _ in results):
                return [("phase", f"schedule flag {base}")] if any(
                    s == "phase" for s, _ in results) else [("constant", base)]
            # what carries state decides; constants and flags inside the expression do not
            return sorted({(s if s in ("noise", "non-local") else side, d)
                           for s, d in results if s not in ("phase", "constant")})
        if getattr(var, "scalar", False):
            if key in self.written or any(isinstance(o, NetworkOperation) for o in self.objects):
                return [("non-local", f"global quantity: shared variable {base} of {owner.name} "
                                      "that changes during the run")]
            return [("constant", f"shared parameter {base}")]
        compartment = compartments(owner).get(base, "")
        return [(side, compartment)]


def synaptic_pathways(synapses):
    """The ``SynapticPathway`` objects of a ``Synapses`` object (its on-event code blocks).

    The one place that reads a Brian2 private attribute (``Synapses._pathways``; Brian2 has no
    public accessor); ``tests/test_audit.py`` fails if Brian2 renames or changes it.
    """
    return tuple(synapses._pathways)


def _code_blocks(obj):
    """(owner for suffix-free names, code) of every statement block of a Brian2 object."""
    blocks = []
    if isinstance(obj, Synapses):
        blocks += [(obj, pathway.code) for pathway in synaptic_pathways(obj)]
    if isinstance(obj, NeuronGroup):
        blocks += [(obj, code) for code in getattr(obj, "event_codes", {}).values()]
    for child in getattr(obj, "contained_objects", []):
        if isinstance(child, CodeRunner) and not isinstance(child, SynapticPathway) and \
                getattr(child, "abstract_code", None):
            blocks.append((obj, child.abstract_code))
    return blocks


def _statements(code):
    """(target, names read, statement) per line of ``code`` (an augmented op reads its target)."""
    out = []
    for line in code.replace(";", "\n").splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        for op in ("+=", "-=", "*=", "/=", "="):
            if op in line:
                target, expression = (part.strip() for part in line.split(op, 1))
                names = get_identifiers(expression) | ({target} if op != "=" else set())
                out.append((target, names, line))
                break
    return out


def _owner_of(obj, owner, name):
    if isinstance(obj, Synapses):
        if name.endswith("_post"):
            return obj.target.name, name[:-5]
        if name.endswith("_pre"):
            return obj.source.name, name[:-4]
    return owner.name, name


def _trigger(synapses, block, slot_steps):
    if isinstance(block, SynapticPathway):
        side = "presynaptic" if block.prepost == "pre" else "postsynaptic"
        return f"on {side} event '{block.event}'", True
    steps = max(1, int(round(float(block.clock.dt / synapses.clock.dt))))
    period = "step" if steps == 1 else "slot" if steps == slot_steps else f"{steps} steps"
    return f"run_regularly every {period} (clock-driven)", False


def audit_objects(objects, namespace, rule="custom", slot_steps=None):
    """Audit a list of Brian2 objects (a network); returns an :class:`AuditReport`.

    ``slot_steps`` (if known) lets a clock of one slot's length be reported as "every slot".
    """
    model = _Model(objects, namespace)
    statements = []
    for obj in model.objects:
        if not isinstance(obj, Synapses):
            continue
        blocks = list(synaptic_pathways(obj)) + [c for c in obj.contained_objects
                                        if isinstance(c, CodeRunner)
                                        and not isinstance(c, SynapticPathway)]
        for block in blocks:
            code = block.code if isinstance(block, SynapticPathway) else block.abstract_code
            trigger, event_based = _trigger(obj, block, slot_steps)
            temporaries = {}  # name -> reads of a block-local temporary (``g = grad / n``)
            for target, names, line in _statements(code):
                reads = []
                for identifier in sorted(names):
                    if identifier in temporaries:
                        reads += [Read(f"{identifier}: {r.name}", r.source, r.detail)
                                  for r in temporaries[identifier]]
                        continue
                    for source, detail in model.classify(obj, identifier):
                        reads.append(Read(identifier, source, detail))
                if target.endswith(("_pre", "_post")):
                    continue  # transmission into a neuron, not plasticity
                if target not in obj.variables:
                    temporaries[target] = reads
                    continue
                statements.append(Statement(obj.name, trigger, event_based, line, target,
                                            reads))
    opaque = [o.name for o in model.objects if isinstance(o, NetworkOperation)]
    return AuditReport(rule, statements, opaque)


def audit_rule(rule, layer_sizes=(8, 6, 4), sleep=True, event_bins=None):
    """Build ``rule``'s network (small sizes suffice: the code does not depend on them) and audit
    it. ``event_bins``: build it with event input instead of images (bit-packed binary frames of
    that many bins, :class:`~plausigrad.models.encoders.PackedEvents`, as ``--dataset nmnist``
    trains)."""
    import numpy as np

    from plausigrad.models.encoders import PACKED_BITS, PackedEvents
    from plausigrad.protocols.engine import Simulator
    from plausigrad.protocols.schedule import SleepSchedule, Windows
    schedule = SleepSchedule(2, 1) if sleep and rule.uses_sleep else None
    n_in = layer_sizes[0]
    if event_bins is None:
        encoding, table = None, np.zeros((3, n_in))
    else:
        encoding = PackedEvents(n_in, event_bins)
        table = np.zeros((3, -(-event_bins * n_in // PACKED_BITS)))
    simulator = Simulator(rule, layer_sizes, Windows(4, 4), schedule, table, np.zeros(3), 2, 1,
                          device="runtime", input_encoding=encoding)
    BrianLogger.suppress_name("unused_brian_object")  # the inspected network is never run
    network, namespace = simulator.inspect()
    return audit_objects(network.objects, namespace, rule=rule.name, slot_steps=8)


def run_audit(rule, *, output_format="text", out=None, log=print):
    """``plausigrad audit``: print the report of ``rule``; write it to ``out`` if given."""
    report = audit_rule(rule)
    text = {"text": lambda: format_report(report), "json": lambda: report_json(report),
            "markdown": lambda: format_report(report, markdown=True)}[output_format]()
    log(text)
    if out:
        with open(out, "w") as handle:
            handle.write(text + "\n")
    return report


def _describe(read):
    where = f"{read.source}, {read.detail}" if read.detail else read.source
    return f"{read.name} ({where})"


def format_report(report, markdown=False):
    """Every plasticity statement with what it reads, then the verdict (terminal or Markdown)."""
    verdict = report.verdict()
    if markdown:
        lines = ["| synapses | trigger | statement | reads | local |", "|---|---|---|---|---|"]
        for s in report.statements:
            reads = "; ".join(_describe(r) for r in s.reads) or "—"
            lines.append(f"| {s.synapses} | {s.trigger} | `{s.code}` | {reads} | "
                         f"{'yes' if s.local else '**NO**'} |")
        lines.append("")
        lines += [f"  - {v.strip()}" if v.startswith("  ") else f"- **{report.rule}** {v}"
                  for v in verdict]
        return "\n".join(lines)
    lines = []
    for s in report.statements:
        lines.append(f"{s.synapses:<6} {s.trigger:<44} {'local' if s.local else 'NON-LOCAL'}")
        lines.append(f"       {s.code}")
        if s.reads:
            lines.append("       reads: " + " · ".join(_describe(r) for r in s.reads))
    lines.append("")
    lines += [v if v.startswith("  ") else f"{report.rule} {v}" for v in verdict]
    return "\n".join(lines)


def report_json(report):
    return json.dumps(report.to_json(), indent=1)
