"""``python -m localrnn``: the command line (same as the ``localrnn`` script)."""

from localrnn.cli import main

if __name__ == "__main__":
    main()
