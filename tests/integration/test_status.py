"""What an operator sees (issue 5), against a real PostgreSQL 15 + wal2json, a real nats-server
with JetStream and a running topicbridge:
  - `$status` of a best-effort and of an at-least-once destination has exactly the parameter names
    Aidbox documents; an unknown id is a 404 OperationOutcome; GET /fhir/AidboxTopicDestination
    lists the destinations; `topicbridge status -c` prints them;
  - the counters move: delivered per Patient; lost (with lastErrorDetail) while nats-server is
    down; delivery attempts, in-process and queued while no stream captures the JetStream subject
    or the server is down, and delivered catching up afterwards; /readyz 200 / 503 with a reason;
  - /metrics is valid Prometheus text with every family; the slot lag grows while topicbridge is
    stopped or an at-least-once destination holds the slot, /metrics agrees with
    pg_replication_slots, it returns to ~0 after catching up, and the alarm gauge (and the
    warning) follow postgres.slot_lag_alarm_bytes;
  - secrets (the PostgreSQL password in the DSN, NATS username/password parameters, right or
    wrong) appear in no log line (text or JSON), /metrics, destination list or $status;
  - with log.format json every log line is a JSON object with time, level and message."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC_URL = "http://example.org/topics/status-patients"
BE_SUBJECT = "status.best-effort"
JS_SUBJECT = "status.js.patients"
STREAM = "STATUS"
ALARM_BYTES = 256 * 1024
ALARM_LOG = r"lag \d+ bytes is over slot_lag_alarm_bytes"

# As Aidbox documents them; lastErrorDetail (up to 5) comes on top.
BEST_EFFORT_NAMES = ["startTimestamp", "status", "messagesDelivered", "messagesInProcess",
                     "messagesLost"]
AT_LEAST_ONCE_NAMES = ["startTimestamp", "status", "messagesDelivered",
                       "messagesDeliveryAttempts", "messagesInProcess", "messagesQueued"]
FAMILIES = {
    "topicbridge_destination_messages_delivered_total": "counter",
    "topicbridge_destination_messages_lost_total": "counter",
    "topicbridge_destination_delivery_attempts_failed_total": "counter",
    "topicbridge_destination_errors_total": "counter",
    "topicbridge_destination_messages_queued": "gauge",
    "topicbridge_destination_messages_in_flight": "gauge",
    "topicbridge_destination_connected": "gauge",
    "topicbridge_topic_events_matched_total": "counter",
    "topicbridge_topic_fhirpath_errors_total": "counter",
    "topicbridge_table_changes_decoded_total": "counter",
    "topicbridge_slot_lag_bytes": "gauge",
    "topicbridge_slot_lag_alarm": "gauge",
    "topicbridge_slot_lag_alarm_threshold_bytes": "gauge",
    "topicbridge_replication_connected": "gauge",
    "topicbridge_replication_reconnects_total": "counter",
    "topicbridge_replication_seconds_since_last_message": "gauge",
    "topicbridge_process_resident_memory_bytes": "gauge",
    "topicbridge_process_start_time_seconds": "gauge",
}

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_prometheus(text):
    """Strict parse of the text format 0.0.4: {family: type}, [(name, labels, value)]."""
    types, samples = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, where
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), where
            assert name not in types, f"TYPE twice: {where}"
            types[name] = kind
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"not a sample: {where}"
            name, label_text, value = m.groups()
            assert name in types, f"sample before its TYPE: {where}"
            labels = {}
            if label_text:
                pairs = LABEL_RE.findall(label_text)
                assert ",".join(f'{k}="{v}"' for k, v in pairs) == label_text, where
                labels = dict(pairs)
            samples.append((name, labels, float(value)))
    return types, samples


def patient_sql(rid, name="Status"):
    resource = json.dumps({"name": [{"family": name}]})
    return f"SELECT aidbox_create('Patient', '{rid}', '{resource}'::jsonb);"


def destination(did, kind, url, subject, extra=()):
    return harness.destination_resource(did, kind, TOPIC_URL,
                                        [("url", url), ("subject", subject), *extra])


def bridge_config(dsn, slot, http_port, destinations, log_format="text", log_level="info"):
    return harness.bridge_config(
        dsn, slot, http_port,
        topics=[harness.topic_resource(TOPIC_URL, "Patient", "name.exists()")],
        destinations=destinations,
        postgres={"slot_lag_poll_ms": 200, "slot_lag_alarm_bytes": ALARM_BYTES},
        aidbox={"base_url": "http://localhost:8080"},
        log={"level": log_level, "format": log_format},
        delivery={"drain_timeout_ms": 2000})


def http_get(port, path):
    """(status, body text) of GET http://127.0.0.1:port/path, error statuses included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Operator:
    """Reads what an operator sees from one topicbridge's HTTP port."""

    def __init__(self, port, bridge=None):
        self.port = port
        self.bridge = bridge  # its log tail goes into timeout messages

    def get(self, path):
        return http_get(self.port, path)

    def parameters(self, did):
        code, body = self.get(f"/fhir/AidboxTopicDestination/{did}/$status")
        assert code == 200, (code, body)
        resource = json.loads(body)
        assert resource["resourceType"] == "Parameters", body
        return resource["parameter"]

    def counters(self, did):
        return {p["name"]: p["valueDecimal"] for p in self.parameters(did) if "valueDecimal" in p}

    def errors(self, did):
        return [{part["name"]: part.get("valueString", part.get("valueDateTime"))
                 for part in p["part"]}
                for p in self.parameters(did) if p["name"] == "lastErrorDetail"]

    def metrics(self):
        code, body = self.get("/metrics")
        assert code == 200, (code, body)
        return body

    def metric(self, name, **labels):
        _, samples = parse_prometheus(self.metrics())
        for sample_name, sample_labels, value in samples:
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
        raise AssertionError(f"no sample {name}{labels}")

    def wait_counter(self, did, name, predicate, timeout=30, what=""):
        try:
            return harness.wait_for(lambda: predicate(self.counters(did).get(name, 0)) or None,
                                    timeout, f"{did} {name} {what}")
        except TimeoutError as e:
            log = self.bridge.logs()[-4000:] if self.bridge else ""
            raise TimeoutError(f"{e}; $status: {self.parameters(did)}\nlog:\n{log}") from None


