"""``python -m jsflow`` runs the CLI (same as the ``jsflow`` console script)."""

from jsflow.cli import main

if __name__ == "__main__":
    main()
