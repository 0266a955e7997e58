"""plausigrad.analysis."""
