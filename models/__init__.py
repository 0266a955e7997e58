"""plausigrad.models."""