class StatusAndMetrics(unittest.TestCase):
    """One topicbridge with a best-effort (`be`) and a JetStream at-least-once (`js`) destination."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)
        cls.client = harness.NatsClient(cls.nats.url)
        cls.addClassCleanup(lambda: cls.client.close())
        cls.client.js_add_stream(STREAM, [JS_SUBJECT])
        cls.http_port = harness.free_port()
        cls.op = Operator(cls.http_port)
        cls.slot = "tb_status"
        cls.bridge = harness.Topicbridge(bridge_config(
            cls.pg.dsn(), cls.slot, cls.http_port,
            [destination("be", "nats-core-best-effort", cls.nats.url, BE_SUBJECT),
             destination("js", "nats-jetstream-at-least-once", cls.nats.url, JS_SUBJECT)]))
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.op.bridge = cls.bridge
        cls.wait_ready()
        cls.serial = 0

    @classmethod
    def wait_ready(cls):
        cls.bridge.wait_http_ok(f"http://127.0.0.1:{cls.http_port}/readyz", timeout=60)

    def reconnect_client(self):
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - the server went away under it
            pass
        type(self).client = harness.NatsClient(self.nats.url)

    def create_patients(self, count):
        sql = ""
        for _ in range(count):
            type(self).serial += 1
            sql += patient_sql(f"st-{self.serial}")
        self.pg.sql(sql)

    def sql_slot_lag(self):
        return int(self.pg.value(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots "
            f"WHERE slot_name = '{self.slot}'"))

    def write_filler_wal(self):
        """WAL unrelated to any topic (about 2 MB): only the slot lag sees it."""
        self.pg.sql("CREATE TABLE IF NOT EXISTS filler (n int, pad text);"
                    "INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 8000) g;")

    def wait_new_log(self, pattern, seen_before, timeout=10):
        """Waits until the log holds more than seen_before matches of pattern."""
        harness.wait_for(lambda: len(re.findall(pattern, self.bridge.logs())) > seen_before,
                         timeout, f"log /{pattern}/ (#{seen_before + 1})")

    def wait_delivered(self, did, at_least):
        return self.op.wait_counter(did, "messagesDelivered", lambda v: v >= at_least,
                                    what=f">= {at_least}")

    def test_1_status_has_exactly_the_documented_parameters(self):
        for did, expected in (("be", BEST_EFFORT_NAMES), ("js", AT_LEAST_ONCE_NAMES)):
            names = [p["name"] for p in self.op.parameters(did)]
            errors = [n for n in names if n == "lastErrorDetail"]
            self.assertEqual(sorted(n for n in names if n != "lastErrorDetail"), sorted(expected))
            self.assertLessEqual(len(errors), 5)
        for did in ("be", "js"):
            params = {p["name"]: p for p in self.op.parameters(did)}
            self.assertEqual(params["status"]["valueString"], "active")
            self.assertRegex(params["startTimestamp"]["valueDateTime"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

    def test_2_unknown_destination_is_a_404_operation_outcome(self):
        code, body = self.op.get("/fhir/AidboxTopicDestination/nope/$status")
        self.assertEqual(code, 404)
        outcome = json.loads(body)
        self.assertEqual(outcome["resourceType"], "OperationOutcome")
        self.assertEqual(outcome["issue"][0]["code"], "not-found")

    def test_3_destinations_are_listed(self):
        code, body = self.op.get("/fhir/AidboxTopicDestination")
        self.assertEqual(code, 200)
        bundle = json.loads(body)
        self.assertEqual(bundle["resourceType"], "Bundle")
        self.assertEqual(bundle["total"], 2)
        listed = {e["resource"]["id"]: e["resource"]["kind"] for e in bundle["entry"]}
        self.assertEqual(listed, {"be": "nats-core-best-effort",
                                  "js": "nats-jetstream-at-least-once"})
        out = subprocess.run([str(self.bridge.binary), "status", "-c", str(self.bridge.config_file)],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("be", out.stdout)
        self.assertIn("js", out.stdout)

    def test_4_delivered_increments_per_patient(self):
        be0 = self.op.counters("be")["messagesDelivered"]
        js0 = self.op.counters("js")["messagesDelivered"]
        matched0 = self.op.metric("topicbridge_topic_events_matched_total", topic=TOPIC_URL)
        self.create_patients(3)
        self.wait_delivered("be", be0 + 3)
        self.wait_delivered("js", js0 + 3)
        time.sleep(0.5)  # nothing more arrives
        self.assertEqual(self.op.counters("be")["messagesDelivered"], be0 + 3)
        self.assertEqual(self.op.counters("js")["messagesDelivered"], js0 + 3)
        self.assertEqual(self.op.metric("topicbridge_destination_messages_delivered_total",
                                        destination="be"), be0 + 3)
        self.assertGreaterEqual(
            self.op.metric("topicbridge_topic_events_matched_total", topic=TOPIC_URL),
            matched0 + 3)  # per event, whatever the number of destinations
        self.assertGreaterEqual(
            self.op.metric("topicbridge_table_changes_decoded_total", table="patient"), 3)

    def test_5_metrics_is_prometheus_text_with_every_family(self):
        be0 = self.op.counters("be")["messagesDelivered"]
        self.create_patients(1)  # tables get their sample with their first change
        self.wait_delivered("be", be0 + 1)
        types, samples = parse_prometheus(self.op.metrics())
        for family, kind in FAMILIES.items():
            self.assertEqual(types.get(family), kind, family)
        names = {name for name, _, _ in samples}
        for family in FAMILIES:
            self.assertIn(family, names)
        self.assertEqual(self.op.metric("topicbridge_replication_connected"), 1)
        self.assertEqual(self.op.metric("topicbridge_destination_connected", destination="js",
                                        kind="nats-jetstream-at-least-once"), 1)
        self.assertEqual(self.op.metric("topicbridge_slot_lag_alarm_threshold_bytes"),
                         ALARM_BYTES)
        self.assertGreater(self.op.metric("topicbridge_process_resident_memory_bytes"), 1 << 20)
        promtool = shutil.which("promtool")
        if promtool:  # Prometheus' own linter (Debian package prometheus), when installed
            lint = subprocess.run([promtool, "check", "metrics"], input=self.op.metrics(),
                                  capture_output=True, text=True, timeout=30)
            self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

    def test_6_jetstream_without_stream_retries_holds_the_slot_and_catches_up(self):
        js0 = self.op.counters("js")
        self.client.js_delete_stream(STREAM)
        try:
            self.create_patients(2)
            self.op.wait_counter("js", "messagesDeliveryAttempts", lambda v: v >= js0[
                "messagesDeliveryAttempts"] + 2, what="to grow without a stream")
            js = self.op.counters("js")
            self.assertGreater(js["messagesInProcess"] + js["messagesQueued"], 0, js)
            self.assertEqual(js["messagesDelivered"], js0["messagesDelivered"])
            self.assertTrue(self.op.errors("js"), "an attempt failure is in lastErrorDetail")
            self.assertGreater(
                self.op.metric("topicbridge_destination_delivery_attempts_failed_total",
                               destination="js"), 0)

            # The undelivered transaction holds the slot: WAL written after it stays in the lag,
            # /metrics agrees with pg_replication_slots, and the alarm rises.
            self.assertEqual(self.op.metric("topicbridge_slot_lag_alarm"), 0)
            self.write_filler_wal()
            sql_lag = self.sql_slot_lag()
            self.assertGreater(sql_lag, ALARM_BYTES)
            # The confirmed position may still creep up to the stuck transaction: compare the
            # two readings taken together, not with the one above.
            try:
                harness.wait_for(lambda: abs(self.op.metric("topicbridge_slot_lag_bytes")
                                             - self.sql_slot_lag()) < 16 * 1024,
                                 10, "/metrics slot lag to agree with pg_replication_slots")
            except TimeoutError as e:
                raise AssertionError(
                    f"{e}: /metrics {self.op.metric('topicbridge_slot_lag_bytes')}, SQL "
                    f"{self.sql_slot_lag()}\n{self.bridge.logs()[-3000:]}") from None
            self.assertGreater(self.op.metric("topicbridge_slot_lag_bytes"), ALARM_BYTES)
            harness.wait_for(lambda: self.op.metric("topicbridge_slot_lag_alarm") == 1, 10,
                             "the slot lag alarm")
            self.wait_new_log(ALARM_LOG, 0)
        finally:
            self.client.js_add_stream(STREAM, [JS_SUBJECT])
        self.wait_delivered("js", js0["messagesDelivered"] + 2)
        harness.wait_for(lambda: self.sql_slot_lag() < 64 * 1024, 30, "SQL slot lag back to ~0")
        harness.wait_for(lambda: self.op.metric("topicbridge_slot_lag_bytes") < 64 * 1024, 10,
                         "/metrics slot lag back to ~0")
        harness.wait_for(lambda: self.op.metric("topicbridge_slot_lag_alarm") == 0, 10,
                         "the alarm to clear")
        self.wait_new_log(r"lag back to \d+ bytes", 0)
        js = self.op.counters("js")
        self.assertEqual(js["messagesInProcess"] + js["messagesQueued"], 0, js)

    def test_7_nats_outage_loses_best_effort_retries_at_least_once(self):
        be0 = self.op.counters("be")
        js0 = self.op.counters("js")
        self.nats.stop()
        try:
            harness.wait_for(lambda: self.op.get("/readyz")[0] == 503, 20, "/readyz 503")
            code, reason = self.op.get("/readyz")
            self.assertIn("not connected", reason)
            self.assertRegex(reason, r"\b(be|js)\b")
            self.assertEqual(self.op.metric("topicbridge_destination_connected",
                                            destination="be"), 0)
            self.create_patients(2)
            self.op.wait_counter("be", "messagesLost", lambda v: v >= be0["messagesLost"] + 2,
                                 what="while nats-server is down")
            self.assertTrue(any("not connected" in e["message"] for e in self.op.errors("be")),
                            self.op.errors("be"))
            self.op.wait_counter("js", "messagesDeliveryAttempts",
                                 lambda v: v > js0["messagesDeliveryAttempts"],
                                 what="while nats-server is down")
            js = self.op.counters("js")
            self.assertGreater(js["messagesInProcess"] + js["messagesQueued"], 0, js)
        finally:
            self.nats.start()
            self.reconnect_client()
        self.wait_ready()
        self.assertEqual(self.op.get("/readyz"), (200, "ready\n"))
        self.wait_delivered("js", js0["messagesDelivered"] + 2)
        be = self.op.counters("be")
        self.assertEqual(be["messagesDelivered"], be0["messagesDelivered"])  # never replayed
        self.assertEqual(be["messagesLost"], be0["messagesLost"] + 2)

    def test_8_slot_lag_grows_while_stopped_and_returns_to_zero(self):
        harness.wait_for(lambda: self.sql_slot_lag() < 64 * 1024, 30, "lag ~0 before the stop")
        alarms_before = len(re.findall(ALARM_LOG, self.bridge.logs()))
        self.assertEqual(self.bridge.stop(), 0, self.bridge.logs()[-3000:])
        before = self.sql_slot_lag()
        self.create_patients(2)
        self.write_filler_wal()
        stopped_lag = self.sql_slot_lag()
        self.assertGreater(stopped_lag, before + ALARM_BYTES)
        # Without the stream the restarted reader cannot confirm the Patients, so the lag
        # /metrics shows after the restart is at least what piled up while stopped.
        self.client.js_delete_stream(STREAM)
        try:
            self.bridge.start()
            self.wait_ready()
            # (less what lay between the old confirmed position and the first Patient)
            harness.wait_for(lambda: self.op.metric("topicbridge_slot_lag_bytes")
                             >= stopped_lag - 16 * 1024, 10, "/metrics slot lag after the restart")
            self.assertEqual(self.op.metric("topicbridge_slot_lag_alarm"), 1)
            self.wait_new_log(ALARM_LOG, alarms_before)
        finally:
            self.client.js_add_stream(STREAM, [JS_SUBJECT])
        self.wait_delivered("js", 2)  # counters restart with the process
        self.wait_delivered("be", 2)
        harness.wait_for(lambda: self.sql_slot_lag() < 64 * 1024, 30, "SQL slot lag back to ~0")
        harness.wait_for(lambda: self.op.metric("topicbridge_slot_lag_bytes") < 64 * 1024, 10,
                         "/metrics slot lag back to ~0")
        harness.wait_for(lambda: self.op.metric("topicbridge_slot_lag_alarm") == 0, 10,
                         "the alarm to clear")

    def test_9_a_slot_that_vanishes_is_recreated_and_the_gap_is_logged(self):
        """A dropped slot (or a failover to a standby, which has no logical slots in PG 15) is
        created again so the stream goes on, but what fell between is lost: an error says so."""
        self.wait_ready()

        def drop():
            self.pg.sql("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                        f"WHERE slot_name = '{self.slot}' AND active_pid IS NOT NULL")
            try:
                self.pg.sql(f"SELECT pg_drop_replication_slot('{self.slot}')")
            except RuntimeError:  # still active: the walsender had not exited yet
                return False
            return True

        # The reader reconnects 0.5 s after losing its connection; on a loaded machine it won
        # that race against two psql calls again and again. Frozen, it cannot reconnect until
        # the slot is gone.
        pid = self.bridge.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            harness.wait_for(drop, 30, "the slot to be dropped while topicbridge is stopped")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.bridge.wait_log(rf"slot {self.slot} was gone .* is created again at [0-9A-F]+/[0-9A-F]+: "
                             r"changes committed after [0-9A-F]+/[0-9A-F]+ and before that are "
                             r"NOT delivered")
        self.wait_ready()
        delivered = self.op.counters("js")["messagesDelivered"]
        self.create_patients(1)
        self.wait_delivered("js", delivered + 1)


SECRETS = ("s3cretPG", "n4tsPass", "Wr0ngN4ts", "badPGpw99")


class SecretsAndJsonLogs(unittest.TestCase):
    """Passwords in the DSN and in NATS parameters, right and wrong, never leak."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.pg.sql("CREATE ROLE tb_secret LOGIN SUPERUSER REPLICATION PASSWORD 's3cretPG'")
        cls.dsn = (f"host=127.0.0.1 port={cls.pg.port} dbname=aidbox user=tb_secret "
                   "password=s3cretPG")
        cls.nats = harness.NatsServer(extra_args=["--user", "tbuser", "--pass", "n4tsPass"])
        cls.addClassCleanup(cls.nats.cleanup)
        cls.url = f"nats://127.0.0.1:{cls.nats.port}"
        cls.destinations = [
            destination("auth-ok", "nats-core-best-effort", cls.url, BE_SUBJECT,
                        [("username", "tbuser"),
                         ("password", "n4tsPass")]),
            destination("auth-bad", "nats-core-best-effort", cls.url, BE_SUBJECT,
                        [("username", "tbuser"),
                         ("password", "Wr0ngN4ts")]),
            destination("auth-url", "nats-jetstream-at-least-once",
                        f"nats://tbuser:Wr0ngN4ts@127.0.0.1:{cls.nats.port}", JS_SUBJECT),
        ]

    def run_bridge(self, log_format, rid):
        """Runs topicbridge (debug logs), creates one Patient, collects every surface."""
        port = harness.free_port()
        bridge = harness.Topicbridge(bridge_config(self.dsn, "tb_secret", port, self.destinations,
                                                   log_format=log_format, log_level="debug"))
        op = Operator(port, bridge)
        self.addCleanup(bridge.cleanup)
        bridge.wait_http_ok(f"http://127.0.0.1:{port}/healthz", timeout=60)
        harness.wait_for(lambda: op.metric("topicbridge_replication_connected") == 1, 60,
                         "replication to stream")
        harness.wait_for(lambda: op.metric("topicbridge_destination_connected",
                                           destination="auth-ok") == 1, 30, "auth-ok to connect")
        self.pg.sql(patient_sql(rid))
        op.wait_counter("auth-ok", "messagesDelivered", lambda v: v >= 1)
        op.wait_counter("auth-bad", "messagesLost", lambda v: v >= 1)
        op.wait_counter("auth-url", "messagesDeliveryAttempts", lambda v: v >= 1)
        self.assertTrue(op.errors("auth-bad"))
        self.assertTrue(op.errors("auth-url"))
        surfaces = {"/metrics": op.metrics(), "/readyz": op.get("/readyz")[1],
                    "/fhir/AidboxTopicDestination": op.get("/fhir/AidboxTopicDestination")[1]}
        for did in ("auth-ok", "auth-bad", "auth-url"):
            path = f"/fhir/AidboxTopicDestination/{did}/$status"
            surfaces[path] = op.get(path)[1]
        status = subprocess.run([str(bridge.binary), "status", "-c", str(bridge.config_file)],
                                capture_output=True, text=True, timeout=30)
        surfaces["topicbridge status"] = status.stdout + status.stderr
        self.exit_code = bridge.stop()
        surfaces["log"] = bridge.logs()
        return surfaces

    def assert_no_secret(self, surfaces):
        for where, text in surfaces.items():
            for secret in SECRETS:
                self.assertNotIn(secret, text, f"{secret} leaked in {where}")

    def test_1_text_logs_and_http_surfaces_hold_no_secret(self):
        surfaces = self.run_bridge("text", "sec-text")
        self.assertRegex(surfaces["/fhir/AidboxTopicDestination/auth-bad/$status"],
                         r"lastErrorDetail")  # the failure is recorded, without the password
        self.assert_no_secret(surfaces)

    def test_2_json_logs_are_one_object_per_line_and_hold_no_secret(self):
        surfaces = self.run_bridge("json", "sec-json")
        lines = surfaces["log"].splitlines()
        self.assertGreater(len(lines), 3)
        levels = set()
        for line in lines:
            record = json.loads(line)  # every line, whatever wrote it
            self.assertIsInstance(record, dict, line)
            for key in ("time", "level", "message"):
                self.assertIn(key, record, line)
            self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            levels.add(record["level"])
        self.assertIn("info", levels)
        self.assertLessEqual(levels, {"trace", "debug", "info", "warning", "error", "critical"})
        self.assert_no_secret(surfaces)

    def test_4_sigterm_exits_0_with_a_jetstream_destination_that_never_published(self):
        # auth-url never connects, so it never published (its messages are still waiting when
        # SIGTERM comes): the sink's destructor must cope with an empty JetStream context.
        surfaces = self.run_bridge("text", "sec-stop")
        self.assertIn("still in flight at shutdown", surfaces["log"])
        self.assertEqual(self.exit_code, 0, surfaces["log"][-3000:])

    def test_5_a_destination_that_cannot_start_is_a_json_log_line(self):
        bad = destination("no-seed", "nats-core-best-effort", self.url, BE_SUBJECT,
                          [("nkeySeedFilePath", "/nonexistent/seed")])
        bridge = harness.Topicbridge(bridge_config(self.dsn, "tb_secret", harness.free_port(),
                                                   [bad], log_format="json"))
        self.addCleanup(bridge.cleanup)
        self.assertEqual(bridge.wait_exit(30), 1)
        records = [json.loads(line) for line in bridge.logs().splitlines()]
        self.assertTrue(any(r["level"] == "critical" and "/nonexistent/seed" in r["message"]
                            for r in records), records)

    def test_3_wrong_database_password_is_reported_without_it(self):
        port = harness.free_port()
        dsn = self.dsn.replace("s3cretPG", "badPGpw99")
        bridge = harness.Topicbridge(bridge_config(dsn, "tb_secret", port, self.destinations[:1],
                                                   log_format="json", log_level="debug"))
        self.addCleanup(bridge.cleanup)
        bridge.wait_log(r"password", timeout=60)
        bridge.stop()
        log = bridge.logs()
        for line in log.splitlines():
            json.loads(line)
        self.assert_no_secret({"log": log})


if __name__ == "__main__":
    unittest.main(verbosity=2)
