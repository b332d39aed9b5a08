"""Notes from customer visits: an example third-party Rapport plugin."""
