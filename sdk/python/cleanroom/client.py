"""The client: one user talking to one cleanroom server over its HTTP API.

Datasets are encrypted on this machine before they leave it: the upload
streams ciphertext only, and the dataset key goes to the server sealed to
the enclave, bound to one clean room, data node and ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import queue
import socket
import ssl
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator, List, Optional, Tuple, Union

from . import crypto, enclave_specifications
from .crypto import Key
from .enclave_specifications import Attestation, EnclaveSpecifications, WorkerSpec
from .errors import (CleanroomError, ConflictError, IntegrityError, TooLargeError, UnreachableError,
                     error_from_code, error_from_status)

if TYPE_CHECKING:  # pragma: no cover
    from .analytics import AnalyticsDcr, AnalyticsDcrDefinition, AnalyticsDcrDraft, DraftTestResult

DEFAULT_URL = "http://127.0.0.1:8080"
"""The server a client talks to when neither ``url`` nor ``CLEANROOM_URL`` names one."""

EMAIL_HEADER = "X-Cleanroom-Email"
_JSON = "application/json"
_BODY_CHUNK = 1 << 20


@dataclass(frozen=True)
class DcrSummary:
    """One entry of the list of the user's clean rooms."""

    id: str
    name: str
    owner: str
    published_at: str


@dataclass(frozen=True)
class Dataset:
    """A dataset published to a data node. ``manifest_hash`` is the SHA-256
    of its ciphertext; ``size`` the ciphertext's size in bytes;
    ``validation_job``, for a table node, the job that validates it."""

    dcr_id: str
    node: str
    manifest_hash: str
    size: int
    published_by: str
    published_at: str
    validation_job: str = ""

    @classmethod
    def from_json(cls, d: dict) -> "Dataset":
        return cls(d.get("dcr_id", ""), d.get("node", ""), d.get("manifest_hash", ""),
                   int(d.get("size", 0)), d.get("published_by", ""), d.get("published_at", ""),
                   d.get("validation_job", ""))


_DONE_STATES = ("succeeded", "failed", "cancelled")


@dataclass
class Job:
    """One run of one compute node: ``queued -> running -> succeeded |
    failed | cancelled``. ``error`` says in words how a failed job ended;
    ``warnings`` what an analyst should know about a successful one."""

    id: str
    dcr_id: str
    node: str
    state: str
    created_by: str = ""
    error: str = ""
    warnings: List[str] = field(default_factory=list)
    result_size: int = 0
    has_logs: bool = False
    created_at: str = ""
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    #: when the job's analyst deleted its result and logs, else None
    result_deleted_at: Optional[str] = None

    @property
    def done(self) -> bool:
        """Whether the job has ended."""
        return self.state in _DONE_STATES

    @classmethod
    def from_json(cls, d: dict) -> "Job":
        return cls(id=d["id"], dcr_id=d.get("dcr_id", ""), node=d.get("node", ""), state=d.get("state", ""),
                   created_by=d.get("created_by", ""), error=d.get("error", ""),
                   warnings=list(d.get("warnings") or []), result_size=int(d.get("result_size", 0)),
                   has_logs=bool(d.get("has_logs", False)), created_at=d.get("created_at", ""),
                   started_at=d.get("started_at"), finished_at=d.get("finished_at"),
                   result_deleted_at=d.get("result_deleted_at"))


def create_client(user_email: str, api_token: str, url: Optional[str] = None, *,
                  specs: Optional[EnclaveSpecifications] = None) -> "Client":
    """Return a client acting as ``user_email`` with its API token.

    The server is ``url``, else the ``CLEANROOM_URL`` environment variable,
    else ``http://127.0.0.1:8080``. ``specs`` are the enclave specifications
    the server's enclave is checked against before any key is sealed to it
    (default :func:`cleanroom.enclave_specifications.latest`).
    """
    return Client(user_email, api_token, url=url, specs=specs)


# OpenSSL's verify codes for a certificate whose authority is not trusted:
# self-signed (18), self-signed in the chain (19), issuer unknown (20, 21).
_UNKNOWN_AUTHORITY = (18, 19, 20, 21)


