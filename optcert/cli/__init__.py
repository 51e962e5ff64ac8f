"""The `optcert` command line: `main` parses and dispatches; one module per subcommand."""
from optcert.cli.main import main

__all__ = ["main"]
