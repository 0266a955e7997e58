"""plausigrad.rules."""