class Client:
    """Calls one cleanroom server as one user. See :func:`create_client`."""

    def __init__(self, user_email: str, api_token: str, url: Optional[str] = None, *,
                 specs: Optional[EnclaveSpecifications] = None, timeout: float = 120.0) -> None:
        self.user_email = user_email
        self._token = api_token
        self.url = (url or os.environ.get("CLEANROOM_URL") or DEFAULT_URL).rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"server URL {self.url!r} is not an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.specs = specs or enclave_specifications.latest()
        self.timeout = timeout
        self._attestation: Optional[Attestation] = None

    def __repr__(self) -> str:
        return f"Client({self.user_email!r}, url={self.url!r})"

    # --- HTTP -------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as e:
            hint = ""
            if e.verify_code in _UNKNOWN_AUTHORITY:
                hint = ("; if the server's certificate comes from your own certificate authority, "
                        "set SSL_CERT_FILE to that authority's PEM file")
            raise UnreachableError(f"cannot reach the cleanroom server at {self.url}: {e}{hint}") from None
        except OSError as e:
            raise UnreachableError(f"cannot reach the cleanroom server at {self.url}: {e}") from None
        # Bodies go out in many writes; without this small ones wait for ACKs.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _request(self, method: str, path: str, body: Union[None, bytes, Iterable[bytes]] = None, *,
                 content_type: Optional[str] = None, length: Optional[int] = None,
                 headers: Optional[dict] = None
                 ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request and return the connection and its 2xx response.

        ``body`` is bytes or an iterable of byte strings; an iterable is
        sent with ``length`` as its Content-Length, or chunked when the
        length is unknown. API errors raise the :class:`CleanroomError`
        subclass of the server's code, with the server's message.
        """
        if isinstance(body, (bytes, bytearray)):
            pieces: Iterable[bytes] = (bytes(body),)
            length = len(body)
        else:
            pieces = body or ()
            if body is None:
                length = 0 if method in ("POST", "PUT") else None
        conn = self._connect()
        try:
            conn.putrequest(method, self._prefix + path, skip_accept_encoding=True)
            conn.putheader("Authorization", "Bearer " + self._token)
            conn.putheader(EMAIL_HEADER, self.user_email)
            conn.putheader("Accept", _JSON)
            if content_type:
                conn.putheader("Content-Type", content_type)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if length is not None:
                conn.putheader("Content-Length", str(length))
            elif body is not None:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            send_error = self._send_body(conn, pieces, chunked=length is None and body is not None)
            try:
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise UnreachableError(f"{method} {path}: the cleanroom server at {self.url} "
                                       f"did not answer: {send_error or e}") from None
            if resp.status // 100 != 2:
                raise self._error(method, path, resp)
            return conn, resp
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _send_body(conn: http.client.HTTPConnection, pieces: Iterable[bytes], chunked: bool) -> Optional[OSError]:
        """Send the body; a server that answers before reading all of it
        (an error) may cut the connection, so a send error is returned for
        the caller to report if no answer can be read either."""
        try:
            for piece in pieces:
                if not piece:
                    continue
                if chunked:
                    conn.send(b"%x\r\n" % len(piece))
                    conn.send(piece)
                    conn.send(b"\r\n")
                else:
                    conn.send(piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except OSError as e:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # stop producing a body nobody reads
            return e
        return None

    def _error(self, method: str, path: str, resp: http.client.HTTPResponse) -> CleanroomError:
        raw = resp.read(1 << 20)
        try:
            doc = json.loads(raw)
            if isinstance(doc, dict) and doc.get("code"):
                return error_from_code(str(doc["code"]), str(doc.get("message", "")))
        except ValueError:
            pass
        return error_from_status(resp.status, f"{method} {path}: server answered {resp.status} {resp.reason}")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """Send a JSON request (``body`` bytes are sent as they are) and
        return the decoded JSON response, or None for an empty one."""
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        conn, resp = self._request(method, path, body, content_type=_JSON if body is not None else None)
        try:
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise UnreachableError(f"{method} {path}: the answer of {self.url} broke off: {e}") from None
        finally:
            conn.close()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CleanroomError(f"{method} {path}: server sent an unreadable response") from None

    # --- Users, enclave, clean rooms --------------------------------------

    def me(self) -> str:
        """The email the server authenticated this client as."""
        return self._call("GET", "/api/v1/me")["email"]

    def enclave(self) -> Attestation:
        """The server's enclave attestation, checked against this client's
        enclave specifications, its workers too where they pin some
        (fetched and checked once per client). Raises
        :class:`~cleanroom.EnclaveNotTrusted` for an enclave the
        specifications refuse."""
        if self._attestation is None:
            att = Attestation.from_json(self._call("GET", "/api/v1/enclave"))
            self.specs.check(att, server=self.url)
            if self.specs.workers:
                self.specs.check_workers(self.worker_specs(), server=self.url)
            self._attestation = att
        return self._attestation

    def worker_specs(self) -> List[WorkerSpec]:
        """The workers the server runs computations on, with their
        measurements (``GET /api/v1/enclave/specs``)."""
        return [WorkerSpec.from_json(w) for w in self._call("GET", "/api/v1/enclave/specs").get("workers") or []]

    def publish_analytics_dcr(self, definition: "AnalyticsDcrDefinition") -> "AnalyticsDcr":
        """Publish a clean room definition built by
        :class:`~cleanroom.analytics.AnalyticsDcrBuilder` and return it.

        The id is computed here from the canonical definition; a server that
        answers with another id stored something other than what the
        participants agreed to, and is refused with
        :class:`~cleanroom.IntegrityError`. Publishing the same definition
        again returns the same clean room.
        """
        from .analytics import AnalyticsDcr
        out = self._call("POST", "/api/v1/dcrs", definition.canonical)
        if out.get("id") != definition.id:
            raise IntegrityError(f"server returned clean room id {out.get('id')}, "
                                 f"but the definition hashes to {definition.id}")
        return AnalyticsDcr(self, definition.id, definition.definition)

    def retrieve_analytics_dcr(self, dcr_id: str) -> "AnalyticsDcr":
        """Fetch a published clean room the user takes part in, checking
        that its definition hashes to ``dcr_id``."""
        from .analytics import AnalyticsDcr, canonical_definition, definition_id
        out = self._call("GET", "/api/v1/dcrs/" + _q(dcr_id))
        definition = out["definition"]
        got = definition_id(canonical_definition(definition))
        if got != dcr_id:
            raise IntegrityError(f"server returned a definition that hashes to {got}, not to the requested id {dcr_id}")
        datasets = [Dataset.from_json(d) for d in out.get("datasets") or []]
        return AnalyticsDcr(self, dcr_id, definition, datasets=datasets,
                            published_by=out.get("published_by", ""), published_at=out.get("published_at", ""))

    def retrieve_audit_log(self, dcr_id: str, verified_before: Optional[Tuple[int, str]] = None) -> List[dict]:
        """The audit log of a clean room the user takes part in, oldest
        first, once its hash chain is verified (:func:`verify_audit_log`);
        raises :class:`~cleanroom.IntegrityError` if the server's copy was
        changed. The chain alone cannot show a log rewritten hashes and
        all: pass the ``(seq, hash)`` of the last entry you verified before
        and the log must still hold it."""
        log = self._call("GET", "/api/v1/dcrs/" + _q(dcr_id) + "/audit")
        verify_audit_log(dcr_id, log)
        if verified_before is not None:
            seq, want = verified_before
            if not 1 <= seq <= len(log):
                raise IntegrityError(f"the audit log has {len(log)} entries, but entry {seq} was verified before, so entries were removed")
            if log[seq - 1]["hash"] != want:
                raise IntegrityError(f"audit log entry {seq} is not the one verified before, so the log was rewritten")
        return log

    def list_analytics_dcrs(self) -> List[DcrSummary]:
        """The clean rooms the user owns or takes part in."""
        return [DcrSummary(d["id"], d.get("name", ""), d.get("owner", ""), d.get("published_at", ""))
                for d in self._call("GET", "/api/v1/dcrs") or []]

    # --- Drafts -------------------------------------------------------------

    def create_analytics_dcr_draft(self, definition: Any) -> "AnalyticsDcrDraft":
        """Save a definition (built by
        :class:`~cleanroom.analytics.AnalyticsDcrBuilder`, possibly still
        incomplete) as a new draft, visible to this user only, and return it."""
        from .analytics import AnalyticsDcrDraft, _as_definition
        return AnalyticsDcrDraft(self, self._call("POST", "/api/v1/drafts", _as_definition(definition).canonical))

    def retrieve_analytics_dcr_draft(self, draft_id: str) -> "AnalyticsDcrDraft":
        """One of this user's drafts."""
        from .analytics import AnalyticsDcrDraft
        return AnalyticsDcrDraft(self, self.get_draft(draft_id))

    def list_analytics_dcr_drafts(self) -> "List[AnalyticsDcrDraft]":
        """This user's drafts, published ones included (with ``published_id``)."""
        from .analytics import AnalyticsDcrDraft
        return [AnalyticsDcrDraft(self, d) for d in self._call("GET", "/api/v1/drafts") or []]

    def get_draft(self, draft_id: str) -> dict:
        """A draft as the server returns it (JSON)."""
        return self._call("GET", _draft_path(draft_id))

    def update_draft(self, draft_id: str, definition: "AnalyticsDcrDefinition") -> dict:
        """Replace a draft's definition; returns the draft (JSON)."""
        return self._call("PUT", _draft_path(draft_id), definition.canonical)

    def delete_draft(self, draft_id: str) -> None:
        """Delete a draft and its test datasets."""
        self._call("DELETE", _draft_path(draft_id))

    def put_test_dataset(self, draft_id: str, node: str, data: Union[bytes, str, BinaryIO]) -> int:
        """Attach test data (bytes, text sent as UTF-8, or a binary file
        object) to a data node of a draft; returns its size. Test data is
        not real data and is sent as is, not encrypted here."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, (bytes, bytearray, memoryview)):
            body: Union[bytes, Iterable[bytes]] = bytes(data)
            length: Optional[int] = len(body)  # type: ignore[arg-type]
        else:
            length = _remaining_size(data)
            if length is not None and length > MAX_TEST_DATASET_SIZE:
                raise TooLargeError(f"test data is {length} bytes; the limit is 64 MiB (test data only has to exercise the scripts)")
            body = _read_pieces(data if length is None else _LimitedReader(data, length))
        sent = 0

        def counted(pieces: Iterable[bytes]) -> Iterator[bytes]:
            nonlocal sent
            for piece in pieces:
                sent += len(piece)
                yield piece

        path = _draft_path(draft_id) + "/nodes/" + _q(node) + "/test-dataset"
        conn, resp = self._request("PUT", path, counted([body] if isinstance(body, bytes) else body),
                                   content_type="application/octet-stream", length=length)
        try:
            resp.read()
        finally:
            conn.close()
        return sent

    def delete_test_dataset(self, draft_id: str, node: str) -> None:
        """Detach the test data of a draft's data node."""
        self._call("DELETE", _draft_path(draft_id) + "/nodes/" + _q(node) + "/test-dataset")

    def test_draft(self, draft_id: str) -> "DraftTestResult":
        """Start "test all computations" on a draft and return its outcome
        once every node has been tested."""
        from .analytics import DraftTestResult
        self._call("POST", _draft_path(draft_id) + "/tests")
        while True:
            test = self._call("GET", _draft_path(draft_id) + "/tests/latest?wait=30s")
            if test.get("state") == "done":  # this test, or one started after it
                return DraftTestResult.from_json(test)

    def publish_draft(self, draft: "AnalyticsDcrDraft") -> "AnalyticsDcr":
        """Publish a draft and return the clean room. The server's draft
        must hold the definition ``draft`` holds, and the published id must
        be that definition's (see :meth:`AnalyticsDcrDraft.publish`)."""
        from .analytics import AnalyticsDcr, AnalyticsDcrDefinition
        expected = draft.definition
        current = AnalyticsDcrDefinition(self.get_draft(draft.id).get("definition") or {})
        if current.canonical != expected.canonical:
            raise ConflictError(f"draft {draft.id} on the server is no longer the definition this copy holds "
                                "(it was changed since it was read); read it again and check it before publishing")
        out = self._call("POST", _draft_path(draft.id) + "/publish")
        if out.get("id") != expected.id:
            raise IntegrityError(f"server published draft {draft.id} as clean room {out.get('id')}, "
                                 f"but its definition hashes to {expected.id}")
        draft.published_id = expected.id
        return AnalyticsDcr(self, expected.id, expected.definition)

    # --- Datasets -----------------------------------------------------------

    def upload_dataset(self, data: BinaryIO, key: Key, file_name: Optional[str] = None) -> str:
        """Encrypt a binary stream with ``key`` on this machine and upload
        the ciphertext, in constant memory at any size. Returns the manifest
        hash (SHA-256 of the ciphertext) to publish it with.

        A stream whose remaining size can be known (a seekable file) is sent
        with its exact length, others chunked; either way the server keeps
        nothing of an upload cut short. ``file_name`` is accepted for
        compatibility but not stored: a dataset is named by its data node.
        """
        size = _remaining_size(data)
        source: BinaryIO = data if size is None else _LimitedReader(data, size)
        expected = None if size is None else crypto.ciphertext_size(size)
        h = hashlib.sha256()
        sent = 0

        def ciphertext() -> Iterable[bytes]:
            nonlocal sent
            for piece in crypto.encrypt_stream(source, key.material, crypto.DATASET_AD):
                h.update(piece)
                sent += len(piece)
                yield piece
            if expected is not None and sent != expected:
                # Leave the request short: the server then discards it.
                raise ValueError(f"the data ended after {size - source.remaining} of the "
                                 f"{size} bytes it had when the upload started; nothing was stored")

        conn, resp = self._request("POST", "/api/v1/blobs", _prefetch(ciphertext()),
                                   content_type="application/octet-stream", length=expected)
        try:
            blob = json.loads(resp.read())
        finally:
            conn.close()
        if size is not None and data.read(1):
            raise ValueError(f"the data grew beyond the {size} bytes it had when the upload started; "
                             "only those were uploaded, and nothing was published")
        digest = h.hexdigest()
        if blob.get("hash") != digest:
            raise IntegrityError(f"server stored the upload as {blob.get('hash')} but the ciphertext sent "
                                 f"hashes to {digest}; upload again")
        return digest

    def publish_dataset(self, dcr_id: str, node: str, manifest_hash: str, key: Key) -> Dataset:
        """Publish an uploaded ciphertext to a data node, sealing ``key`` to
        the enclave (checked against the enclave specifications) for exactly
        this clean room, node and ciphertext."""
        att = self.enclave()
        sealed = crypto.seal_dataset_key(att.public_key, dcr_id, node, manifest_hash, key.material)
        body = {"manifest_hash": manifest_hash, "sealed_key": base64.b64encode(sealed).decode()}
        return Dataset.from_json(self._call("PUT", _node_path(dcr_id, node) + "/dataset", body))

    def upload_and_publish_dataset(self, dcr_id: str, node: str, data: BinaryIO, key: Key,
                                   file_name: Optional[str] = None) -> Dataset:
        """Upload a dataset and publish it to a data node (see
        :meth:`upload_dataset` and :meth:`publish_dataset`)."""
        self.enclave()  # refuse an untrusted enclave before spending the upload
        manifest_hash = self.upload_dataset(data, key, file_name)
        return self.publish_dataset(dcr_id, node, manifest_hash, key)

    def get_validation_report(self, dcr_id: str, node: str) -> dict:
        """The validation report of the dataset published to a table node,
        once the enclave has checked it (see
        :meth:`~cleanroom.analytics.TableDataNode.get_validation_report_as_dict`)."""
        waited = None
        while True:
            view = self._call("GET", "/api/v1/dcrs/" + _q(dcr_id))
            job = next((d.get("validation_job") for d in view.get("datasets") or [] if d.get("node") == node), None)
            if job:
                self.wait_for_job(job)
            try:
                report = io.BytesIO()
                self._sealed_download(_node_path(dcr_id, node) + "/dataset/report?job=" + _q(job or ""), job or "",
                                      crypto.result_ad, report)
                return json.loads(report.getvalue())
            except ConflictError:
                # Another dataset was published meanwhile: wait for its check.
                if not job or job == waited:
                    raise
                waited = job

    def remove_dataset(self, dcr_id: str, node: str) -> None:
        """Remove the dataset published to a data node."""
        self._call("DELETE", _node_path(dcr_id, node) + "/dataset")

    # --- Jobs -------------------------------------------------------------

    def run_computation(self, dcr_id: str, node: str) -> Job:
        """Start a computation; returns its queued job."""
        return Job.from_json(self._call("POST", _node_path(dcr_id, node) + "/jobs"))

    def list_jobs(self, dcr_id: str, node: str) -> List[Job]:
        """The jobs of a compute node, newest first."""
        return [Job.from_json(j) for j in self._call("GET", _node_path(dcr_id, node) + "/jobs") or []]

    def get_job(self, job_id: str) -> Job:
        """A job's current status."""
        return Job.from_json(self._call("GET", "/api/v1/jobs/" + _q(job_id)))

    def wait_for_job(self, job_id: str) -> Job:
        """Return the job once it has ended. The server holds each request
        until the job ends (or 30 s pass), so the end is seen at once."""
        while True:
            job = Job.from_json(self._call("GET", "/api/v1/jobs/" + _q(job_id) + "?wait=30s"))
            if job.done:
                return job

    def cancel_job(self, job_id: str) -> None:
        """Cancel a queued or running job."""
        self._call("POST", "/api/v1/jobs/" + _q(job_id) + "/cancel")

    def delete_result(self, job_id: str) -> None:
        """Delete an ended job's result and logs for good; only the analyst
        who ran the job may. The job stays, with ``result_deleted_at``."""
        self._call("DELETE", "/api/v1/jobs/" + _q(job_id) + "/result")

    def get_logs(self, job_id: str) -> str:
        """A job's logs, where the node's log policy releases them."""
        logs = io.BytesIO()
        self._sealed_download("/api/v1/jobs/" + _q(job_id) + "/logs", job_id, crypto.logs_ad, logs)
        return logs.getvalue().decode("utf-8", "replace")

    def download_result(self, job_id: str, out: BinaryIO) -> int:
        """Write the result zip of a succeeded job to ``out``; returns its
        size. On an error ``out`` may hold a part of it, which must be
        discarded (:meth:`download_result_file` does)."""
        return self._sealed_download("/api/v1/jobs/" + _q(job_id) + "/result", job_id, crypto.result_ad, out)

    def _sealed_download(self, path: str, job_id: str, associated_data, out: BinaryIO) -> int:
        """Fetch a job's stored result, logs or validation report sealed to
        a key made for this request, write it decrypted to ``out`` and
        return how many bytes that was; ``associated_data(job_id)`` names
        it. The server sends the stored ciphertext and that ciphertext's
        own key sealed to the key made here (so nothing between sees the
        plaintext). A tampered or cut stream raises :class:`IntegrityError`;
        ``out`` may then hold a part and must be discarded."""
        private = os.urandom(32)  # any 32 bytes are an X25519 private key
        recipient = base64.b64encode(crypto.public_key_of(private)).decode()
        conn, resp = self._request("GET", path, headers={"X-Cleanroom-Recipient": recipient})
        try:
            try:
                sealed = base64.b64decode(resp.getheader("X-Cleanroom-Sealed-Key") or "", validate=True)
            except ValueError:
                sealed = b""
            if not sealed:
                raise IntegrityError("the server sent no key sealed to this client (X-Cleanroom-Sealed-Key): it, "
                                     "or a proxy between, is older than this SDK or drops the header")
            file_key = crypto.open_sealed(private, crypto.download_key_info(associated_data(job_id)), sealed)
            n = 0
            for chunk in crypto.decrypt_stream_with_file_key(resp, file_key):
                out.write(chunk)
                n += len(chunk)
        except (OSError, http.client.HTTPException) as e:
            raise UnreachableError(f"download of {path} broke off: {e}") from None
        finally:
            conn.close()
        return n

    def download_result_file(self, job_id: str) -> BinaryIO:
        """The result zip of a succeeded job as a seekable file (in memory
        when small, else a temporary file), positioned at its start."""
        f = tempfile.SpooledTemporaryFile(max_size=16 << 20)
        try:
            self.download_result(job_id, f)
        except BaseException:
            f.close()
            raise
        f.seek(0)
        return f  # type: ignore[return-value]


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def _node_path(dcr_id: str, node: str) -> str:
    return f"/api/v1/dcrs/{_q(dcr_id)}/nodes/{_q(node)}"


