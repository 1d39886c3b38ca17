"""The SDK against the real server: every error code, failed jobs,
definition ids, datasets and results."""

from __future__ import annotations

import datetime
import hashlib
import io
import ipaddress
import json
import os
import tempfile
import unittest
import warnings
from typing import Tuple
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import harness
import cleanroom
from cleanroom import crypto
from cleanroom.analytics import (AnalyticsDcrBuilder, FileContent, PythonComputeNodeDefinition,
                                 RawDataNodeDefinition, canonical_definition)
from cleanroom.enclave_specifications import EnclaveSpecifications, WorkerSpec

server: harness.Server
owner: cleanroom.Client


def setUpModule() -> None:
    global server, owner
    server = harness.Server()
    owner = server.client("owner@example.com")
    warnings.simplefilter("ignore", cleanroom.EnclaveSoftwareWarning)


def tearDownModule() -> None:
    server.stop()


class Stream(io.RawIOBase):
    """A non-seekable stream (a pipe, say): uploaded chunked."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        return self._f.readinto(b)


class ErrorCodesTest(unittest.TestCase):
    """Every API error arrives as the CleanroomError subclass of its code,
    with the server's message."""

    def assertCode(self, cm, cls, code: str, words: str) -> None:
        err = cm.exception
        self.assertIsInstance(err, cls)
        self.assertIsInstance(err, cleanroom.CleanroomError)
        self.assertEqual(err.code, code)
        self.assertIn(words, err.message)
        self.assertTrue(str(err).startswith(code + ": "))

    def test_invalid(self) -> None:
        b = harness.uppercase_builder(owner, "invalid")
        b.add_node_definition(PythonComputeNodeDefinition("broken", "print(1)", dependencies=["nowhere"]))
        with self.assertRaises(cleanroom.InvalidError) as cm:
            owner.publish_analytics_dcr(b.build())
        self.assertCode(cm, cleanroom.InvalidError, "invalid", 'unknown dependency "nowhere"')

    def test_unauthorized(self) -> None:
        wrong_token = cleanroom.create_client("owner@example.com", "crt_not-a-token", url=server.url)
        with self.assertRaises(cleanroom.UnauthorizedError) as cm:
            wrong_token.list_analytics_dcrs()
        self.assertCode(cm, cleanroom.UnauthorizedError, "unauthorized", "")
        other_email = cleanroom.create_client("someone@example.com", owner._token, url=server.url)
        with self.assertRaises(cleanroom.UnauthorizedError) as cm:
            other_email.upload_and_publish_dataset("00" * 32, "n", io.BytesIO(b"x"), cleanroom.Key())
        self.assertCode(cm, cleanroom.UnauthorizedError, "unauthorized", "does not belong to someone@example.com")

    def test_forbidden(self) -> None:
        viewer = server.client("viewer@example.com")
        with self.assertRaises(cleanroom.ForbiddenError) as cm:
            viewer.publish_analytics_dcr(harness.uppercase_builder(owner, "not mine").build())
        self.assertCode(cm, cleanroom.ForbiddenError, "forbidden", "published by its owner")

        dcr = owner.publish_analytics_dcr(
            harness.uppercase_builder(owner, "forbidden", [("viewer@example.com", [], [])]).build())
        as_viewer = viewer.retrieve_analytics_dcr(dcr.id)  # a participant may read it
        with self.assertRaises(cleanroom.ForbiddenError) as cm:
            as_viewer.get_node("uppercase_text_node").run_computation()
        self.assertCode(cm, cleanroom.ForbiddenError, "forbidden", "not an analyst")
        with self.assertRaises(cleanroom.ForbiddenError) as cm:
            as_viewer.get_node("input_data_node").upload_and_publish_dataset(io.BytesIO(b"x"), cleanroom.Key(), "x")
        self.assertCode(cm, cleanroom.ForbiddenError, "forbidden", "not a data owner")

    def test_not_found(self) -> None:
        dcr = owner.publish_analytics_dcr(harness.uppercase_builder(owner, "not found").build())
        stranger = server.client("stranger@example.com")
        with self.assertRaises(cleanroom.NotFoundError) as cm:
            stranger.retrieve_analytics_dcr(dcr.id)
        self.assertCode(cm, cleanroom.NotFoundError, "not_found", "not a participant")
        with self.assertRaises(cleanroom.NotFoundError) as cm:
            owner.retrieve_analytics_dcr("ab" * 32)
        self.assertCode(cm, cleanroom.NotFoundError, "not_found", "not found")
        with self.assertRaises(cleanroom.NotFoundError) as cm:
            owner.get_job("no-such-job")
        self.assertCode(cm, cleanroom.NotFoundError, "not_found", "no-such-job")
        with self.assertRaises(cleanroom.NotFoundError) as cm:
            dcr.get_node("no_such_node")
        self.assertCode(cm, cleanroom.NotFoundError, "not_found", "no node 'no_such_node'")

    def test_conflict(self) -> None:
        dcr = owner.publish_analytics_dcr(harness.uppercase_builder(owner, "conflict").build())
        node = dcr.get_node("uppercase_text_node")
        with self.assertRaises(cleanroom.ConflictError) as cm:
            node.run_computation()
        self.assertCode(cm, cleanroom.ConflictError, "conflict", '"input_data_node" is required but has no dataset')

        dcr.get_node("input_data_node").upload_and_publish_dataset(io.BytesIO(b"abc"), cleanroom.Key(), "abc.txt")
        job = node.run_computation()
        self.assertEqual(job.state, "queued")
        self.assertEqual(node.wait_for_computation(job).state, "succeeded")
        with self.assertRaises(cleanroom.ConflictError) as cm:
            node.cancel_computation(job)
        self.assertCode(cm, cleanroom.ConflictError, "conflict", "already ended (succeeded)")

    def test_too_large(self) -> None:
        b = harness.uppercase_builder(owner, "too large")
        b.add_node_definition(PythonComputeNodeDefinition("big", "x = 1\n#" + "x" * (4 << 20)))
        with self.assertRaises(cleanroom.TooLargeError) as cm:
            owner.publish_analytics_dcr(b.build())
        self.assertCode(cm, cleanroom.TooLargeError, "too_large", "larger than 4 MiB")


