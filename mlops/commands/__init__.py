"""CLI command groups, one module each, registered in ``mlops.cli``."""
