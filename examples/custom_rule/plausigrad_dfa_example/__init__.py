"""An example plausigrad rule installed from outside the package (see README.md)."""