def _draft_path(draft_id: str) -> str:
    return "/api/v1/drafts/" + _q(draft_id)


MAX_TEST_DATASET_SIZE = 64 << 20
"""The largest test dataset the server accepts."""


def _read_pieces(stream: Any) -> Iterator[bytes]:
    while True:
        piece = stream.read(_BODY_CHUNK)
        if not piece:
            return
        if not isinstance(piece, (bytes, bytearray)):
            raise TypeError(f"test data must be bytes, text or a binary file object, not a stream of {type(piece).__name__}")
        yield bytes(piece)


def _remaining_size(data: BinaryIO) -> Optional[int]:
    """Bytes left in a seekable stream, or None if it cannot tell."""
    try:
        if not data.seekable():
            return None
        pos = data.tell()
        end = data.seek(0, io.SEEK_END)
        data.seek(pos)
        return max(0, end - pos)
    except (AttributeError, OSError, ValueError):
        return None


def _prefetch(pieces: Iterable[bytes], depth: int = 3) -> Iterator[bytes]:
    """Run an iterator in a background thread, a few items ahead of the
    consumer: the upload encrypts and hashes the next segments while the
    current one is being sent (both release the GIL). Exceptions of the
    iterator are raised in the consumer; a consumer that stops early stops
    the thread."""
    q: "queue.Queue[tuple]" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for piece in pieces:
                if not put((piece, None)):
                    return
            put((None, None))
        except BaseException as e:  # handed to the consumer
            put((None, e))

    worker = threading.Thread(target=produce, name="cleanroom-encrypt", daemon=True)
    worker.start()
    try:
        while True:
            piece, err = q.get()
            if err is not None:
                raise err
            if piece is None:
                return
            yield piece
    finally:
        stop.set()
        worker.join()


