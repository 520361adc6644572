"""`python -m embedops` runs the CLI."""

from embedops.cli.app import main

main()
