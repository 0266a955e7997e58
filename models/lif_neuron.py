"""Single-compartment LIF layer of BioGrad's *published* profile (the lab code's neuron).

(Module docstring completed with the Brian2 model below.)
"""

from dataclasses import dataclass

from plausigrad.models.errors import ConfigurationError, require_positive
from plausigrad.models.parameters import param


@dataclass(frozen=True)
class LIFNeuronParameters:
    """Constants of the lab code's discrete LIF neuron (all dimensionless, per step).

    ``decay``, ``threshold``, ``window``, ``amplitude`` are the four entries of the lab's
    ``neuron_param`` tuple ``(vdecay, vth, grad_win, grad_amp)``
    [CODE: biograd/network_cells.py, OnlineHiddenCell.__init__]; the lab scripts use
    (0.3, 0.3, 0.3, 1.0) for every layer [CODE: biograd/run_biograd_training.py, snn_param].
    """

    decay: float = param(0.3, "vdecay: per-step decay of the membrane potential")
    threshold: float = param(0.3, "vth: firing threshold (spike when v > vth)")
    window: float = param(0.3, "grad_win: half-width of the rectangular pseudo-derivative")
    amplitude: float = param(1.0, "grad_amp: height of the rectangular pseudo-derivative")

    def __post_init__(self):
        value = self.decay
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigurationError(f"LIF decay must lie in [0, 1), got {value!r}")
        for name in ("threshold", "window", "amplitude"):
            require_positive(f"LIF {name}", getattr(self, name))

    def namespace(self):
        """Names of the constants in the Brian2 equations."""
        return {"lif_decay": self.decay, "lif_threshold": self.threshold,
                "lif_window": self.window, "lif_amplitude": self.amplitude}
