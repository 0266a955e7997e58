"""The angle between two arrays, the one definition every part of the package uses.

∠(A, B) = (180/π) arccos(⟨vec A, vec B⟩ / (‖A‖ ‖B‖)), the cosine clipped to [−1, 1] (rounding
can push it just past ±1). An angle with a zero vector, or with a vector holding a non-finite
value, is *undefined*: :func:`angle_degrees` returns ``None`` (``null`` in JSON, "—" in tables,
see :func:`format_angle`), never NaN, so metrics and alignment files stay valid JSON.

It lives in :mod:`plausigrad.protocols` because training logs the feedback angle; the analysis
modules import it from here (the package's dependency direction is models ← rules ← protocols ←
analysis).
"""

import numpy as np


def angle_degrees(a, b):
    """Angle in degrees between two arrays seen as flat vectors; ``None`` where undefined.

    ``a`` and ``b`` may have any shapes with the same number of elements (matrices are
    flattened). Returns ``None`` if either has zero norm or the product of the norms is not
    finite, else a float in [0, 180].
    """
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0 or not np.isfinite(norms):
        return None
    return float(np.degrees(np.arccos(np.clip(a @ b / norms, -1.0, 1.0))))


def format_angle(value, digits=1):
    """``value`` (degrees, or ``None``) as table text: ``"71.2°"``, or ``"—"`` where undefined."""
    return "—" if value is None else f"{value:.{digits}f}°"
