"""Alias of cleanroom_util, so scripts written for the commercial product
run unchanged: ``import decentriq_util`` and
``decentriq_util.sql.read_sql_data_from_dir(...)`` work as there."""

from cleanroom_util import *  # noqa: F401,F403
from cleanroom_util import __all__, sql  # noqa: F401
