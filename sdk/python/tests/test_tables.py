"""Table data nodes, SQL and R computations through the SDK, against the
real server: a table -> SQL -> Python pipeline with exact numbers, the
validation report of a bad table, an R script, and definition ids of
every node kind and field computed here as the server computes them.

The pipeline's data and numbers are those of cmd/cleanroom/pipeline_test.go.
"""

from __future__ import annotations

import io
import json
import unittest
import warnings

import harness
import cleanroom
from cleanroom.analytics import (AnalyticsDcrBuilder, Column, FileContent, FormatType, HashingAlgorithm,
                                 PythonComputeNodeDefinition, RawDataNodeDefinition, RComputeNode,
                                 RComputeNodeDefinition, SqlComputeNode, SqlComputeNodeDefinition,
                                 TableDataNode, TableDataNodeDefinition, canonical_definition)

server: harness.Server
analyst: cleanroom.Client
hospital: cleanroom.Client
insurer: cleanroom.Client

MODEL_SCRIPT = r'''
import json
import cleanroom_util
from sklearn.linear_model import LinearRegression
df = cleanroom_util.sql.read_sql_data_from_dir("/input/joined")
assert str(df["age"].dtype) == "Int64" and str(df["total"].dtype) == "float64", df.dtypes
people = cleanroom_util.read_tabular_data("/input/patients")
# Hashed before any computation sees it: 64 hex digits, never an address.
assert all(len(e) == 64 and "@" not in e for e in people["email"]), people["email"].tolist()
fit = LinearRegression().fit(df[["age"]].astype(float), df["total"])
json.dump({"slope": fit.coef_[0], "intercept": fit.intercept_, "n": len(df)}, open("/output/coef.json", "w"))
'''


def setUpModule() -> None:
    global server, analyst, hospital, insurer
    server = harness.Server()
    analyst = server.client("analyst@example.com")
    hospital = server.client("hospital@example.com")
    insurer = server.client("insurer@example.com")
    warnings.simplefilter("ignore", cleanroom.EnclaveSoftwareWarning)


def tearDownModule() -> None:
    server.stop()


def pipeline(name: str) -> AnalyticsDcrBuilder:
    """Two tables, a SQL join with a privacy floor, a Python model on its
    result, and a SQL query whose result is under its floor."""
    b = AnalyticsDcrBuilder(client=analyst).with_name(name)
    b.add_node_definition(TableDataNodeDefinition("patients", columns=[
        Column(name="id", format_type=FormatType.INTEGER),
        Column(name="email", format_type=FormatType.EMAIL, hash_with=HashingAlgorithm.SHA256_HEX),
        Column(name="age", format_type=FormatType.INTEGER),
        Column(name="smoker", format_type=FormatType.STRING, is_nullable=True),
    ], is_required=True, unique_column_combinations=[["id"]]))
    b.add_node_definition(TableDataNodeDefinition("claims", [
        Column(FormatType.INTEGER, "patient_id", False),  # the commercial SDK's positional order
        Column(name="amount", format_type="FLOAT"),
    ], True))
    b.add_node_definition(SqlComputeNodeDefinition("joined", """
        SELECT p.id, p.age, sum(c.amount) AS total
        FROM patients p JOIN claims c ON c.patient_id = p.id
        GROUP BY p.id, p.age ORDER BY p.id""", dependencies=["patients", "claims"], minimum_rows_count=3))
    b.add_node_definition(SqlComputeNodeDefinition(
        "smokers", "SELECT id FROM patients WHERE smoker = 'yes' AND id < 3", ["patients"], minimum_rows_count=2))
    b.add_node_definition(PythonComputeNodeDefinition(
        "model", MODEL_SCRIPT, dependencies=["joined", "patients"], enable_logs_on_error=True))
    b.add_participant("hospital@example.com", data_owner_of=["patients"])
    b.add_participant("insurer@example.com", data_owner_of=["claims"])
    b.add_participant("analyst@example.com", analyst_of=["joined", "smokers", "model"])
    return b


def patients_csv() -> bytes:
    rows = [f"{i},person{i}@example.com,{20 + 10 * i},{'yes' if i % 2 == 0 else ''}" for i in range(1, 7)]
    return ("\n".join(rows) + "\n").encode()


def claims_csv() -> bytes:
    # Three claims per patient adding up to 10*age + 5.
    out = []
    for i in range(1, 7):
        age = 20 + 10 * i
        out += [f"{i},{5 * age}", f"{i},{5 * age + 4}.5", f"{i},0.5"]
    return ("\n".join(out) + "\n").encode()


