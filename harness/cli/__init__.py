"""`ses-harness`: `main` parses the command line; each subcommand is one module beside it.

The top layer: may import every package below it.
"""
