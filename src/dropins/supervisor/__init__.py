"""Running in production: worker processes, systemd notify, health, metrics, dev reload."""
