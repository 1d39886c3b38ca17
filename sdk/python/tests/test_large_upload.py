"""A 1 GiB dataset uploads in constant memory, and the enclave then
decrypts it exactly: the Python SDK's ciphertext read by the Go server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
import unittest

import harness
import cleanroom
from cleanroom.analytics import AnalyticsDcrBuilder, PythonComputeNodeDefinition, RawDataNodeDefinition

SIZE = 1 << 30
MAX_RSS_MB = 150

# Runs in its own process, so its peak memory is its own.
UPLOADER = textwrap.dedent("""\
    import os, sys, time
    import cleanroom, harness
    client = cleanroom.create_client(os.environ["EMAIL"], os.environ["TOKEN"])
    node = client.retrieve_analytics_dcr(sys.argv[1]).get_node("big")
    start = time.monotonic()
    ds = node.upload_and_publish_dataset(harness.GeneratedStream(int(sys.argv[2])), cleanroom.Key(), "big.bin")
    print(ds.size, round(time.monotonic() - start, 2))
""")

# Runs in the sandbox on the decrypted dataset.
MEASURE = textwrap.dedent("""\
    import hashlib
    h, n = hashlib.sha256(), 0
    with open("/input/big", "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    with open("/output/size.txt", "w") as out:
        out.write(f"{n} {h.hexdigest()}")
""")


class LargeUploadTest(unittest.TestCase):
    def test_one_gib_in_constant_memory(self) -> None:
        server = harness.Server()
        try:
            email = "big@example.com"
            token = server.add_user(email)
            client = server.client(email, token)
            b = AnalyticsDcrBuilder(client=client).with_name("large")
            b.add_node_definition(RawDataNodeDefinition("big", is_required=True))
            b.add_node_definition(PythonComputeNodeDefinition("measure", MEASURE, dependencies=["big"]))
            b.add_participant(email, data_owner_of=["big"], analyst_of=["measure"])
            dcr = client.publish_analytics_dcr(b.build())

            env = server.env(EMAIL=email, TOKEN=token,
                             PYTHONPATH=f"{harness.SDK_DIR}{os.pathsep}{harness.SDK_DIR / 'tests'}")
            proc = subprocess.Popen([harness.PYTHON, "-W", "ignore", "-c", UPLOADER, dcr.id, str(SIZE)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            # Reap the child ourselves to get its own resource usage.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
            proc.stdout.close()
            proc.stderr.close()
            self.assertEqual(proc.returncode, 0, err + server.log())
            size, seconds = out.split()
            self.assertEqual(int(size), cleanroom.crypto.ciphertext_size(SIZE))
            max_rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
            print(f"\n  1 GiB upload: {seconds} s ({SIZE / 1e6 / float(seconds):.0f} MB/s), "
                  f"uploader max RSS {max_rss_mb:.0f} MB", end=" ")
            self.assertLess(max_rss_mb, MAX_RSS_MB)

            want = hashlib.sha256()
            stream = harness.GeneratedStream(SIZE)
            while chunk := stream.read(1 << 20):
                want.update(chunk)
            result = dcr.get_node("measure").run_computation_and_get_results_as_zip()
            self.assertEqual(result.read("size.txt").decode(), f"{SIZE} {want.hexdigest()}")
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
