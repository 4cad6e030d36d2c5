"""The pytest11 entry point (fixtures arrive with the in-process and server modes)."""
