"""`python -m leadsync.cli`: the command line, e.g. with another checkout on PYTHONPATH."""

from leadsync.cli import main

main()
