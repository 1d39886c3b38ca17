"""Read and write tables in the layout cleanroom mounts under /input."""

import json
import os

import pandas as pd

# Column format types and the pandas dtypes they read as. Nullable integer
# ("Int64") keeps missing values without turning the column into floats.
_READ_DTYPES = {
    "STRING": "string",
    "INTEGER": "Int64",
    "FLOAT": "float64",
    "EMAIL": "string",
    "DATE_ISO8601": "string",  # parsed to datetime64 below
    "PHONE_NUMBER_E164": "string",
    "HASH_SHA256_HEX": "string",
}


def _schema(path):
    with open(os.path.join(path, "schema.json"), encoding="utf-8") as f:
        return json.load(f)["columns"]


def read_sql_data_from_dir(path):
    """Return the table in ``path`` (dataset.csv + schema.json) as a DataFrame.

    Columns are named and typed from schema.json: INTEGER as nullable Int64,
    FLOAT as float64, DATE_ISO8601 as datetime64, the others as strings.
    An empty table gives an empty DataFrame with the same columns.
    """
    columns = _schema(path)
    names = [c["name"] for c in columns]
    dtypes = {c["name"]: _READ_DTYPES[c["format_type"]] for c in columns}
    data = os.path.join(path, "dataset.csv")
    if os.path.getsize(data) == 0:
        df = pd.DataFrame({n: pd.Series(dtype=dtypes[n]) for n in names})
    else:
        df = pd.read_csv(data, header=None, names=names, dtype=dtypes, keep_default_na=False, na_values=[""])
    for c in columns:
        if c["format_type"] == "DATE_ISO8601":
            df[c["name"]] = pd.to_datetime(df[c["name"]], format="%Y-%m-%d")
    return df


def _format_type(series):
    if pd.api.types.is_bool_dtype(series):
        return "STRING"
    if pd.api.types.is_integer_dtype(series):
        return "INTEGER"
    if pd.api.types.is_float_dtype(series):
        return "FLOAT"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "DATE_ISO8601"
    return "STRING"


def write_sql_data_to_dir(df, path):
    """Write ``df`` to ``path`` as dataset.csv (no header) and schema.json.

    The schema is inferred from the dtypes: integers, floats and dates keep
    their type, everything else is STRING; a column with missing values is
    nullable. SQL computations downstream see the same columns.
    """
    os.makedirs(path, exist_ok=True)
    columns = []
    out = df.copy()
    for name in df.columns:
        series = df[name]
        fmt = _format_type(series)
        if fmt == "DATE_ISO8601":
            out[name] = series.dt.strftime("%Y-%m-%d")
        columns.append({"name": str(name), "format_type": fmt, "is_nullable": bool(series.isna().any())})
    out.to_csv(os.path.join(path, "dataset.csv"), header=False, index=False)
    with open(os.path.join(path, "schema.json"), "w", encoding="utf-8") as f:
        json.dump({"columns": columns}, f, indent=2)


# The names the commercial product's helper also offers.
read_tabular_data = read_sql_data_from_dir
write_tabular_data = write_sql_data_to_dir
