"""``python -m tern_server`` and the ``tern`` console script: hand the arguments to the Rust command line."""

import sys

from tern_server._native import main as _run


def main() -> None:
    # Usage and error messages name the command "tern", whichever way it was started.
    sys.exit(_run(["tern", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
