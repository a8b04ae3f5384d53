"""`python -m complaintflow` is the `complaintflow` command."""

from .cli import main

main()
