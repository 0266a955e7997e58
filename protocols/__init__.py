"""plausigrad.protocols."""
