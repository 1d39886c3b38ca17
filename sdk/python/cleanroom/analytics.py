"""Analytics clean rooms: build a definition, publish it, and work with
its nodes.

A definition names data nodes (which receive one encrypted dataset each)
and compute nodes (Python scripts run on their dependencies), and who may
upload to which data node and run which computation. Once published it
never changes; its id is the SHA-256 of its canonical JSON, computed here
so every participant can check the server stored exactly what was agreed.
Nodes are addressed by their names, which are unique in a clean room.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Dict, Iterable, List, Mapping, Optional, Sequence, Union

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
_OPTIONAL_NODE = ("is_required", "script", "dependencies", "files", "enable_logs_on_error", "enable_logs_on_success")
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
    d["nodes"] = [_drop_empty(n, _OPTIONAL_NODE) for n in definition.get("nodes") or []]
    d["participants"] = [_drop_empty(p, _OPTIONAL_PARTICIPANT) for p in definition.get("participants") or []]
    return canonical_json(d)


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


class PythonComputeNodeDefinition:
    """A computation: a Python script run with its dependencies under
    ``/input`` (``/input/<data node>`` is the dataset, ``/input/<compute
    node>/`` the files that computation wrote), its static files under
    ``/input/code``, writing its results to ``/output``.

    Logs can leak data, so analysts see them only where
    ``enable_logs_on_error`` / ``enable_logs_on_success`` allow.
    """

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
        return f"PythonComputeNodeDefinition({self.name!r}, dependencies={self.dependencies!r})"

    def to_json(self) -> Dict[str, Any]:
        """The node as it appears in the definition JSON."""
        files = [{"name": f.name, "content": _text(f.content, f"static file {f.name!r} of node {self.name!r}")}
                 for f in self.additional_files]
        return _drop_empty({
            "name": self.name, "kind": "python", "script": self.script,
            "dependencies": list(self.dependencies), "files": files,
            "enable_logs_on_error": self.enable_logs_on_error,
            "enable_logs_on_success": self.enable_logs_on_success,
        }, _OPTIONAL_NODE)


NodeDefinition = Union[RawDataNodeDefinition, PythonComputeNodeDefinition]


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

    def get_node(self, name: str) -> Union["RawDataNode", "PythonComputeNode", "Node"]:
        """The node named ``name``; raises :class:`~cleanroom.NotFoundError`
        if the clean room has none."""
        for n in self.definition.get("nodes") or []:
            if n.get("name") == name:
                cls = {"raw": RawDataNode, "python": PythonComputeNode}.get(n.get("kind"), Node)
                return cls(self, n)
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


class RawDataNode(Node):
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
        read the dataset at ``/input/<node name>``.
        """
        return self._client.upload_and_publish_dataset(self.dcr.id, self.name, data, key, file_name)

    def publish_dataset(self, manifest_hash: str, key: Key) -> Dataset:
        """Publish an already uploaded ciphertext (e.g. one published to
        another clean room too) with the key it was encrypted with."""
        return self._client.publish_dataset(self.dcr.id, self.name, manifest_hash, key)

    def remove_published_dataset(self) -> None:
        """Remove this node's dataset; the uploaded ciphertext stays."""
        self._client.remove_dataset(self.dcr.id, self.name)


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


class PythonComputeNode(Node):
    """A computation: its analysts run it and download its results."""

    @property
    def script(self) -> str:
        return self.definition.get("script", "")

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
        """Wait for the job to end and return the files its script wrote to
        ``/output`` as a ZIP file. Raises :class:`~cleanroom.JobFailed`,
        carrying the job's reason, if it failed or was cancelled."""
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

    def cancel_computation(self, job: JobOrId) -> None:
        """Cancel a queued or running job."""
        self._client.cancel_job(_job_id(job))

    def list_jobs(self) -> List[Job]:
        """This node's jobs, newest first."""
        return self._client.list_jobs(self.dcr.id, self.name)