class PipelineTest(unittest.TestCase):
    def test_table_sql_python(self) -> None:
        dcr = analyst.publish_analytics_dcr(pipeline("claims by age").build())

        patients = hospital.retrieve_analytics_dcr(dcr.id).get_node("patients")
        self.assertIsInstance(patients, TableDataNode)
        self.assertEqual([c.name for c in patients.columns], ["id", "email", "age", "smoker"])
        self.assertEqual(patients.columns[1].hash_with, HashingAlgorithm.SHA256_HEX)
        self.assertEqual(patients.unique_column_combinations, [["id"]])
        ds = patients.upload_and_publish_dataset(io.BytesIO(patients_csv()), cleanroom.Key(), "patients.csv")
        self.assertTrue(ds.validation_job)
        claims = insurer.retrieve_analytics_dcr(dcr.id).get_node("claims")
        claims.upload_and_publish_dataset(io.BytesIO(claims_csv()), cleanroom.Key(), "claims.csv")
        for node, rows in ((patients, 6), (claims, 18)):
            report = node.get_validation_report_as_dict()
            self.assertTrue(report["valid"], report)
            self.assertEqual((report["rows"], report["columns"], report["error_count"]), (rows, len(node.columns), 0))

        joined = dcr.get_node("joined")
        self.assertIsInstance(joined, SqlComputeNode)
        self.assertEqual(joined.minimum_rows_count, 3)
        self.assertIn("GROUP BY", joined.query)
        result = joined.run_computation_and_get_results_as_zip()
        self.assertEqual(result.read("dataset.csv").decode(),
                         "1,30,305\n2,40,405\n3,50,505\n4,60,605\n5,70,705\n6,80,805\n")
        self.assertIn('"format_type": "FLOAT"', result.read("schema.json").decode())

        coef = json.loads(dcr.get_node("model").run_computation_and_get_results_as_zip().read("coef.json"))
        self.assertEqual((round(coef["slope"], 6), round(coef["intercept"], 6), coef["n"]), (10.0, 5.0, 6))

        # One row is under the floor of two: the query releases nothing.
        with self.assertRaises(cleanroom.JobFailed) as cm:
            dcr.get_node("smokers").run_computation_and_get_results_as_zip()
        self.assertIn("fewer rows than its minimum_rows_count of 2; nothing is released", str(cm.exception))

    def test_validation_report_of_a_bad_table(self) -> None:
        dcr = analyst.publish_analytics_dcr(pipeline("bad table").build())
        patients = hospital.retrieve_analytics_dcr(dcr.id).get_node("patients")
        patients.upload_and_publish_dataset(
            io.BytesIO(b"1,a@example.com,30,yes\nx,b@example.com,40,\n3,,50,no\n4,d@example.com\n"),
            cleanroom.Key(), "patients.csv")
        report = patients.get_validation_report_as_dict()
        self.assertFalse(report["valid"])
        self.assertEqual(report["error_count"], 3)
        got = [(e["line"], e.get("column", ""), e.get("value", ""), e["message"]) for e in report["errors"]]
        self.assertEqual(got, [
            (2, "id", "x", "not an integer"),
            (3, "email", "", "missing value in a column that is not nullable"),
            (4, "", "", "has 2 values, the table has 4 columns"),
        ])
        # The report quotes the data: its data owners only.
        for other in (insurer, analyst):
            with self.assertRaises(cleanroom.ForbiddenError):
                other.retrieve_analytics_dcr(dcr.id).get_node("patients").get_validation_report_as_dict()

        insurer.retrieve_analytics_dcr(dcr.id).get_node("claims").upload_and_publish_dataset(
            io.BytesIO(b"1,10\n"), cleanroom.Key(), "claims.csv")
        with self.assertRaises(cleanroom.ConflictError) as cm:
            dcr.get_node("joined").run_computation()
        self.assertIn('the dataset of table "patients" failed validation', str(cm.exception))

        # A header row is named as such.
        patients.upload_and_publish_dataset(io.BytesIO(b"id,email,age,smoker\n1,a@example.com,30,yes\n"),
                                            cleanroom.Key(), "patients.csv")
        report = patients.get_validation_report_as_dict()
        self.assertFalse(report["valid"])
        self.assertIn("looks like a header", report["hint"])


