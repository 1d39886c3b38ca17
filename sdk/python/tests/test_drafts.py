"""Drafts through the SDK, against the real server: save an incomplete
draft, attach test data, test all computations (a syntax error reported
by node and line, the others passing), fix, publish; the published id is
the one publishing the definition directly gives."""

from __future__ import annotations

import io
import unittest
import warnings

import harness
import cleanroom
from cleanroom.analytics import (AnalyticsDcr, AnalyticsDcrBuilder, AnalyticsDcrDraft, Column, DraftTestResult,
                                 FormatType, OutputFile, PythonComputeNodeDefinition, RawDataNodeDefinition,
                                 SqlComputeNodeDefinition, TableDataNodeDefinition)

server: harness.Server
alice: cleanroom.Client
bob: cleanroom.Client

SHOUT = '''
text = open("/input/notes").read()
print("read", len(text), "characters")
open("/output/shout.txt", "w").write(text.upper())
'''
BROKEN = "import os\n\nif True print('x')\n"
FIXED = "import pandas as pd\nn = pd.read_csv('/input/count/dataset.csv', header=None)[0][0]\n" \
        "open('/output/n.txt', 'w').write(str(n))\n"


def setUpModule() -> None:
    global server, alice, bob
    server = harness.Server()
    alice = server.client("alice@example.com")
    bob = server.client("bob@example.com")
    warnings.simplefilter("ignore", cleanroom.EnclaveSoftwareWarning)


def tearDownModule() -> None:
    server.stop()


def tested(broken_script: str = BROKEN, shout_script: str = SHOUT) -> AnalyticsDcrBuilder:
    b = AnalyticsDcrBuilder(client=alice).with_name("tested")
    b.add_node_definition(RawDataNodeDefinition("notes", is_required=True))
    b.add_node_definition(TableDataNodeDefinition("people", [Column(name="age", format_type=FormatType.INTEGER)], False))
    b.add_node_definition(SqlComputeNodeDefinition("count", "SELECT count(*) AS n FROM people", ["people"]))
    b.add_node_definition(PythonComputeNodeDefinition("shout", shout_script, dependencies=["notes"]))
    b.add_node_definition(PythonComputeNodeDefinition("broken", broken_script, dependencies=["count"]))
    b.add_node_definition(PythonComputeNodeDefinition("after_broken", "pass\n", dependencies=["broken"]))
    b.add_participant(alice.user_email, data_owner_of=["notes", "people"],
                      analyst_of=["count", "shout", "broken", "after_broken"])
    return b


