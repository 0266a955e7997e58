"""Test-suite configuration: the CUDA compiles run only on request, and the heaviest test files
start first.

Each CUDA compile (nvcc) takes 10-20 minutes on a 2-core machine (the BioGrad one took 20.5 min
in a full ``make test`` here), so every one of them is marked ``cuda_extra`` and runs with
``PLAUSIGRAD_ALL_CUDA=1`` (``make test-cuda``); ``make test`` keeps the fast CUDA checks (the
CUDA preferences, the generated ``main.cu`` reading its per-epoch seed).

``make test`` spreads whole test files over two workers (pytest-xdist ``--dist loadfile``),
which take files in collection order. Collected alphabetically, a long file that comes last
ran alone at the end while the other worker idled (19 minutes in a full run here). The files
in :data:`HEAVY_FIRST` (the longest first, from ``--durations`` of that run) are therefore
collected first and every other file after them, in its usual order; the tests inside a file
keep their order.

Tests that create Brian2 objects themselves (not through the engine, which activates its own
device) use the :func:`runtime_device` fixture: a worker process keeps whatever device the
previous test file activated, and a Brian2 group made on a C++ standalone device that has
already run reads its values from that earlier build's result files (a fresh-clone run failed
so when ``test_golden``'s C++ case ran before ``test_builder`` on the same worker).
"""

import os

import pytest

#: test files by their measured cost in a full ``make test`` (longest first); the rest follow
HEAVY_FIRST = ("test_figures.py", "test_biograd_published.py", "test_custom_rule.py",
               "test_alignment.py", "test_golden.py", "test_emstdp.py", "test_standalone.py",
               "test_faults.py", "test_emstdp_published.py", "test_ssnnbp.py")


@pytest.fixture
def runtime_device():
    """Activate Brian2's runtime device (every device re-initialised) before the test."""
    from plausigrad.protocols.devices import activate_device
    activate_device("runtime")


def _file_rank(item):
    name = os.path.basename(str(item.fspath))
    return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_file_rank)  # stable: the order within a file and among the rest is kept
    if os.environ.get("PLAUSIGRAD_ALL_CUDA") == "1":
        return
    skip = pytest.mark.skip(reason="CUDA compile (10-20 min here): run with "
                                   "PLAUSIGRAD_ALL_CUDA=1 (make test-cuda)")
    for item in items:
        if "cuda_extra" in item.keywords:
            item.add_marker(skip)