class RTest(unittest.TestCase):
    def test_r_reads_raw_and_table(self) -> None:
        b = AnalyticsDcrBuilder(client=analyst).with_name("r")
        b.add_node_definition(RawDataNodeDefinition("words", is_required=True))
        b.add_node_definition(TableDataNodeDefinition("scores", [Column(name="score", format_type=FormatType.FLOAT)], True))
        b.add_node_definition(RComputeNodeDefinition("stats", """
source("/input/code/helpers.R")
words <- scan("/input/words", what = character(), quiet = TRUE)
scores <- read.csv("/input/scores/dataset.csv", header = FALSE, col.names = "score")
dir.create("/output/summary")
writeLines(c(shout(words[1]), length(words), format(mean(scores$score), nsmall = 2)), "/output/summary/r.txt")
""", additional_files={"helpers.R": "shout <- function(x) toupper(x)\n"}, dependencies=["words", "scores"],
            enable_logs_on_error=True))
        b.add_participant(analyst.user_email, data_owner_of=["words", "scores"], analyst_of=["stats"])
        dcr = analyst.publish_analytics_dcr(b.build())
        dcr.get_node("words").upload_and_publish_dataset(io.BytesIO(b"hello brave new world"), cleanroom.Key(), "w")
        dcr.get_node("scores").upload_and_publish_dataset(io.BytesIO(b"1.5\n2.5\n"), cleanroom.Key(), "s.csv")
        stats = dcr.get_node("stats")
        self.assertIsInstance(stats, RComputeNode)
        self.assertIn("writeLines", stats.script)
        try:
            result = stats.run_computation_and_get_results_as_zip()
        except cleanroom.JobFailed as e:
            self.fail(f"{e}; the server log ends:\n{server.log()[-1500:]}")
        self.assertEqual(result.read("summary/r.txt"), b"HELLO\n4\n2.00\n")


def every_field(client: cleanroom.Client, name: str = "every field") -> AnalyticsDcrBuilder:
    """A definition with every node kind, and every optional field both
    set and unset, including those whose empty value counts (a minimum
    of 0 rows)."""
    b = AnalyticsDcrBuilder(client=client).with_name(name).with_description("all <kinds> & fields: é")
    b.add_node_definition(RawDataNodeDefinition("raw_required", is_required=True))
    b.add_node_definition(RawDataNodeDefinition("raw_optional"))
    b.add_node_definition(TableDataNodeDefinition("table", [
        Column(name=f"c_{t.value.lower()}", format_type=t, is_nullable=i % 2 == 1,
               hash_with=HashingAlgorithm.SHA256_HEX if i % 3 == 0 else None)
        for i, t in enumerate(FormatType)
    ] + [Column(name="Ünïcode <col>", format_type="STRING")], is_required=True,
        unique_column_combinations=[[0], ["c_integer", 2], ["Ünïcode <col>"]]))
    b.add_node_definition(TableDataNodeDefinition("table_plain", [Column(name="x", format_type=FormatType.INTEGER)], False))
    b.add_node_definition(SqlComputeNodeDefinition("sql_zero", "SELECT * FROM \"table\"", ["table"], minimum_rows_count=0))
    b.add_node_definition(SqlComputeNodeDefinition("sql_floor", "SELECT count(*) AS n FROM sql_zero", ["sql_zero"], 5))
    b.add_node_definition(SqlComputeNodeDefinition("sql_none", "SELECT 1 AS one", []))
    b.add_node_definition(PythonComputeNodeDefinition(
        "py", "print('<é>')", additional_files=[FileContent("a.txt", ""), FileContent("b.txt", "b")],
        dependencies=["raw_required", "sql_floor"], enable_logs_on_error=True, enable_logs_on_success=True))
    b.add_node_definition(RComputeNodeDefinition("r_plain", "cat(1)\n"))
    b.add_node_definition(RComputeNodeDefinition("r", "cat('<é>')\n", additional_files={"h.R": "x <- 1\n"},
                                                 dependencies=["py", "raw_optional", "table_plain"],
                                                 enable_logs_on_success=True))
    b.add_participant(client.user_email, data_owner_of=["raw_required", "raw_optional", "table", "table_plain"],
                      analyst_of=["sql_zero", "sql_floor", "sql_none", "py", "r_plain", "r"])
    b.add_participant("reader@example.com")
    return b