class DraftTest(unittest.TestCase):
    def test_save_test_fix_publish(self) -> None:
        # An incomplete draft (an empty script) can be saved, not tested.
        draft = alice.create_analytics_dcr_draft(tested(shout_script="").build())
        self.assertIsInstance(draft, AnalyticsDcrDraft)
        self.assertEqual(draft.name, "tested")
        self.assertEqual(draft.published_id, "")
        with self.assertRaises(cleanroom.InvalidError) as cm:
            draft.test_all_computations()
        self.assertIn('node "shout": script is empty', str(cm.exception))
        with self.assertRaises(cleanroom.InvalidError):
            draft.publish()

        draft.update(tested())
        self.assertEqual(draft.definition.id, tested().build().id)
        draft.add_test_dataset("notes", b"test notes")
        draft.add_test_dataset("people", "30\n40\n50\n")
        self.assertEqual(draft.test_datasets, {"notes": 10, "people": 9})
        self.assertEqual(alice.retrieve_analytics_dcr_draft(draft.id).test_datasets, {"notes": 10, "people": 9})

        result = draft.test_all_computations()
        self.assertIsInstance(result, DraftTestResult)
        self.assertFalse(result.ok)
        self.assertEqual([n.node for n in result], ["notes", "people", "count", "shout", "broken", "after_broken"])
        for name in ("notes", "people", "count", "shout"):
            self.assertEqual(result[name].status, "ok", result[name])
        broken = result["broken"]
        self.assertEqual((broken.status, broken.line), ("failed", 3))
        self.assertIn("SyntaxError", broken.error)
        self.assertEqual(result["after_broken"].status, "skipped")
        self.assertIn('depends on "broken"', result["after_broken"].error)
        self.assertEqual([n.node for n in result.failed], ["broken", "after_broken"])
        # Logs are shown in tests whatever the log policy, with what each computation wrote.
        self.assertIn("read 10 characters", result["shout"].logs)
        self.assertEqual(result["shout"].outputs, [OutputFile("shout.txt", 10)])
        self.assertEqual(result.as_dict()["broken"]["line"], 3)
        text = str(result)
        for line in ("ok       python shout", "failed   python broken (line 3)", "skipped  python after_broken",
                     "2 node(s) did not pass: broken, after_broken"):
            self.assertIn(line, text)

        # Bad test data fails its table, and what reads it is skipped.
        draft.add_test_dataset("people", io.BytesIO(b"30\nthirty\n"))
        result = draft.test_all_computations()
        self.assertEqual(result["people"].status, "failed")
        self.assertIn("not an integer", result["people"].error)
        self.assertEqual(result["count"].status, "skipped")
        draft.add_test_dataset("people", "30\n40\n50\n")

        draft.update(tested(broken_script=FIXED))
        result = draft.test_all_computations()
        self.assertTrue(result.ok, str(result))
        self.assertIn("all 6 node(s) passed", str(result))
        self.assertEqual(result["broken"].outputs, [OutputFile("n.txt", 1)])

        dcr = draft.publish()
        self.assertIsInstance(dcr, AnalyticsDcr)
        self.assertEqual(dcr.id, tested(broken_script=FIXED).build().id)
        self.assertEqual(draft.published_id, dcr.id)
        direct = alice.publish_analytics_dcr(tested(broken_script=FIXED).build())
        self.assertEqual(direct.id, dcr.id)
        # The published clean room works as any other: test data stays behind.
        dcr.get_node("notes").upload_and_publish_dataset(io.BytesIO(b"real notes"), cleanroom.Key(), "notes.txt")
        self.assertEqual(dcr.get_node("shout").run_computation_and_get_results_as_zip().read("shout.txt"),
                         b"REAL NOTES")

        # A published draft is frozen.
        with self.assertRaises(cleanroom.ConflictError):
            draft.publish()
        with self.assertRaises(cleanroom.ConflictError):
            draft.update(tested())
        listed = {d.id: d for d in alice.list_analytics_dcr_drafts()}
        self.assertEqual(listed[draft.id].published_id, dcr.id)

    def test_owner_only_and_stale_copies(self) -> None:
        draft = alice.create_analytics_dcr_draft(tested(broken_script="pass\n"))  # a builder is accepted too
        with self.assertRaises(cleanroom.NotFoundError):
            bob.retrieve_analytics_dcr_draft(draft.id)
        self.assertEqual(bob.list_analytics_dcr_drafts(), [])
        self.assertIn(draft.id, [d.id for d in alice.list_analytics_dcr_drafts()])
        with self.assertRaises(cleanroom.InvalidError):
            draft.add_test_dataset("shout", b"x")  # test data goes to data nodes
        with self.assertRaises(cleanroom.NotFoundError):
            draft.add_test_dataset("nowhere", b"x")

        # A copy read before the draft changed refuses to publish what it has not seen.
        stale = alice.retrieve_analytics_dcr_draft(draft.id)
        draft.update(tested(broken_script="print('changed')\n"))
        with self.assertRaises(cleanroom.ConflictError) as cm:
            stale.publish()
        self.assertIn("read it again", str(cm.exception))
        self.assertEqual(stale.refresh().definition.id, draft.definition.id)

        draft.add_test_dataset("notes", harness.GeneratedStream(100_000))  # a pipe: sent chunked
        self.assertEqual(draft.refresh().test_datasets, {"notes": 100_000})
        draft.remove_test_dataset("notes")
        self.assertEqual(draft.refresh().test_datasets, {})
        draft.delete()
        with self.assertRaises(cleanroom.NotFoundError):
            alice.retrieve_analytics_dcr_draft(draft.id)


if __name__ == "__main__":
    unittest.main()