class DefinitionTest(unittest.TestCase):
    def test_canonical_bytes_equal_go(self) -> None:
        # The definition and expected bytes of TestCanonicalID in dcr_test.go.
        b = AnalyticsDcrBuilder().with_name("n <&>").with_owner("owner@example.com")
        b.add_node_definition(PythonComputeNodeDefinition("c", "print('<é>')"))
        b.add_participant("owner@example.com", analyst_of=["c"])
        d = b.build()
        want = ('{"name":"n <&>","nodes":[{"kind":"python","name":"c","script":"print(\'<é>\')"}],'
                '"owner":"owner@example.com","participants":[{"analyst_of":["c"],"email":"owner@example.com"}]}')
        self.assertEqual(d.canonical, want.encode())
        self.assertEqual(d.id, hashlib.sha256(want.encode()).hexdigest())

    def test_doc_example(self) -> None:
        """The worked example of docs/formats.md section 5."""
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "formats.md"), encoding="utf-8") as f:
            doc = f.read()

        def block(name: str) -> str:
            return doc.split(" " + name + "\n", 1)[1].split("\n```", 1)[0]

        canonical = canonical_definition(json.loads(block("definition-example")))
        self.assertEqual(canonical, block("canonical-example").encode())
        self.assertEqual(hashlib.sha256(canonical).hexdigest(), block("id-example"))

    def test_server_computes_the_same_id(self) -> None:
        # Text the two JSON encoders could treat differently: HTML characters,
        # non-ASCII, U+2028/9 (Go escapes them), control characters, DEL.
        tricky = "<&> é ü 中文 🙂 \u2028\u2029 \x7f \x85 \ufeff \" \\ / \n\t\r\b\f \x00\x01\x1f"
        b = (AnalyticsDcrBuilder(client=owner).with_name("ids " + tricky.replace("\n", " "))
             .with_description(tricky))
        b.add_node_definition(RawDataNodeDefinition("data", is_required=False))
        b.add_node_definition(PythonComputeNodeDefinition(
            "c", "print(1)  # " + tricky, additional_files={"notes.txt": tricky.encode()},
            dependencies=["data"], enable_logs_on_error=True))
        b.add_participant(owner.user_email, data_owner_of=["data"], analyst_of=["c"])
        d = b.build()
        self.assertIn(b"\\u2028", d.canonical)
        dcr = owner.publish_analytics_dcr(d)  # refuses a server id that differs
        self.assertEqual(dcr.id, d.id)
        again = owner.publish_analytics_dcr(b.build())
        self.assertEqual(again.id, d.id)
        fetched = owner.retrieve_analytics_dcr(d.id)  # re-hashes what the server returns
        self.assertEqual(fetched.definition["description"], tricky)
        self.assertIn(d.id, [s.id for s in owner.list_analytics_dcrs()])

    def test_owner_defaults_to_client_user_and_files_forms_agree(self) -> None:
        a = AnalyticsDcrBuilder(client=owner).with_name("x")
        a.add_node_definition(PythonComputeNodeDefinition("c", b"print(1)", additional_files=[FileContent("f", b"1")]))
        b = AnalyticsDcrBuilder().with_name("x").with_owner(owner.user_email)
        b.add_node_definition(PythonComputeNodeDefinition("c", "print(1)", additional_files={"f": "1"}))
        self.assertEqual(a.build().canonical, b.build().canonical)
        self.assertEqual(a.build().definition["owner"], "owner@example.com")
        with self.assertRaises(ValueError):
            PythonComputeNodeDefinition("c", b"\xff")

    def test_refuses_a_definition_that_does_not_hash_to_its_id(self) -> None:
        dcr = owner.publish_analytics_dcr(harness.uppercase_builder(owner, "pinned").build())
        real = owner._call

        def tampered(method, path, body=None):
            out = real(method, path, body)
            if method == "GET" and path.endswith(dcr.id):
                out["definition"]["nodes"][1]["script"] += "\nimport os"
            return out

        with mock.patch.object(owner, "_call", side_effect=tampered):
            with self.assertRaises(cleanroom.IntegrityError):
                owner.retrieve_analytics_dcr(dcr.id)
        self.assertEqual(canonical_definition(owner.retrieve_analytics_dcr(dcr.id).definition),
                         harness.uppercase_builder(owner, "pinned").build().canonical)


