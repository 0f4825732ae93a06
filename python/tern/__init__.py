"""tern: an event-driven server with a Rust core.

The package is a thin wrapper: ``tern._native`` is the Rust extension, and the ``tern`` console
script (or ``python -m tern``) runs the same command line as the pure-Rust binary.
"""

from tern._native import __version__

__all__ = ["__version__"]
