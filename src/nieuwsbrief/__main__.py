"""Run nieuwsbrief as `python -m nieuwsbrief`."""

from .cli import main

main()
