"""Helpers for cleanroom computations, importable by every Python script.

``cleanroom_util.sql.read_sql_data_from_dir(path)`` reads a table or SQL
result mounted under /input (``dataset.csv`` without header, plus
``schema.json``) into a pandas DataFrame with named, typed columns;
``write_sql_data_to_dir(df, path)`` writes the same layout, so a Python
computation can produce a table that a SQL computation reads.
"""

from . import sql
from .sql import (
    read_sql_data_from_dir,
    read_tabular_data,
    write_sql_data_to_dir,
    write_tabular_data,
)

__all__ = [
    "sql",
    "read_sql_data_from_dir",
    "read_tabular_data",
    "write_sql_data_to_dir",
    "write_tabular_data",
]
