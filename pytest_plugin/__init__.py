"""mockserver's pytest plugin: fixtures, markers and options carrying the `mockserver` prefix.

This folder installs as `mockserver.pytest_plugin` (setuptools package-dir), so the modules
import each other relatively and load under either name.
"""
