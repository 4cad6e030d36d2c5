"""mockserver's pytest plugin: fixtures, markers and options carrying the `mockserver` prefix."""
