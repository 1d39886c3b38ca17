"""Analytics clean rooms: build a definition, publish it, and work with
its nodes.

A definition names data nodes, which receive one encrypted dataset each
(raw files, or tables of declared columns that the enclave validates), and
compute nodes (Python, R or SQL run on their dependencies), and who may
upload to which data node and run which computation. Once published it
never changes; its id is the SHA-256 of its canonical JSON, computed here
so every participant can check the server stored exactly what was agreed.
Nodes are addressed by their names, which are unique in a clean room.

Before publishing, a definition can be saved as a draft, tested ("test all
computations" on empty inputs or test data) and fixed; publishing the draft
gives the clean room the id publishing the definition directly gives.
"""

from __future__ import annotations

import enum
import hashlib
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .client import Dataset, Job
from .crypto import Key
from .errors import JobFailed, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client


class JobWarning(UserWarning):
    """Something an analyst should know about a successful computation,
    e.g. output entries that were skipped."""


# --- Canonical definition JSON ---------------------------------------------

# Fields left out of the canonical JSON when empty or false, as the server
# omits them; "participants": [] and a missing list mean the same.
_OPTIONAL_TOP = ("description",)
# minimum_rows_count is left out only when absent (None): 0 is a minimum.
_OPTIONAL_NODE = ("is_required", "columns", "unique_column_combinations", "script", "dependencies", "files",
                  "enable_logs_on_error", "enable_logs_on_success", "minimum_rows_count")
_OPTIONAL_COLUMN = ("is_nullable", "hash_with")
_OPTIONAL_PARTICIPANT = ("data_owner_of", "analyst_of")


def _is_empty(v: Any) -> bool:
    return v is None or v is False or (isinstance(v, (str, list, tuple, dict)) and len(v) == 0)


def _drop_empty(obj: Mapping[str, Any], optional: Sequence[str]) -> Dict[str, Any]:
    return {k: v for k, v in obj.items() if not (k in optional and _is_empty(v))}


