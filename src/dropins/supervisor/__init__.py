"""Running in production: worker processes, systemd notify, health and metrics, development reload."""
