"""The SQL migrations, applied in name order by memcube/migrate.py.

This folder is installed as the package `memcube.migrations` (pyproject.toml maps it), so that the files are
package data that an installed wheel carries and importlib.resources reads.
"""
