"""`ses-harness`: `main` parses the command line; each subcommand is one module beside it,
and `arguments` holds the argument types they share.

The top layer: may import every package below it.
"""
