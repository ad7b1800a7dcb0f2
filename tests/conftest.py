"""Shared test configuration: pytester runs our plugin the way a user's project does."""

# In-process pytester runs drop the modules a run imported when it ends. Loading the harness
# here, before any run, keeps one copy of smtplib and of our classes for all of them.
import harness.arrange  # noqa: F401

pytest_plugins = ["pytester"]
