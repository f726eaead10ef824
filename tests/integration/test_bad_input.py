"""Bad configuration and environment at start-up (issue #8, docs/operations.md "Start-up errors").

Each problem gives one clear line naming it (the config key path, or the server and setting) and
what to do:
- configuration problems: `check` and `run` both exit 1 with exactly one line on stderr;
- a database that refuses for good (wrong password, wal_level, wal2json not allowed): `run` exits
  2 with one critical line (wal2json missing is covered by tests/unit/server_error_test.cpp: this
  server has it);
- what may heal is retried, logged once (again when it changes) and visible in /readyz: a
  database not (yet) reachable, a slot held by another instance (the HA standby), and NATS or
  Kafka not reachable at start (also in $status lastErrorDetail).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import bridge_config, destination_resource, topic_resource  # noqa: E402

TOPIC = "http://example.org/topic/bad-input"


def problem_records(log):
    """The JSON log records (log.format json) at warning or above, as "level message"; a line
    that is not a JSON record counts too (it would be a stray write to stderr)."""
    problems = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(line)
            continue
        if record["level"] in ("warning", "error", "critical"):
            problems.append(f"{record['level']} {record['message']}")
    return problems


def http_get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path; (None, "") when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def nats_destination(did, kind, url):
    return destination_resource(did, kind, TOPIC, [("url", url), ("subject", "bad.input")])


def kafka_destination(did, kind, bootstrap, *extra):
    return destination_resource(did, kind, TOPIC,
                                [("kafkaTopic", "bad-input"), ("bootstrapServers", bootstrap),
                                 *extra])


class ConfigurationProblems(unittest.TestCase):
    """No server is needed: both commands stop before touching the database."""

    @classmethod
    def setUpClass(cls):
        cls.binary = str(harness.find_binary("TOPICBRIDGE_BIN", "src/app/topicbridge",
                                             "topicbridge binary"))
        cls.base = Path(tempfile.mkdtemp(prefix="tb-bad-config-"))
        # Nothing listens here; a run that got as far as the database would retry, not exit 1.
        cls.dsn = (f"host=127.0.0.1 port={harness.free_port()} dbname=aidbox user=postgres "
                   "password=postgres connect_timeout=2")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def config(self, topics=None, destinations=()):
        topics = [topic_resource(TOPIC, "Patient")] if topics is None else topics
        return bridge_config(self.dsn, "bad_config", harness.free_port(), topics,
                             list(destinations))

    def assert_one_line(self, config, *words):
        """check and run both exit 1 with exactly one line on stderr, holding every word."""
        path = self.base / f"{self.id().rsplit('.', 1)[-1]}.yaml"
        path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
        for command in ("check", "run"):
            r = subprocess.run([self.binary, command, "-c", str(path)], capture_output=True,
                               text=True, timeout=60)
            output = f"{command}: exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
            self.assertEqual(r.returncode, 1, output)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, output)
            self.assertIn(str(path), lines[0], output)
            for word in words:
                self.assertIn(word, lines[0], output)

    def test_malformed_yaml_names_line_and_column(self):
        self.assert_one_line("topics:\n  - {url: t, trigger: [{resource: Patient}]\n"
                             "destinations: []\n",
                             "malformed YAML at line 3, column 1")

    def test_unknown_key_lists_the_known_ones(self):
        config = self.config()
        config["postgre"] = config.pop("postgres")
        self.assert_one_line(config, "postgre: unknown key", "expected one of:", "postgres")

    def test_unknown_destination_kind(self):
        self.assert_one_line(
            self.config(destinations=[nats_destination("d", "nats-core-bestest", "nats://x:1")]),
            'destinations[0].kind: unknown kind "nats-core-bestest"', "nats-core-best-effort")

    def test_missing_required_parameter(self):
        d = destination_resource("d", "nats-core-best-effort", TOPIC, [("url", "nats://x:1")])
        self.assert_one_line(self.config(destinations=[d]),
                             'destinations[0].parameter: missing required parameter "subject"')

    def test_ill_typed_parameter_value(self):
        d = kafka_destination("d", "kafka-best-effort", "127.0.0.1:1")
        d["parameter"].append({"name": "batchSize", "valueInteger": "abc"})
        self.assert_one_line(self.config(destinations=[d]),
                             "destinations[0].parameter[2].valueInteger",
                             'parameter "batchSize" expects an integer, got "abc"')

    def test_parameter_of_the_wrong_value_type(self):
        d = kafka_destination("d", "kafka-best-effort", "127.0.0.1:1", ("batchSize", "16384"))
        self.assert_one_line(self.config(destinations=[d]), "destinations[0].parameter[2]",
                             'parameter "batchSize" expects valueInteger, got valueString')

    def test_unknown_parameter(self):
        d = kafka_destination("d", "kafka-best-effort", "127.0.0.1:1", ("batchSizes", 10))
        self.assert_one_line(self.config(destinations=[d]), "destinations[0].parameter[2]",
                             'unknown parameter "batchSizes"', "batchSize")

    def test_invalid_fhirpath(self):
        topic = topic_resource(TOPIC, "Patient", criteria="name.where(given = )")
        self.assert_one_line(self.config(topics=[topic]),
                             "topics[0].trigger[0].fhirPathCriteria", "invalid FHIRPath",
                             "at column 20")

    def test_topic_on_an_unknown_resource_type(self):
        self.assert_one_line(self.config(topics=[topic_resource(TOPIC, "Patinet")]),
                             "topics[0].trigger[0].resource",
                             'unknown resource type "Patinet" (did you mean Patient?)',
                             "aidbox.custom_resource_types")

    def test_destination_on_an_unknown_topic(self):
        d = nats_destination("d", "nats-core-best-effort", "nats://x:1")
        d["topic"] = TOPIC + "-typo"
        self.assert_one_line(self.config(destinations=[d]),
                             f"destinations[0].topic: no topic has url {TOPIC}-typo")


class BridgeRun:
    """`topicbridge run` in the background with a debug log, and what it says."""

    def __init__(self, test, dsn, slot, destinations=(), **sections):
        self.port = harness.free_port()
        sections.setdefault("log", {}).update(level="debug", format="json")
        config = bridge_config(dsn, slot, self.port, [topic_resource(TOPIC, "Patient")],
                               list(destinations), **sections)
        self.bridge = harness.Topicbridge(config)
        test.addCleanup(self.bridge.cleanup)

    def problems(self):
        return problem_records(self.bridge.logs())

    def get(self, path):
        return http_get(self.port, path)

    def metric(self, name):
        match = re.search(rf"^{name} (\S+)$", self.get("/metrics")[1], re.M)
        return float(match.group(1)) if match else None

    def wait_log(self, pattern, timeout=60):
        def seen():
            if self.bridge.proc.poll() is not None:
                raise AssertionError(f"topicbridge exited {self.bridge.proc.returncode}:\n"
                                     f"{self.bridge.logs()}")
            return re.search(pattern, self.bridge.logs())
        return harness.wait_for(seen, timeout, f"log /{pattern}/")


class DatabaseProblems(unittest.TestCase):
    """One cluster (wal_level = logical); the cases that need it otherwise bend it per session."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)

    def run_to_exit(self, dsn, slot):
        run = BridgeRun(self, dsn, slot)
        code = run.bridge.wait_exit(60)
        return code, run.bridge.logs()

    def assert_one_critical_line(self, log, *words):
        problems = problem_records(log)
        self.assertEqual(len(problems), 1, log)
        self.assertTrue(problems[0].startswith("critical "), log)
        for word in words:
            self.assertIn(word, problems[0], log)
        self.assertNotIn("received SIGTERM", log)  # nobody sent one: no misleading line

    def test_wrong_password_exits_2_with_one_line_and_no_password(self):
        dsn = self.pg.dsn().replace("password=postgres", "password=Wr0ngPw9")
        code, log = self.run_to_exit(dsn, "wrong_password")
        self.assertEqual(code, 2, log)
        self.assert_one_critical_line(log, "wrong password for the database user",
                                      "fix the password in postgres.dsn")
        self.assertNotIn("Wr0ngPw9", log)

    def test_wal2json_not_allowed_exits_2_naming_output_plugin_libraries(self):
        # This server build lets a superuser narrow output_plugin_libraries for one session.
        dsn = self.pg.dsn() + " options='-c output_plugin_libraries=pgoutput'"
        code, log = self.run_to_exit(dsn, "not_allowed")
        self.assertEqual(code, 2, log)
        self.assert_one_critical_line(log, "creating replication slot not_allowed",
                                      "add it to output_plugin_libraries")

    def test_unreachable_database_is_retried_logged_once_and_then_streams(self):
        self.pg.stop()
        self.addCleanup(self.pg.start)
        run = BridgeRun(self, self.pg.dsn(), "late_database")
        run.wait_log(r"attempt 4 failed")  # debug lines: it keeps retrying
        self.assertEqual(run.get("/healthz")[0], 200)
        unreachable = (f"connecting to PostgreSQL at 127.0.0.1:{self.pg.port}: PostgreSQL is "
                       "unreachable: check host and port in postgres.dsn")
        status, reason = run.get("/readyz")
        self.assertEqual(status, 503)
        self.assertTrue(reason.startswith("replication not connected (last error: " + unreachable),
                        reason)
        problems = run.problems()
        self.assertEqual(len(problems), 1, run.bridge.logs())
        self.assertIn(unreachable, problems[0])
        self.pg.start()
        harness.wait_for(lambda: run.metric("topicbridge_replication_connected") == 1, 60,
                         "replication to stream once the database is up")
        self.assertEqual(run.bridge.stop(), 0, run.bridge.logs())

    def test_slot_held_by_another_process_stands_by_with_one_line(self):
        self.pg.sql("SELECT pg_create_logical_replication_slot('held', 'wal2json')")
        holder = subprocess.Popen([str(self.pg.bindir / "pg_recvlogical"), "-d", self.pg.dsn(),
                                   "-S", "held", "--start", "-f", "/dev/null"],
                                  stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness._stop_process, holder)
        harness.wait_for(lambda: self.pg.value(
            "SELECT active FROM pg_replication_slots WHERE slot_name = 'held'") == "t", 30,
            "pg_recvlogical to hold the slot")
        run = BridgeRun(self, self.pg.dsn(), "held")
        run.wait_log(r"attempt 3 failed")
        status, reason = run.get("/readyz")
        self.assertEqual(status, 503)
        self.assertRegex(reason, r"^replication not connected \(last error: replication slot held "
                                 r"is in use by another process \(PID \d+\): standing by")
        problems = run.problems()
        self.assertEqual(len(problems), 1, run.bridge.logs())
        self.assertIn("replication slot held is in use by another process (PID ", problems[0])
        self.assertIn("standing by, taking over when it is free", problems[0])
        self.assertEqual(run.bridge.stop(), 0, run.bridge.logs())

    def test_brokers_unreachable_at_start_run_anyway_and_report_it(self):
        nothing = [harness.free_port() for _ in range(3)]
        destinations = [
            nats_destination("nats-core", "nats-core-best-effort",
                             f"nats://127.0.0.1:{nothing[0]}"),
            nats_destination("jetstream", "nats-jetstream-at-least-once",
                             f"nats://127.0.0.1:{nothing[1]}"),
            kafka_destination("kafka", "kafka-at-least-once", f"127.0.0.1:{nothing[2]}"),
        ]
        run = BridgeRun(self, self.pg.dsn(), "no_brokers", destinations)
        harness.wait_for(lambda: run.metric("topicbridge_replication_connected") == 1, 60,
                         "replication to stream without any broker")
        for did, port in zip(("nats-core", "jetstream", "kafka"), nothing):
            def last_errors():
                body = json.loads(run.get(f"/fhir/AidboxTopicDestination/{did}/$status")[1])
                return [part["valueString"] for p in body["parameter"]
                        if p["name"] == "lastErrorDetail"
                        for part in p["part"] if part["name"] == "message"]
            with self.subTest(destination=did):
                errors = harness.wait_for(last_errors, 30, f"{did}: lastErrorDetail")
                self.assertTrue(any(f"127.0.0.1:{port}" in e for e in errors), errors)
        status, reason = run.get("/readyz")
        self.assertEqual(status, 503)
        self.assertRegex(reason, r"^destination (nats-core|jetstream|kafka) not connected")
        self.assertEqual(run.bridge.stop(), 0, run.bridge.logs())


class WalLevelReplica(unittest.TestCase):
    """A server without logical decoding (wal_level needs a restart, so a cluster of its own)."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster(extra_conf={"wal_level": "replica"})
        cls.addClassCleanup(cls.pg.cleanup)

    def test_wal_level_replica_exits_2_with_one_line(self):
        run = BridgeRun(self, self.pg.dsn(), "no_logical")
        code = run.bridge.wait_exit(60)
        log = run.bridge.logs()
        self.assertEqual(code, 2, log)
        problems = problem_records(log)
        self.assertEqual(len(problems), 1, log)
        self.assertIn("critical wal_level is replica on the server; logical decoding needs wal_level = "
                      "logical: set it in postgresql.conf and restart PostgreSQL", problems[0])
        self.assertNotIn("received SIGTERM", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
