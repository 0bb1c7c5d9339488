"""The TKE client: crypto-unit sessions and transports, and the administration workflows (admins,
thresholds, master keys, auto-init, apply) that sign through a signing service."""