def canonical_definition(definition: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of a definition: empty optional fields
    omitted, object keys sorted, no insignificant whitespace, no HTML
    escaping, UTF-8 text as is (the same bytes as the server's Go code)."""
    d = _drop_empty(definition, _OPTIONAL_TOP)
    d["nodes"] = [_canonical_node(n) for n in definition.get("nodes") or []]
    d["participants"] = [_drop_empty(p, _OPTIONAL_PARTICIPANT) for p in definition.get("participants") or []]
    return canonical_json(d)


def _canonical_node(node: Mapping[str, Any]) -> Dict[str, Any]:
    n = _drop_empty(node, _OPTIONAL_NODE)
    if "columns" in n:
        n["columns"] = [_drop_empty(c, _OPTIONAL_COLUMN) for c in n["columns"]]
    return n


def canonical_json(value: Any) -> bytes:
    """Encode JSON canonically as the server does: sorted keys, no
    whitespace, ``<>&`` and non-ASCII text unescaped, but U+2028 and U+2029
    escaped (Go's encoder always escapes those two)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the definition contains text that is not valid Unicode (a lone surrogate)") from None


def definition_id(canonical: bytes) -> str:
    """The id of canonical definition bytes: lowercase hex SHA-256."""
    return hashlib.sha256(canonical).hexdigest()


def _text(value: Union[str, bytes], what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{what} must be UTF-8 text") from None
    if isinstance(value, str):
        return value
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


# --- Node definitions --------------------------------------------------------

@dataclass(frozen=True)
class FileContent:
    """A static file of a compute node, mounted at ``/input/code/<name>``.
    Its content must be UTF-8 text: it is part of the readable definition."""

    name: str
    content: Union[str, bytes]


class FormatType(str, enum.Enum):
    """What every value of a table column must look like. The enclave
    checks each row against its column's format type when a dataset is
    published to a table node."""

    STRING = "STRING"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    EMAIL = "EMAIL"
    DATE_ISO8601 = "DATE_ISO8601"
    PHONE_NUMBER_E164 = "PHONE_NUMBER_E164"
    HASH_SHA256_HEX = "HASH_SHA256_HEX"


class HashingAlgorithm(str, enum.Enum):
    """How a table column is hashed: the enclave replaces each of its
    values by the value's lowercase hex SHA-256 before any computation
    sees it."""

    SHA256_HEX = "SHA256_HEX"


def _enum_value(cls: type, value: Any, what: str) -> Any:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise ValueError(f"{what} {value!r} is not one of {choices}") from None


@dataclass
class Column:
    """One column of a table data node: its ``name``, the ``format_type``
    its values must have, whether a row may leave it empty
    (``is_nullable``), and whether the enclave hashes it (``hash_with``).

    Format types and hashing may be given as their enums or as their
    names (``"INTEGER"``, ``"SHA256_HEX"``). Keyword arguments are the
    clear way to write a column; for scripts written for the commercial
    SDK, whose positional order is ``(format_type, name, is_nullable)``,
    a :class:`FormatType` given first is recognised and swapped.
    """

    name: str
    format_type: Union[FormatType, str]
    is_nullable: bool = False
    hash_with: Union[None, HashingAlgorithm, str] = None

    def __post_init__(self) -> None:
        if isinstance(self.name, FormatType) and not isinstance(self.format_type, FormatType):
            self.name, self.format_type = self.format_type, self.name  # type: ignore[assignment]
        if not isinstance(self.name, str):
            raise TypeError(f"a column name must be str, not {type(self.name).__name__}")
        self.format_type = _enum_value(FormatType, self.format_type, f"format_type of column {self.name!r}")
        if self.hash_with is not None:
            self.hash_with = _enum_value(HashingAlgorithm, self.hash_with, f"hash_with of column {self.name!r}")
        self.is_nullable = bool(self.is_nullable)

    def to_json(self) -> Dict[str, Any]:
        """The column as it appears in the definition JSON."""
        d: Dict[str, Any] = {"name": self.name, "format_type": FormatType(self.format_type).value}
        if self.is_nullable:
            d["is_nullable"] = True
        if self.hash_with is not None:
            d["hash_with"] = HashingAlgorithm(self.hash_with).value
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Column":
        return cls(name=d.get("name", ""), format_type=d.get("format_type", ""),
                   is_nullable=bool(d.get("is_nullable")), hash_with=d.get("hash_with") or None)


@dataclass
class RawDataNodeDefinition:
    """A data node that receives one dataset, any bytes, which scripts read
    at ``/input/<name>``. Without a dataset on a required node no
    computation that reads it runs."""

    name: str
    is_required: bool = False

    def to_json(self) -> Dict[str, Any]:
        """The node as it appears in the definition JSON."""
        return _drop_empty({"name": self.name, "kind": "raw", "is_required": bool(self.is_required)}, _OPTIONAL_NODE)


ColumnRef = Union[str, int]


class TableDataNodeDefinition:
    """A data node that receives a table: a CSV file without header whose
    rows have exactly the declared ``columns``. The enclave validates each
    dataset published to it (the data owner reads the report with
    :meth:`TableDataNode.get_validation_report_as_dict`); computations read
    it at ``/input/<name>/dataset.csv``, with ``schema.json`` beside it, and
    SQL queries as the table ``<name>``.

    ``unique_column_combinations`` lists column combinations whose values
    must be unique across the rows, each a list of column names or of
    0-based column indices (as in the commercial SDK): ``[["id"]]`` and
    ``[[0]]`` both make the first column, ``id``, a key. Indices are turned
    into names here, so the definition always names its columns.
    """

    def __init__(self, name: str, columns: Sequence[Column], is_required: bool = False,
                 unique_column_combinations: Sequence[Sequence[ColumnRef]] = ()) -> None:
        self.name = name
        self.columns = list(columns or [])
        for c in self.columns:
            if not isinstance(c, Column):
                raise TypeError(f"a column of table {name!r} must be a Column, not {type(c).__name__}")
        self.is_required = bool(is_required)
        self.unique_column_combinations = [list(_combination(combo, name)) for combo in unique_column_combinations or []]
        self._resolved_combinations()  # refuse bad indices now, not when building

    def __repr__(self) -> str:
        return f"TableDataNodeDefinition({self.name!r}, columns={[c.name for c in self.columns]!r})"

    def _resolved_combinations(self) -> List[List[str]]:
        out = []
        for combo in self.unique_column_combinations:
            names = []
            for ref in combo:
                if isinstance(ref, int):
                    if not 0 <= ref < len(self.columns):
                        raise ValueError(f"unique column combination of table {self.name!r} names column index {ref}, "
                                         f"but the table has {len(self.columns)} columns (indices are 0-based)")
                    names.append(self.columns[ref].name)
                else:
                    names.append(ref)
            out.append(names)
        return out

    def to_json(self) -> Dict[str, Any]:
        """The node as it appears in the definition JSON."""
        return _canonical_node({
            "name": self.name, "kind": "table", "is_required": self.is_required,
            "columns": [c.to_json() for c in self.columns],
            "unique_column_combinations": self._resolved_combinations(),
        })


def _combination(combo: Any, table: str) -> Iterable[ColumnRef]:
    if isinstance(combo, (str, bytes, int)):
        raise TypeError(f"unique_column_combinations of table {table!r} is a list of lists "
                        f"(e.g. [['id']]), but one entry is {combo!r}")
    for ref in combo:
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise TypeError(f"a unique column combination of table {table!r} names columns by name or "
                            f"0-based index, not {ref!r}")
        yield ref


class _ScriptNodeDefinition:
    """A computation written as a script with static files: Python or R."""

    kind = ""

    def __init__(self, name: str, script: Union[str, bytes],
                 additional_files: Union[None, Iterable[FileContent], Mapping[str, Union[str, bytes]]] = None,
                 dependencies: Sequence[str] = (), enable_logs_on_error: bool = False,
                 enable_logs_on_success: bool = False) -> None:
        self.name = name
        self.script = _text(script, f"the script of node {name!r}")
        if isinstance(additional_files, Mapping):
            additional_files = [FileContent(k, v) for k, v in additional_files.items()]
        self.additional_files = list(additional_files or [])
        self.dependencies = list(dependencies or [])
        self.enable_logs_on_error = bool(enable_logs_on_error)
        self.enable_logs_on_success = bool(enable_logs_on_success)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dependencies={self.dependencies!r})"

    def to_json(self) -> Dict[str, Any]:
        """The node as it appears in the definition JSON."""
        files = [{"name": f.name, "content": _text(f.content, f"static file {f.name!r} of node {self.name!r}")}
                 for f in self.additional_files]
        return _drop_empty({
            "name": self.name, "kind": self.kind, "script": self.script,
            "dependencies": list(self.dependencies), "files": files,
            "enable_logs_on_error": self.enable_logs_on_error,
            "enable_logs_on_success": self.enable_logs_on_success,
        }, _OPTIONAL_NODE)


class PythonComputeNodeDefinition(_ScriptNodeDefinition):
    """A computation: a Python script run with its dependencies under
    ``/input`` (``/input/<raw node>`` is the dataset, ``/input/<table or
    SQL node>/dataset.csv`` a table without header and ``schema.json``
    beside it, ``/input/<Python or R node>/`` the files that computation
    wrote), its static files under ``/input/code``, writing its results to
    ``/output``. ``cleanroom_util.sql.read_sql_data_from_dir(path)`` reads
    a table with its header into a pandas DataFrame.

    Logs can leak data, so analysts see them only where
    ``enable_logs_on_error`` / ``enable_logs_on_success`` allow.
    """

    kind = "python"


class RComputeNodeDefinition(_ScriptNodeDefinition):
    """A computation written in R, run by ``Rscript`` with the same inputs,
    static files, output and log policy as a
    :class:`PythonComputeNodeDefinition`."""

    kind = "r"


class SqlComputeNodeDefinition:
    """A SQL query (DuckDB's dialect) over the tables it depends on: table
    data nodes and other SQL nodes, each queried by its node name. Its
    result is a table: ``dataset.csv`` without header and ``schema.json``,
    which other computations read at ``/input/<name>/``.

    A result with fewer rows than ``minimum_rows_count`` fails and
    releases nothing; ``None`` sets no minimum.
    """

    def __init__(self, name: str, query: Union[str, bytes], dependencies: Optional[Sequence[str]] = None,
                 minimum_rows_count: Optional[int] = None) -> None:
        self.name = name
        self.query = _text(query, f"the query of node {name!r}")
        self.dependencies = list(dependencies or [])
        if minimum_rows_count is not None and (isinstance(minimum_rows_count, bool)
                                               or not isinstance(minimum_rows_count, int)):
            raise TypeError(f"minimum_rows_count of node {name!r} must be an int or None, not {minimum_rows_count!r}")
        self.minimum_rows_count = minimum_rows_count

    def __repr__(self) -> str:
        return f"SqlComputeNodeDefinition({self.name!r}, dependencies={self.dependencies!r})"

    def to_json(self) -> Dict[str, Any]:
        """The node as it appears in the definition JSON."""
        return _drop_empty({
            "name": self.name, "kind": "sql", "script": self.query,
            "dependencies": list(self.dependencies), "minimum_rows_count": self.minimum_rows_count,
        }, _OPTIONAL_NODE)


NodeDefinition = Union[RawDataNodeDefinition, TableDataNodeDefinition, PythonComputeNodeDefinition,
                       RComputeNodeDefinition, SqlComputeNodeDefinition]


# --- Builder -------------------------------------------------------------------

class AnalyticsDcrDefinition:
    """A built definition, ready to publish: its JSON (``definition``), the
    canonical bytes sent to the server (``canonical``) and its ``id``."""

    def __init__(self, definition: Dict[str, Any]) -> None:
        self.canonical = canonical_definition(definition)
        self.definition: Dict[str, Any] = json.loads(self.canonical)
        self.id = definition_id(self.canonical)

    @property
    def name(self) -> str:
        return self.definition.get("name", "")

    def __repr__(self) -> str:
        return f"AnalyticsDcrDefinition({self.name!r}, id={self.id})"


class AnalyticsDcrBuilder:
    """Builds a clean room definition with chainable calls::

        builder = AnalyticsDcrBuilder(client=client)
        builder.with_name("Secure Uppercase").with_owner(user_email)
        builder.add_node_definition(RawDataNodeDefinition("input_data_node", is_required=True))
        ...
        dcr = client.publish_analytics_dcr(builder.build())

    The owner must be the user who publishes; with a ``client`` and no
    :meth:`with_owner`, it is the client's user. Rules (node names, known
    dependencies, permissions on the right kind of node) are checked by the
    server when publishing, which reports every problem at once.

    A definition still being written can be saved as a draft instead,
    tested, and published once it passes::

        draft = client.create_analytics_dcr_draft(builder.build())
        draft.add_test_dataset("input_data_node", b"made-up test data")
        print(draft.test_all_computations())
        dcr = draft.publish()
    """

    def __init__(self, client: Optional["Client"] = None) -> None:
        self.client = client
        self._name = ""
        self._owner: Optional[str] = None
        self._description = ""
        self._nodes: List[NodeDefinition] = []
        self._participants: List[Dict[str, Any]] = []

    def with_name(self, name: str) -> "AnalyticsDcrBuilder":
        """Set the clean room's name."""
        self._name = name
        return self

    def with_owner(self, email: str) -> "AnalyticsDcrBuilder":
        """Set the owner, who publishes the clean room and may read it."""
        self._owner = email
        return self

    def with_description(self, description: str) -> "AnalyticsDcrBuilder":
        """Set a free-text description."""
        self._description = description
        return self

    def add_node_definition(self, node: NodeDefinition) -> "AnalyticsDcrBuilder":
        """Add a data or compute node."""
        if not hasattr(node, "to_json"):
            raise TypeError(f"not a node definition: {node!r}")
        self._nodes.append(node)
        return self

    def add_participant(self, email: str, data_owner_of: Sequence[str] = (),
                        analyst_of: Sequence[str] = ()) -> "AnalyticsDcrBuilder":
        """Let ``email`` take part: upload datasets to the data nodes
        ``data_owner_of`` and run the compute nodes ``analyst_of`` (by node
        name). A participant with neither may still read the definition."""
        self._participants.append({"email": email, "data_owner_of": list(data_owner_of or []),
                                   "analyst_of": list(analyst_of or [])})
        return self

    def build(self) -> AnalyticsDcrDefinition:
        """Return the definition, with its id computed."""
        owner = self._owner
        if owner is None:
            owner = self.client.user_email if self.client is not None else ""
        return AnalyticsDcrDefinition({
            "name": self._name, "description": self._description, "owner": owner,
            "nodes": [n.to_json() for n in self._nodes],
            "participants": [dict(p) for p in self._participants],
        })


# --- Published clean rooms ---------------------------------------------------

class AnalyticsDcr:
    """A published clean room. ``get_node(name)`` returns its nodes."""

    def __init__(self, client: "Client", dcr_id: str, definition: Mapping[str, Any], *,
                 datasets: Sequence[Dataset] = (), published_by: str = "", published_at: str = "") -> None:
        self.client = client
        self.id = dcr_id
        self.definition = dict(definition)
        self.datasets = list(datasets)
        self.published_by = published_by
        self.published_at = published_at

    @property
    def name(self) -> str:
        return self.definition.get("name", "")

    @property
    def owner(self) -> str:
        return self.definition.get("owner", "")

    @property
    def node_names(self) -> List[str]:
        return [n["name"] for n in self.definition.get("nodes") or []]

    def __repr__(self) -> str:
        return f"AnalyticsDcr({self.name!r}, id={self.id})"

    def retrieve_audit_log(self, verified_before: Optional[Tuple[int, str]] = None) -> List[dict]:
        """Who did what in this clean room, oldest first, once the hash
        chain is verified (and, given the ``(seq, hash)`` of an entry you
        verified before, that the log still holds it); raises
        :class:`~cleanroom.IntegrityError` if the server's copy was
        changed."""
        return self.client.retrieve_audit_log(self.id, verified_before)

    def get_node(self, name: str) -> Any:
        """The node named ``name``, as the class of its kind
        (:class:`RawDataNode`, :class:`TableDataNode`,
        :class:`PythonComputeNode`, :class:`RComputeNode`,
        :class:`SqlComputeNode`); raises :class:`~cleanroom.NotFoundError`
        if the clean room has none."""
        for n in self.definition.get("nodes") or []:
            if n.get("name") == name:
                return _NODE_CLASSES.get(n.get("kind"), Node)(self, n)
        raise NotFoundError(f"clean room {self.id} has no node {name!r}; its nodes are {', '.join(self.node_names)}")


class Node:
    """A node of a published clean room."""

    def __init__(self, dcr: AnalyticsDcr, definition: Mapping[str, Any]) -> None:
        self.dcr = dcr
        self.definition = dict(definition)
        self.name: str = definition["name"]
        self.kind: str = definition.get("kind", "")

    @property
    def _client(self) -> "Client":
        return self.dcr.client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dcr={self.dcr.id})"


class DataNode(Node):
    """A data node: its data owners upload, publish and remove its dataset."""

    @property
    def is_required(self) -> bool:
        return bool(self.definition.get("is_required"))

    def upload_and_publish_dataset(self, data: BinaryIO, key: Key, file_name: Optional[str] = None) -> Dataset:
        """Encrypt ``data`` (a binary file object of any size, read in 1 MiB
        segments in constant memory) with ``key`` on this machine, upload
        the ciphertext, and publish it to this node with the key sealed to
        the enclave for this clean room, node and ciphertext.

        ``file_name`` is accepted for compatibility and not stored: scripts
        read the dataset by the node's name.
        """
        return self._client.upload_and_publish_dataset(self.dcr.id, self.name, data, key, file_name)

    def publish_dataset(self, manifest_hash: str, key: Key) -> Dataset:
        """Publish an already uploaded ciphertext (e.g. one published to
        another clean room too) with the key it was encrypted with."""
        return self._client.publish_dataset(self.dcr.id, self.name, manifest_hash, key)

    def remove_published_dataset(self) -> None:
        """Remove this node's dataset; the uploaded ciphertext stays."""
        self._client.remove_dataset(self.dcr.id, self.name)


class RawDataNode(DataNode):
    """A raw data node: one file, any bytes, at ``/input/<name>``."""


class TableDataNode(DataNode):
    """A table data node. Its dataset is a CSV file without header; once
    published, the enclave checks every row against the columns, and
    :meth:`get_validation_report_as_dict` tells its data owners how that
    went. No computation reads a table that failed validation."""

    @property
    def columns(self) -> List[Column]:
        return [Column.from_json(c) for c in self.definition.get("columns") or []]

    @property
    def unique_column_combinations(self) -> List[List[str]]:
        return [list(c) for c in self.definition.get("unique_column_combinations") or []]

    def get_validation_report_as_dict(self) -> Dict[str, Any]:
        """Wait until the enclave has validated the dataset published to
        this node and return its report: ``valid``, ``rows``, ``columns``,
        ``bytes``, ``error_count`` (every problem counted) and ``errors``,
        the first problems as ``{"line", "column", "value", "message"}``
        (lines 1-based; ``column`` and ``value`` absent where the problem is
        the whole row), and a ``hint`` when one helps (a header row, say).

        The report quotes the data, so only the node's data owners read it.
        """
        return self._client.get_validation_report(self.dcr.id, self.name)


JobOrId = Union[Job, str]


class _ResultZip(zipfile.ZipFile):
    """A result zip that owns the temporary file it was downloaded to, and
    closes it when closed (or garbage collected)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        try:
            super().__init__(file)
        except BaseException:
            file.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._file.close()


def _job_id(job: JobOrId) -> str:
    return job if isinstance(job, str) else job.id


class ComputeNode(Node):
    """A computation: its analysts run it and download its results."""

    @property
    def dependencies(self) -> List[str]:
        return list(self.definition.get("dependencies") or [])

    def run_computation(self) -> Job:
        """Start the computation; returns its queued job."""
        return self._client.run_computation(self.dcr.id, self.name)

    def wait_for_computation(self, job: JobOrId) -> Job:
        """Wait for a job to end and return it, whatever its outcome."""
        return self._client.wait_for_job(_job_id(job))

    def get_results_as_zip(self, job: JobOrId) -> zipfile.ZipFile:
        """Wait for the job to end and return the files its computation
        wrote to ``/output`` as a ZIP file. Raises
        :class:`~cleanroom.JobFailed`, carrying the job's reason, if it
        failed or was cancelled."""
        ended = self.wait_for_computation(job)
        if ended.state != "succeeded":
            raise JobFailed(ended)
        for w in ended.warnings:
            warnings.warn(f"job {ended.id}: {w}", JobWarning, stacklevel=2)
        return _ResultZip(self._client.download_result_file(ended.id))

    def run_computation_and_get_results_as_zip(self) -> zipfile.ZipFile:
        """Run the computation, wait for it, and return its results (see
        :meth:`get_results_as_zip`)."""
        return self.get_results_as_zip(self.run_computation())

    def get_logs(self, job: JobOrId) -> str:
        """The job's logs, where the node's log policy releases them."""
        return self._client.get_logs(_job_id(job))

    def delete_results(self, job: JobOrId) -> None:
        """Delete the job's result and logs for good (only the analyst who
        ran it may); the job stays in :meth:`list_jobs`."""
        self._client.delete_result(_job_id(job))

    def cancel_computation(self, job: JobOrId) -> None:
        """Cancel a queued or running job."""
        self._client.cancel_job(_job_id(job))

    def list_jobs(self) -> List[Job]:
        """This node's jobs, newest first."""
        return self._client.list_jobs(self.dcr.id, self.name)