class _LimitedReader:
    """Reads at most ``remaining`` bytes from a stream, so an upload sends
    exactly the length it announced."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.remaining = size

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.remaining:
            n = self.remaining
        if n == 0:
            return b""
        data = self._stream.read(n)
        if data:
            self.remaining -= len(data)
        return data


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it, which audit hashes are
    computed over: no spaces, UTF-8, and <, >, &, U+2028, U+2029 escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, "\\u%04x" % ord(ch))
    return text


def _micro_time(at: str) -> str:
    """An RFC 3339 UTC time with exactly six fraction digits."""
    if not at.endswith("Z"):
        raise IntegrityError(f"audit entry time {at} is not UTC")
    whole, _, frac = at[:-1].partition(".")
    return f"{whole}.{(frac + '000000')[:6]}Z"


def audit_hash(dcr_id: str, entry: dict) -> str:
    """The hash an audit log entry of clean room ``dcr_id`` must have
    (docs/formats.md, "Audit log chain")."""
    canonical = _go_json({"dcr": dcr_id, "seq": entry["seq"], "at": _micro_time(entry["at"]),
                          "actor": entry["actor"], "action": entry["action"], "node": entry.get("node", ""),
                          "detail": entry.get("detail", ""), "prev": entry["prev"]})
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_audit_log(dcr_id: str, log: List[dict]) -> None:
    """Check a clean room's whole audit log: numbered from 1 without gaps,
    each entry chained to the one before, each hash its own. Raises
    :class:`~cleanroom.IntegrityError` saying which entry fails."""
    prev = ""
    for i, entry in enumerate(log, 1):
        if entry.get("seq") != i:
            raise IntegrityError(f"audit log entry {i} has number {entry.get('seq')}, so entries are missing or reordered")
        if entry.get("prev") != prev:
            raise IntegrityError(f"audit log entry {i} does not follow entry {i - 1}, so the log was changed")
        if audit_hash(dcr_id, entry) != entry.get("hash"):
            raise IntegrityError(f"audit log entry {i} does not match its hash, so it was changed")
        prev = entry["hash"]
