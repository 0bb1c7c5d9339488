"""`python -m signserv` runs the `signserv` CLI."""

from signserv.cli import main

main()
