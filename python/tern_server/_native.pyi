"""Type stubs for the Rust extension module ``tern_server._native``."""

__version__: str

def main(argv: list[str]) -> int:
    """Run the tern command line with ``argv`` (program name first); return the exit status."""
