"""tern: an event-driven server with a Rust core (distributed as ``tern-server``).

The package is a thin wrapper: ``tern_server._native`` is the Rust extension, and the ``tern``
console script (or ``python -m tern_server``) runs the same command line as the pure-Rust binary.
The import name is ``tern_server``, not ``tern``, so that it never collides with the unrelated
``tern`` distribution on PyPI (a container compliance tool with a ``tern`` package of its own).
"""

from tern_server._native import __version__

__all__ = ["__version__"]
