"""The Secure Uppercase example of the product documentation our users
come from runs against cleanroom with only its import lines changed.

seed_uppercase.py is the example exactly as the documentation has it
(Decentriq's "Python computation" page, section "Create a Python
computation using the Python SDK"; only its indentation, lost in the copy
we have, is restored), still importing `decentriq_platform`; seed_intro.py
is the page's opening snippet. This test changes what a
user changes and nothing else:

- `decentriq_platform` becomes `cleanroom` in the import lines;
- the placeholders "@@ YOUR EMAIL HERE @@" and "@@ YOUR TOKEN HERE @@"
  become a real user's email and API token.

The server's URL comes from CLEANROOM_URL, as a user would set it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from typing import Tuple

import harness

HERE = Path(__file__).resolve().parent

server: harness.Server


def setUpModule() -> None:
    global server
    server = harness.Server()


def tearDownModule() -> None:
    server.stop()


def port(source: str, email: str, token: str) -> Tuple[str, int]:
    """Apply the user's changes to a seed script; returns the new source
    and how many lines changed."""
    out = []
    for line in source.splitlines(keepends=True):
        if line.startswith(("import ", "from ")):
            line = line.replace("decentriq_platform", "cleanroom")
        out.append(line)
    ported = "".join(out)
    for placeholder, value in (("@@ YOUR EMAIL HERE @@", email), ("@@ YOUR TOKEN HERE @@", token)):
        assert ported.count(f'"{placeholder}"') == 1, placeholder
        ported = ported.replace(f'"{placeholder}"', f'"{value}"')
    changed = sum(a != b for a, b in zip(source.splitlines(), ported.splitlines()))
    assert len(source.splitlines()) == len(ported.splitlines())
    return ported, changed


def run_script(source: str, variable: str) -> subprocess.CompletedProcess:
    """Run a script as its own program on Debian's Python, then print one
    of its variables."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    try:
        runner = f"import runpy, sys; g = runpy.run_path(sys.argv[1], run_name='__main__'); print(g[{variable!r}])"
        return subprocess.run([harness.PYTHON, "-c", runner, f.name], capture_output=True, text=True,
                              env=server.env(), timeout=120)
    finally:
        os.unlink(f.name)


class SeedExampleTest(unittest.TestCase):
    def test_secure_uppercase(self) -> None:
        email = "seed-user@example.com"
        token = server.add_user(email)
        source = (HERE / "seed_uppercase.py").read_text()
        ported, changed = port(source, email, token)
        # Five import lines and the two placeholder lines; nothing else.
        self.assertEqual(changed, 7)
        self.assertNotIn("decentriq_platform", ported)

        out = run_script(ported, "result_txt")
        self.assertEqual(out.returncode, 0, out.stderr + server.log())
        self.assertEqual(out.stdout.strip(), "HELLO WORLD")
        # The enclave runs in software here; the user is told once.
        self.assertEqual(out.stderr.count("EnclaveSoftwareWarning"), 1, out.stderr)

        dcrs = server.client(email, token).list_analytics_dcrs()
        self.assertEqual([d.name for d in dcrs], ["Secure Uppercase"])

    def test_intro_snippet(self) -> None:
        email = "seed-intro@example.com"
        source = (HERE / "seed_intro.py").read_text()
        ported, changed = port(source, email, server.add_user(email))
        self.assertEqual(changed, 3)
        out = run_script(ported, "enclave_specs")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("EnclaveSpecifications(hpke_suite=(32, 1, 1)", out.stdout)


if __name__ == "__main__":
    unittest.main()
