"""``signserv-tke``: the TKE CLI plug-in's crypto-unit commands, registered explicitly in ``main``."""
