"""Alias of cleanroom_util.sql."""

from cleanroom_util.sql import *  # noqa: F401,F403
from cleanroom_util.sql import (  # noqa: F401
    read_sql_data_from_dir,
    read_tabular_data,
    write_sql_data_to_dir,
    write_tabular_data,
)