class PythonComputeNode(ComputeNode):
    """A Python computation."""

    @property
    def script(self) -> str:
        return self.definition.get("script", "")


class RComputeNode(ComputeNode):
    """An R computation."""

    @property
    def script(self) -> str:
        return self.definition.get("script", "")


class SqlComputeNode(ComputeNode):
    """A SQL computation. Its result zip holds ``dataset.csv`` (no header)
    and ``schema.json`` (the result's columns)."""

    @property
    def query(self) -> str:
        return self.definition.get("script", "")

    @property
    def minimum_rows_count(self) -> Optional[int]:
        return self.definition.get("minimum_rows_count")


_NODE_CLASSES = {"raw": RawDataNode, "table": TableDataNode, "python": PythonComputeNode,
                 "r": RComputeNode, "sql": SqlComputeNode}


# --- Drafts --------------------------------------------------------------------

@dataclass(frozen=True)
class OutputFile:
    """A file a computation wrote during a test, relative to ``/output``."""

    path: str
    size: int


@dataclass
class NodeTestResult:
    """How one node fared in "test all computations": ``status`` is
    ``ok``, ``failed`` or ``skipped`` (a node it depends on failed);
    ``error`` says why it did not pass, ``line`` the line of its script the
    error points at (None when it names none), ``logs`` what it printed
    (always shown in tests: no real data is involved) and ``outputs`` what
    it wrote to ``/output``. A data node fails when its test data does
    not match its columns."""

    node: str
    kind: str
    status: str
    error: str = ""
    logs: str = ""
    line: Optional[int] = None
    outputs: List[OutputFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "NodeTestResult":
        return cls(node=d.get("node", ""), kind=d.get("kind", ""), status=d.get("status", ""),
                   error=d.get("error", ""), logs=d.get("logs", ""), line=d.get("line") or None,
                   outputs=[OutputFile(o.get("path", ""), int(o.get("size", 0))) for o in d.get("outputs") or []])

    def __str__(self) -> str:
        line = f" (line {self.line})" if self.line else ""
        out = [f"{self.status:<8} {self.kind} {self.node}{line}"]
        if not self.ok:
            out.append(f"         {self.error}")
            if self.status == "failed" and self.logs:
                out.extend(f"         | {l}" for l in self.logs.rstrip("\n").split("\n"))
        return "\n".join(out)


@dataclass
class DraftTestResult:
    """The outcome of "test all computations" on a draft: every data node
    (its test data checked against its columns) and every computation, in
    dependency order, run on empty inputs or the draft's test datasets.

    Failed nodes raise nothing: check :attr:`ok`, look a node up by name
    (``result["my_node"]``), or print the result for a readable report.
    ``error`` is set when the test could not run at all.
    """

    id: str
    draft_id: str
    state: str
    nodes: List[NodeTestResult] = field(default_factory=list)
    error: str = ""
    created_at: str = ""
    finished_at: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DraftTestResult":
        return cls(id=d.get("id", ""), draft_id=d.get("draft_id", ""), state=d.get("state", ""),
                   nodes=[NodeTestResult.from_json(n) for n in d.get("nodes") or []], error=d.get("error", ""),
                   created_at=d.get("created_at", ""), finished_at=d.get("finished_at"))

    @property
    def ok(self) -> bool:
        """Whether the test ran and every node passed."""
        return self.state == "done" and not self.error and all(n.ok for n in self.nodes)

    @property
    def failed(self) -> List[NodeTestResult]:
        """The nodes that did not pass (failed or skipped)."""
        return [n for n in self.nodes if not n.ok]

    def __getitem__(self, node: str) -> NodeTestResult:
        for n in self.nodes:
            if n.node == node:
                return n
        raise KeyError(node)

    def __iter__(self) -> Iterator[NodeTestResult]:
        return iter(self.nodes)

    def as_dict(self) -> Dict[str, Dict[str, Any]]:
        """The results by node name, each as ``{"status", "error", "logs",
        "line", "outputs"}``."""
        return {n.node: {"kind": n.kind, "status": n.status, "error": n.error, "logs": n.logs, "line": n.line,
                         "outputs": [{"path": o.path, "size": o.size} for o in n.outputs]} for n in self.nodes}

    def __str__(self) -> str:
        if self.error:
            return f"the test did not run: {self.error}"
        lines = [str(n) for n in self.nodes]
        failed = self.failed
        if failed:
            lines.append(f"{len(failed)} node(s) did not pass: {', '.join(n.node for n in failed)}")
        else:
            lines.append(f"all {len(self.nodes)} node(s) passed")
        return "\n".join(lines)


DefinitionLike = Union[AnalyticsDcrDefinition, AnalyticsDcrBuilder]


def _as_definition(definition: DefinitionLike) -> AnalyticsDcrDefinition:
    if isinstance(definition, AnalyticsDcrBuilder):
        return definition.build()
    if isinstance(definition, AnalyticsDcrDefinition):
        return definition
    raise TypeError(f"expected an AnalyticsDcrDefinition (builder.build()) or a builder, not {type(definition).__name__}")


class AnalyticsDcrDraft:
    """A clean room being written: saved on the server, visible to its
    creator only, editable, and checked in full only when tested or
    published. An incomplete definition (an empty script, say) may be
    saved; testing and publishing report every problem at once.

    ``definition`` is the :class:`AnalyticsDcrDefinition` this object last
    saved or read; ``test_datasets`` maps the data nodes with test data to
    its size in bytes; ``published_id`` is set once published.
    """

    def __init__(self, client: "Client", doc: Mapping[str, Any]) -> None:
        self.client = client
        self._load(doc)

    def _load(self, doc: Mapping[str, Any]) -> None:
        self.id: str = doc["id"]
        self.owner: str = doc.get("owner", "")
        self.definition = AnalyticsDcrDefinition(doc.get("definition") or {})
        self.published_id: str = doc.get("published_id", "")
        self.created_at: str = doc.get("created_at", "")
        self.updated_at: str = doc.get("updated_at", "")
        self.test_datasets: Dict[str, int] = {t["node"]: int(t.get("size", 0)) for t in doc.get("test_datasets") or []}

    @property
    def name(self) -> str:
        return self.definition.name

    def __repr__(self) -> str:
        published = f", published_id={self.published_id}" if self.published_id else ""
        return f"AnalyticsDcrDraft({self.name!r}, id={self.id}{published})"

    def refresh(self) -> "AnalyticsDcrDraft":
        """Read the draft from the server again."""
        self._load(self.client.get_draft(self.id))
        return self

    def update(self, definition: DefinitionLike) -> "AnalyticsDcrDraft":
        """Replace the draft's definition (test datasets of nodes that are
        still there stay attached)."""
        self._load(self.client.update_draft(self.id, _as_definition(definition)))
        return self

    def add_test_dataset(self, node_name: str, data: Union[bytes, str, BinaryIO]) -> None:
        """Attach test data to a data node of the draft, replacing any
        before: bytes, text (sent as UTF-8) or a binary file object, at
        most 64 MiB. For a table node it is a CSV file without header,
        checked against the columns when testing.

        Test data is not real data: it is sent as is, not encrypted here,
        and whoever runs the server may read it. Use made-up rows.
        """
        size = self.client.put_test_dataset(self.id, node_name, data)
        self.test_datasets[node_name] = size

    def remove_test_dataset(self, node_name: str) -> None:
        """Detach a data node's test data: it is tested on an empty input again."""
        self.client.delete_test_dataset(self.id, node_name)
        self.test_datasets.pop(node_name, None)

    def test_all_computations(self) -> DraftTestResult:
        """Run every computation once on empty inputs or the test datasets
        and return how each node fared, once all have run. Nodes that fail
        raise nothing (see :class:`DraftTestResult`); a definition that
        breaks a rule raises :class:`~cleanroom.InvalidError` naming every
        problem, as publishing would."""
        return self.client.test_draft(self.id)

    def publish(self) -> AnalyticsDcr:
        """Publish the draft, which is then frozen, and return the clean
        room, exactly as :meth:`Client.publish_analytics_dcr` would for the
        same definition (same id).

        The server's draft must still be the definition this object holds
        (else :class:`~cleanroom.ConflictError`: read it again with
        :meth:`refresh` and check it), and the published id must be the
        one computed here from it (else :class:`~cleanroom.IntegrityError`).
        """
        return self.client.publish_draft(self)

    def delete(self) -> None:
        """Delete the draft and its test datasets."""
        self.client.delete_draft(self.id)