class JobsTest(unittest.TestCase):
    def publish(self, name: str, script: str, **node_args) -> cleanroom.analytics.AnalyticsDcr:
        b = AnalyticsDcrBuilder(client=owner).with_name(name).with_owner(owner.user_email)
        b.add_node_definition(RawDataNodeDefinition("data"))
        b.add_node_definition(PythonComputeNodeDefinition("job", script, dependencies=["data"], **node_args))
        b.add_participant(owner.user_email, data_owner_of=["data"], analyst_of=["job"])
        return owner.publish_analytics_dcr(b.build())

    def test_failure_with_logs_carries_last_traceback_line(self) -> None:
        dcr = self.publish("fails with logs", "print('working')\nraise ValueError('boom')\n", enable_logs_on_error=True)
        node = dcr.get_node("job")
        with self.assertRaises(cleanroom.JobFailed) as cm:
            node.run_computation_and_get_results_as_zip()
        err = cm.exception
        self.assertIsInstance(err, cleanroom.CleanroomError)
        self.assertEqual(err.code, "failed")
        self.assertEqual(err.job.state, "failed")
        self.assertEqual(err.message, err.job.error)
        self.assertEqual(err.message, "script exited with status 1: ValueError: boom")
        logs = node.get_logs(err.job)
        self.assertIn("working", logs)
        self.assertIn("Traceback", logs)

    def test_failure_without_logs_says_so(self) -> None:
        dcr = self.publish("fails quietly", "raise ValueError('secret data')\n")
        with self.assertRaises(cleanroom.JobFailed) as cm:
            dcr.get_node("job").run_computation_and_get_results_as_zip()
        self.assertIn("script exited with status 1", str(cm.exception))
        self.assertIn("logs are disabled", str(cm.exception))
        self.assertNotIn("secret data", str(cm.exception))
        with self.assertRaises(cleanroom.ForbiddenError):
            dcr.get_node("job").get_logs(cm.exception.job)

    def test_limit_hit(self) -> None:
        limited = harness.Server("--job-timeout", "1s")
        try:
            c = limited.client("owner@example.com")
            b = AnalyticsDcrBuilder(client=c).with_name("slow")
            b.add_node_definition(PythonComputeNodeDefinition("job", "import time\ntime.sleep(60)\n"))
            b.add_participant(c.user_email, analyst_of=["job"])
            dcr = c.publish_analytics_dcr(b.build())
            with self.assertRaises(cleanroom.JobFailed) as cm:
                dcr.get_node("job").run_computation_and_get_results_as_zip()
            self.assertIn("time limit of 1s", str(cm.exception))
        finally:
            limited.stop()

    def test_dependencies_static_files_and_datasets(self) -> None:
        b = AnalyticsDcrBuilder(client=owner).with_name("pipeline").with_description("two steps")
        b.add_node_definition(RawDataNodeDefinition("numbers", is_required=True))
        b.add_node_definition(PythonComputeNodeDefinition(
            "total",
            "import os\nos.makedirs('/output/sub')\n"
            "factor = int(open('/input/code/factor.txt').read())\n"
            "nums = [int(x) for x in open('/input/numbers').read().split()]\n"
            "open('/output/sub/total.txt', 'w').write(str(factor * sum(nums)))\nprint('done')\n",
            additional_files=[FileContent("factor.txt", b"10")], dependencies=["numbers"],
            enable_logs_on_success=True))
        b.add_node_definition(PythonComputeNodeDefinition(
            "report", "t = open('/input/total/sub/total.txt').read()\nopen('/output/report.txt', 'w').write('total=' + t)\n",
            dependencies=["total"]))
        b.add_participant(owner.user_email, data_owner_of=["numbers"], analyst_of=["total", "report"])
        dcr = owner.publish_analytics_dcr(b.build())

        numbers = dcr.get_node("numbers")
        key = cleanroom.Key()
        ds = numbers.upload_and_publish_dataset(Stream(b"1 2 3 4"), key, "numbers.txt")  # chunked upload
        self.assertEqual(ds.size, crypto.ciphertext_size(7))
        self.assertEqual(ds.node, "numbers")

        total = dcr.get_node("total")
        job = total.run_computation()
        zf = total.get_results_as_zip(job)
        self.assertEqual(zf.read("sub/total.txt"), b"100")
        self.assertEqual(total.get_logs(job).strip(), "done")
        self.assertEqual([j.id for j in total.list_jobs()], [job.id])
        report = dcr.get_node("report").run_computation_and_get_results_as_zip()
        self.assertEqual(report.read("report.txt"), b"total=100")

        # The same ciphertext, published to another clean room with the same key.
        other = self.publish("reuse", "open('/output/o', 'w').write(open('/input/data').read())\n")
        other.get_node("data").publish_dataset(ds.manifest_hash, key)
        self.assertEqual(other.get_node("job").run_computation_and_get_results_as_zip().read("o"), b"1 2 3 4")
        # The server cannot tell a wrong dataset key (it holds no plaintext);
        # the enclave finds out when it decrypts, and the job fails.
        other.get_node("data").publish_dataset(ds.manifest_hash, cleanroom.Key())
        with self.assertRaises(cleanroom.JobFailed) as cm:
            other.get_node("job").run_computation_and_get_results_as_zip()
        self.assertIn('integrity check failed for the dataset of node "data"', str(cm.exception))

        self.assertEqual([d.node for d in owner.retrieve_analytics_dcr(dcr.id).datasets], ["numbers"])
        numbers.remove_published_dataset()
        self.assertEqual(owner.retrieve_analytics_dcr(dcr.id).datasets, [])
        with self.assertRaises(cleanroom.ConflictError):
            total.run_computation()

    def test_tampered_or_cut_result_and_logs_are_refused(self) -> None:
        """A result or log changed or cut in the server's storage (or on the
        way) is refused by the SDK, never handed over."""
        dcr = self.publish("tampered", "print('logged')\nopen('/output/o', 'w').write('x' * 100000)\n",
                           enable_logs_on_success=True)
        node = dcr.get_node("job")
        job = node.run_computation()
        self.assertEqual(node.get_results_as_zip(job).read("o"), b"x" * 100000)
        self.assertEqual(node.get_logs(job).strip(), "logged")
        blobs = os.path.join(server.data_dir, "blobs")
        result = os.path.join(blobs, "results", job.id + ".zip")
        logs = os.path.join(blobs, "logs", job.id)
        with open(result, "r+b") as f:
            f.seek(os.path.getsize(result) // 2)
            byte = f.read(1)
            f.seek(-1, io.SEEK_CUR)
            f.write(bytes([byte[0] ^ 1]))
        with self.assertRaises(cleanroom.IntegrityError):
            node.get_results_as_zip(job)
        os.truncate(logs, os.path.getsize(logs) - 1)
        with self.assertRaises(cleanroom.IntegrityError):
            node.get_logs(job)

    def test_delete_results(self) -> None:
        dcr = self.publish("deleted", "print('hi')\nopen('/output/o', 'w').write('x')\n", enable_logs_on_success=True)
        node = dcr.get_node("job")
        job = node.run_computation()
        self.assertEqual(node.get_results_as_zip(job).read("o"), b"x")
        node.delete_results(job)
        with self.assertRaises(cleanroom.NotFoundError) as cm:
            node.get_results_as_zip(job)
        self.assertIn("were deleted by", str(cm.exception))
        with self.assertRaises(cleanroom.NotFoundError):
            node.get_logs(job)
        with self.assertRaises(cleanroom.ConflictError):
            node.delete_results(job)
        listed = node.list_jobs()[0]
        self.assertEqual((listed.id, listed.state, listed.result_size), (job.id, "succeeded", 0))
        self.assertIsNotNone(listed.result_deleted_at)

    def test_upload_sizes_and_rejections(self) -> None:
        dcr = self.publish("sizes", "import os\nopen('/output/n', 'w').write(str(os.path.getsize('/input/data')))\n")
        data, job = dcr.get_node("data"), dcr.get_node("job")
        for size in (0, crypto.FIRST_SEGMENT_PLAINTEXT, crypto.FIRST_SEGMENT_PLAINTEXT + 1):
            with self.subTest(size=size):
                f = io.BytesIO(b"\x00" * 3 + os.urandom(size))
                f.seek(3)  # only what is left is uploaded
                data.upload_and_publish_dataset(f, cleanroom.Key(), "f")
                self.assertEqual(job.run_computation_and_get_results_as_zip().read("n"), str(size).encode())
        with self.assertRaises(TypeError):
            data.upload_and_publish_dataset(io.StringIO("text"), cleanroom.Key(), "f")

        class Shrinking(io.BytesIO):
            """A file that is cut short while it is being uploaded."""

            def seek(self, pos: int, whence: int = 0) -> int:
                return super().seek(pos, whence) + (5 if whence == io.SEEK_END else 0)

        with self.assertRaisesRegex(ValueError, "ended after 7 of the 12 bytes"):
            data.upload_and_publish_dataset(Shrinking(b"1234567"), cleanroom.Key(), "f")


class AuditLogTest(unittest.TestCase):
    def test_log_of_a_run_verifies_and_a_changed_one_does_not(self) -> None:
        b = AnalyticsDcrBuilder(client=owner).with_name("audited").with_owner(owner.user_email)
        b.add_node_definition(RawDataNodeDefinition("data"))
        b.add_node_definition(PythonComputeNodeDefinition("job", "open('/output/n.txt', 'w').write('1')\n", dependencies=["data"]))
        b.add_participant(owner.user_email, data_owner_of=["data"], analyst_of=["job"])
        dcr = owner.publish_analytics_dcr(b.build())
        key = cleanroom.Key()
        ds = dcr.get_node("data").upload_and_publish_dataset(io.BytesIO(b"rows"), key, "rows.txt")
        dcr.get_node("job").run_computation_and_get_results_as_zip()

        log = dcr.retrieve_audit_log()
        self.assertEqual([(e["actor"], e["action"], e.get("node", "")) for e in log], [
            (owner.user_email, "dcr.published", ""),
            (owner.user_email, "dataset.published", "data"),
            (owner.user_email, "job.requested", "job"),
            ("enclave", "job.ended", "job"),
            (owner.user_email, "result.read", "job"),
        ])
        self.assertEqual(log[1]["detail"], ds.manifest_hash)

        for change in (lambda l: l[2].update(actor="eve@example.com"),  # who ran it
                       lambda l: l.pop(1),  # an entry removed
                       lambda l: l[4].update(action="logs.read")):  # what was done
            changed = [dict(e) for e in log]
            change(changed)
            with mock.patch.object(owner, "_call", return_value=changed):
                with self.assertRaises(cleanroom.IntegrityError):
                    dcr.retrieve_audit_log()

        # Rewritten hashes and all, the log verifies alone; the entry kept shows it.
        from cleanroom.client import audit_hash
        rewritten = [dict(e) for e in log]
        rewritten[2]["actor"] = "eve@example.com"
        for i in range(2, len(rewritten)):
            rewritten[i]["prev"] = rewritten[i - 1]["hash"]
            rewritten[i]["hash"] = audit_hash(dcr.id, rewritten[i])
        with mock.patch.object(owner, "_call", return_value=rewritten):
            dcr.retrieve_audit_log()
            with self.assertRaises(cleanroom.IntegrityError):
                dcr.retrieve_audit_log(verified_before=(5, log[4]["hash"]))
            with self.assertRaises(cleanroom.IntegrityError):
                dcr.retrieve_audit_log(verified_before=(9, log[4]["hash"]))
        self.assertEqual(dcr.retrieve_audit_log(verified_before=(5, log[4]["hash"])), log)


class EnclaveTest(unittest.TestCase):
    def test_refuses_other_suite_and_platform(self) -> None:
        dcr = owner.publish_analytics_dcr(harness.uppercase_builder(owner, "enclave").build())
        for specs, words in ((EnclaveSpecifications(hpke_suite=(0x20, 1, 3)), "HPKE suite"),
                             (EnclaveSpecifications(platforms=("amd-sev-snp",)), "platform 'software'")):
            c = cleanroom.create_client(owner.user_email, owner._token, url=server.url, specs=specs)
            node = c.retrieve_analytics_dcr(dcr.id).get_node("input_data_node")
            with self.assertRaises(cleanroom.EnclaveNotTrusted) as cm:
                node.upload_and_publish_dataset(io.BytesIO(b"x"), cleanroom.Key(), "x")
            self.assertIn(words, str(cm.exception))

    def test_pinned_workers(self) -> None:
        dcr = owner.publish_analytics_dcr(harness.uppercase_builder(owner, "pinned workers").build())
        served = owner.worker_specs()
        self.assertEqual(sorted(w.name for w in served), ["python", "r"])
        self.assertTrue(all(len(w.measurement) == 64 for w in served))
        # Every worker the server runs pinned: the upload goes ahead.
        c = cleanroom.create_client(owner.user_email, owner._token, url=server.url,
                                    specs=EnclaveSpecifications(workers=tuple(served)))
        c.retrieve_analytics_dcr(dcr.id).get_node("input_data_node").upload_and_publish_dataset(io.BytesIO(b"x"), cleanroom.Key(), "x")
        # One of them changed: no key leaves this machine, nothing is published.
        other = EnclaveSpecifications(workers=(served[0], WorkerSpec(served[1].name, "0" * 64)))
        c = cleanroom.create_client(owner.user_email, owner._token, url=server.url, specs=other)
        node = c.retrieve_analytics_dcr(dcr.id).get_node("input_data_node")
        before = owner.retrieve_analytics_dcr(dcr.id).datasets
        with self.assertRaises(cleanroom.EnclaveNotTrusted) as cm:
            node.upload_and_publish_dataset(io.BytesIO(b"y"), cleanroom.Key(), "y")
        self.assertIn(f"runs worker {served[1].name!r} with measurement {served[1].measurement}", str(cm.exception))
        self.assertEqual(owner.retrieve_analytics_dcr(dcr.id).datasets, before)

    def test_warns_once_per_client_about_software_mode(self) -> None:
        c = cleanroom.create_client(owner.user_email, owner._token, url=server.url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            att = c.enclave()
            c.enclave()
        self.assertEqual(att.platform, "software")
        self.assertEqual(len(att.public_key), 32)
        self.assertEqual([w.category for w in caught], [cleanroom.EnclaveSoftwareWarning])

    def test_server_url(self) -> None:
        with mock.patch.dict(os.environ, {"CLEANROOM_URL": "http://example.test:9/"}):
            self.assertEqual(cleanroom.create_client("a@b.c", "t").url, "http://example.test:9")
            self.assertEqual(cleanroom.create_client("a@b.c", "t", url="http://x:1").url, "http://x:1")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(cleanroom.create_client("a@b.c", "t").url, "http://127.0.0.1:8080")
        with self.assertRaises(cleanroom.UnreachableError):
            cleanroom.create_client("a@b.c", "t", url="http://127.0.0.1:9").list_analytics_dcrs()


def self_signed_cert(directory: str) -> Tuple[str, str]:
    """Write a certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cleanroom test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


class HTTPSTest(unittest.TestCase):
    """A server started with --tls-cert and --tls-key is reached over
    https:// by a client that trusts its certificate, and a client that
    does not is told how to."""

    def test_https(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            cert, key = self_signed_cert(d)
            server = harness.Server("--tls-cert", cert, "--tls-key", key)
            self.addCleanup(server.stop)
            self.assertTrue(server.url.startswith("https://"), server.url)
            client = server.client("ann@example.com")
            with mock.patch.dict(os.environ, {"SSL_CERT_FILE": cert}):
                self.assertEqual(client.list_analytics_dcrs(), [])
            with mock.patch.dict(os.environ, {"SSL_CERT_FILE": os.devnull}):
                with self.assertRaises(cleanroom.UnreachableError) as caught:
                    client.list_analytics_dcrs()
            self.assertIn("set SSL_CERT_FILE", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
