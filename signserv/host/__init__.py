"""Host administration: settings, the service home (keystore, master key, backups, rotation), the
audit log, and importing existing TKE key files."""
