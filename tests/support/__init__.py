"""Test support shared by the test packages: real services started on loopback (see services.py)."""
