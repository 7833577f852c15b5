"""`python -m kuryr_cleanup` runs the CLI (what `kuryr-migrate` runs)."""

from kuryr_cleanup.cli import main

main()
