"""Run nieuwsbrief as `python -m nieuwsbrief`."""

from nieuwsbrief.cli import main

main()
