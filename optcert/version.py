"""optcert's version: the one place it is written (setup.cfg reads it, `optcert --version` prints it)."""
__version__ = "0.1.0"
