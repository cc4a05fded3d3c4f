"""`python -m irc.cli` runs the command line."""

from irc.cli import main

if __name__ == "__main__":
    main()