class CanonicalIdTest(unittest.TestCase):
    def test_every_node_kind_and_field(self) -> None:
        d = every_field(analyst).build()
        # What Go omits and keeps: false flags and absent hashing go, a minimum of 0 stays.
        table = next(n for n in d.definition["nodes"] if n["name"] == "table")
        self.assertEqual(table["columns"][0], {"name": "c_string", "format_type": "STRING", "hash_with": "SHA256_HEX"})
        self.assertEqual(table["columns"][1], {"name": "c_integer", "format_type": "INTEGER", "is_nullable": True})
        self.assertEqual(table["unique_column_combinations"], [["c_string"], ["c_integer", "c_float"], ["Ünïcode <col>"]])
        nodes = {n["name"]: n for n in d.definition["nodes"]}
        self.assertEqual(nodes["sql_zero"]["minimum_rows_count"], 0)
        self.assertNotIn("minimum_rows_count", nodes["sql_none"])
        self.assertNotIn("dependencies", nodes["sql_none"])
        self.assertEqual(nodes["table_plain"], {"name": "table_plain", "kind": "table",
                                                "columns": [{"name": "x", "format_type": "INTEGER"}]})
        self.assertIn(b'"minimum_rows_count":0', d.canonical)

        dcr = analyst.publish_analytics_dcr(d)  # refuses a server id that differs
        self.assertEqual(dcr.id, d.id)
        fetched = analyst.retrieve_analytics_dcr(d.id)  # re-hashes what the server returns
        self.assertEqual(canonical_definition(fetched.definition), d.canonical)
        self.assertEqual(fetched.get_node("sql_zero").minimum_rows_count, 0)
        self.assertIsNone(fetched.get_node("sql_none").minimum_rows_count)

        # A draft stores and returns the same definition.
        draft = analyst.create_analytics_dcr_draft(every_field(analyst).build())
        self.assertEqual(draft.definition.canonical, d.canonical)
        self.assertEqual(analyst.retrieve_analytics_dcr_draft(draft.id).definition.id, d.id)
        draft.delete()

    def test_canonical_bytes_equal_go(self) -> None:
        # The bytes Go's Definition.Canonical gives for the same definitions.
        b = AnalyticsDcrBuilder().with_name("t").with_owner("o@example.com")
        b.add_node_definition(TableDataNodeDefinition("p", [
            Column(name="id", format_type=FormatType.INTEGER),
            Column(name="e", format_type="EMAIL", is_nullable=True, hash_with="SHA256_HEX")], True, [[0, "e"]]))
        b.add_node_definition(SqlComputeNodeDefinition("q", "SELECT * FROM p", ["p"], 0))
        b.add_node_definition(RComputeNodeDefinition("r", "cat(1)", dependencies=["q"]))
        want = ('{"name":"t","nodes":[{"columns":[{"format_type":"INTEGER","name":"id"},{"format_type":"EMAIL",'
                '"hash_with":"SHA256_HEX","is_nullable":true,"name":"e"}],"is_required":true,"kind":"table","name":"p",'
                '"unique_column_combinations":[["id","e"]]},{"dependencies":["p"],"kind":"sql","minimum_rows_count":0,'
                '"name":"q","script":"SELECT * FROM p"},{"dependencies":["q"],"kind":"r","name":"r","script":"cat(1)"}],'
                '"owner":"o@example.com","participants":[]}')
        self.assertEqual(b.build().canonical, want.encode())
        # Empty and false values as another client may send them.
        messy = {"name": "t", "owner": "o@example.com", "participants": [], "nodes": [
            {"name": "p", "kind": "table", "is_required": False, "unique_column_combinations": [],
             "columns": [{"name": "id", "format_type": "INTEGER", "is_nullable": False, "hash_with": ""}]},
            {"name": "q", "kind": "sql", "script": "x", "minimum_rows_count": 0, "files": []},
            {"name": "s", "kind": "sql", "script": "y", "minimum_rows_count": None}]}
        want = ('{"name":"t","nodes":[{"columns":[{"format_type":"INTEGER","name":"id"}],"kind":"table","name":"p"},'
                '{"kind":"sql","minimum_rows_count":0,"name":"q","script":"x"},{"kind":"sql","name":"s","script":"y"}],'
                '"owner":"o@example.com","participants":[]}')
        self.assertEqual(canonical_definition(messy), want.encode())

    def test_definitions_refuse_what_the_server_would(self) -> None:
        with self.assertRaisesRegex(ValueError, "format_type of column 'x' 'NUMBER' is not one of STRING, INTEGER"):
            Column(name="x", format_type="NUMBER")
        with self.assertRaisesRegex(ValueError, "hash_with"):
            Column(name="x", format_type=FormatType.STRING, hash_with="MD5")
        with self.assertRaisesRegex(ValueError, "column index 2, but the table has 1 columns"):
            TableDataNodeDefinition("t", [Column(name="x", format_type="STRING")], True, [[2]])
        with self.assertRaisesRegex(TypeError, "list of lists"):
            TableDataNodeDefinition("t", [Column(name="x", format_type="STRING")], True, ["x"])
        with self.assertRaises(TypeError):
            SqlComputeNodeDefinition("s", "SELECT 1", [], minimum_rows_count=True)
        # The server checks the rest and reports every problem at once.
        b = AnalyticsDcrBuilder(client=analyst).with_name("bad")
        b.add_node_definition(TableDataNodeDefinition("t", [], True, [["nowhere"]]))
        b.add_node_definition(RawDataNodeDefinition("raw"))
        b.add_node_definition(SqlComputeNodeDefinition("s", "SELECT 1", ["raw"], minimum_rows_count=-1))
        with self.assertRaises(cleanroom.InvalidError) as cm:
            analyst.publish_analytics_dcr(b.build())
        for words in ("a table needs at least one column", 'unknown column "nowhere"',
                      "minimum_rows_count is negative", 'dependency "raw" is a raw node'):
            self.assertIn(words, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
