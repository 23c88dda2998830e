"""``python -m frontoffice`` is the same as the ``frontoffice`` command."""

from frontoffice.cli import main

if __name__ == "__main__":
    main()
