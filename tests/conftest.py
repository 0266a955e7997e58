"""Test-suite configuration: the extra CUDA compiles run only on request.

Each CUDA compile takes 10-20 minutes on a 2-core machine. ``make test`` (and CI) compiles one
network for CUDA (BioGrad, tests/test_standalone.py); the EMSTDP and SSNN-BP compiles are marked
``cuda_extra`` and run with ``PLAUSIGRAD_ALL_CUDA=1`` (``make test-cuda``).
"""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PLAUSIGRAD_ALL_CUDA") == "1":
        return
    skip = pytest.mark.skip(reason="extra CUDA compile: run with PLAUSIGRAD_ALL_CUDA=1 "
                                   "(make test-cuda)")
    for item in items:
        if "cuda_extra" in item.keywords:
            item.add_marker(skip)
