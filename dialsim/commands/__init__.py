"""Subcommands of the dialsim command line, one module each (``add_subcommand(sub)``)."""
