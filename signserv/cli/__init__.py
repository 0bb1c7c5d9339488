from signserv.cli.main import main

__all__ = ["main"]
