"""Forms, one module per view module of the same name."""
