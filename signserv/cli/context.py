"""What every `signserv` command receives: the settings chosen by --home / --config."""

from __future__ import annotations

import click

from signserv.host.config import Settings

pass_settings = click.make_pass_decorator(Settings)
