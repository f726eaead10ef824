"""Faults at run time (issue 8) against a real PostgreSQL 15 + wal2json, a real nats-server with
JetStream and librdkafka's mock Kafka cluster, counting events end to end (committed rows, then
what JetStream stores and what a Kafka reader sees). test_at_least_once.py already covers kill -9
of topicbridge, nats-server down 10 s, all Kafka brokers down 10 s and SIGTERM; this suite adds:
PostgreSQL restarted mid-stream (fast and immediate), nats-server killed -9 and restarted on its
store, Kafka produce requests failing with injected broker errors, a JetStream stream that
refuses messages (full, discard new) until its limit is raised, an Aidbox row that cannot be
mapped, and a standby topicbridge on the same slot taking over from a killed one.
Every scenario prints its numbers."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_at_least_once as alo  # noqa: E402  (its bridge config and constants)

STREAM, SLOT = alo.STREAM, alo.SLOT
CREATE_PATIENT = ("SELECT aidbox_create('Patient', '{id}', '{{\"name\": [{{\"family\": \"F\"}}]}}');")
# A row Aidbox itself would never write (the resource is a JSON array): the row mapper rejects it.
UNMAPPABLE_ROW = ("INSERT INTO {table} (id, txid, ts, cts, resource_type, status, resource) "
                  "VALUES ('{id}', txid_current(), now(), now(), '{type}', 'created', '[1, 2]');")


class SteadyWriter:
    """Commits transactions of `per_tx` Patients (ids <prefix>-<n>) at `rate` per second for
    `seconds` through one psql session; when PostgreSQL goes away the session is started again
    and writing goes on with the next transaction. What was committed is read back from the
    database (committed_ids), so a transaction cut by a restart counts only if it committed."""

    def __init__(self, pg, prefix, rate, per_tx, seconds):
        self.pg, self.prefix, self.rate, self.per_tx = pg, prefix, rate, per_tx
        self.transactions = int(rate * seconds)
        self.sessions = 0  # psql sessions started (1 + restarts)
        self.stopping = False
        self.proc = None
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _statement(self, t):
        first = t * self.per_tx
        return ("SELECT count(aidbox_create('Patient', '" + self.prefix + "-' || g, "
                "jsonb_build_object('name', jsonb_build_array(jsonb_build_object('family', "
                "'F' || g, 'given', jsonb_build_array('Ann'))), 'gender', 'female', "
                "'birthDate', '1970-01-01'))) "
                f"FROM generate_series({first}, {first + self.per_tx - 1}) g;\n")

    def _session(self):
        while not self.stopping:
            proc = subprocess.Popen(
                [str(self.pg.bindir / "psql"), self.pg.dsn(), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                text=True)
            time.sleep(0.1)
            if proc.poll() is None:
                self.sessions += 1
                return proc
            self._end(proc)
            time.sleep(0.3)  # the server is not back yet
        return None

    def _run(self):
        for t in range(self.transactions):
            due = self.started + t / self.rate
            while not self.stopping and time.monotonic() < due:
                time.sleep(min(0.05, max(0.0, due - time.monotonic())))
            if self.stopping:
                break
            while not self.stopping:
                if self.proc is None or self.proc.poll() is not None:
                    if self.proc is not None:
                        self._end(self.proc)
                    self.proc = self._session()
                    if self.proc is None:
                        break
                try:
                    self.proc.stdin.write(self._statement(t))
                    self.proc.stdin.flush()
                    break
                except OSError:  # psql ended (server restart): this transaction is not sent
                    self._end(self.proc)
                    self.proc = None
                    break
        if self.proc is not None:
            self._end(self.proc)

    @staticmethod
    def _end(proc):
        """Closes psql's input (it then commits what it read and exits) and reaps it."""
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def running(self):
        return self.thread.is_alive()

    def wait(self, timeout=600):
        self.thread.join(timeout)
        return time.monotonic() - self.started

    def stop(self):
        self.stopping = True
        self.wait()

    def committed_ids(self):
        rows = self.pg.sql(f"SELECT id FROM patient WHERE id LIKE '{self.prefix}-%'")
        return {r[0] for r in rows}


def wait_until(start, seconds, writer=None):
    """Sleeps until `seconds` after the monotonic time `start` (or the writer ends)."""
    while time.monotonic() - start < seconds and (writer is None or writer.running()):
        time.sleep(0.05)


def http_get(url):
    """(status, body text) of a GET, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # As in test_at_least_once: a reader that stops answering loses its connection quickly.
        cls.pg = harness.PostgresCluster(extra_conf={"wal_sender_timeout": "'5s'"})
        cls.addClassCleanup(cls.pg.cleanup)
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)
        cls.client = harness.NatsClient(cls.nats.url)
        cls.addClassCleanup(lambda: cls.client.close())  # the client restart_client left
        cls.client.js_add_stream(STREAM, ["patients.>"], duplicate_window=120 * 10**9)
        cls.kafka = harness.KafkaMock(brokers=3)
        cls.addClassCleanup(cls.kafka.cleanup)
        cls.kafka.create_topic(alo.KAFKA_TOPIC, 1)
        cls.http_port = harness.free_port()
        cls.bridge = harness.Topicbridge(
            alo.bridge_config(cls.pg, cls.nats, cls.kafka, cls.http_port))
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.wait_ready()

    @classmethod
    def wait_ready(cls, port=None, bridge=None):
        (bridge or cls.bridge).wait_http_ok(f"http://127.0.0.1:{port or cls.http_port}/readyz",
                                            timeout=60)

    def restart_client(self):
        try:
            type(self).client.close()
        except OSError:
            pass
        type(self).client = harness.wait_for(self._try_client, 20, "a NATS client connection")

    def _try_client(self):
        try:
            return harness.NatsClient(self.nats.url)
        except OSError:
            return None

    # --- counting ------------------------------------------------------------------------------

    def js_last_seq(self):
        return self.client.js_stream_info(STREAM)["state"]["last_seq"]

    def start_reading(self):
        """(first JetStream sequence, Kafka reader) for the events a scenario is about to write."""
        tail = harness.KafkaTail(self.kafka, alo.KAFKA_TOPIC, self.kafka_end_offset())
        self.addCleanup(tail.close)
        return self.js_last_seq() + 1, tail

    def kafka_end_offset(self):
        out = self.kafka.kcat("-Q", "-t", f"{alo.KAFKA_TOPIC}:0:-1").decode()
        return int(out.rsplit("offset", 1)[1].split()[0])

    def js_ids(self, js_start):
        return [m.json()["value"]["entry"][1]["resource"]["id"]
                for m in self.client.js_read(STREAM, js_start)]

    def wait_delivered(self, ids, js_start, tail, timeout=120):
        """Waits until every id is in JetStream and (tail not None) Kafka; returns
        (JetStream ids, Kafka ids or None) as read, duplicates included."""
        want = set(ids)
        js = []

        def js_complete():
            nonlocal js
            if self.js_last_seq() - js_start + 1 < len(want):
                return False
            js = self.js_ids(js_start)
            return want <= set(js)

        try:
            harness.wait_for(js_complete, timeout, "JetStream to hold every event", interval=0.5)
            kafka = None
            if tail is not None:
                harness.wait_for(lambda: want <= tail.ids(), timeout,
                                 "the Kafka topic to hold every event", interval=0.5)
                kafka = tail.ids(unique=False)
        except TimeoutError as e:
            # Tell a lost event from a held one: is it still counted in flight or queued, and
            # did the slot confirm past it? (topicbridge keeps what it has not delivered.)
            missing = sorted(want - tail.ids()) if tail else []
            kafka_status = {k: v for k, v in self.status("kafka").items() if k != "raw"}
            slot = self.pg.value("SELECT confirmed_flush_lsn FROM pg_replication_slots")
            self.fail(f"{e}: JetStream misses {len(want - set(js))}, Kafka misses "
                      f"{len(missing) if tail else '-'} (e.g. {missing[:5]}); kafka $status "
                      f"{kafka_status}; slot confirmed_flush_lsn {slot}; kafka offsets read "
                      f"up to {tail.next_offset if tail else '-'} of {self.kafka_end_offset()} "
                      f"(gaps {tail.gaps[:3] if tail else '-'})\n"
                      + self.bridge.logs()[-4000:])
        return js, kafka

    def report(self, label, ids, js, kafka, **numbers):
        """Asserts nothing was lost; prints and returns (JetStream dups, Kafka dups)."""
        want = set(ids)
        js_counts = Counter(i for i in js if i in want)
        kafka_counts = Counter(i for i in kafka or () if i in want)
        self.assertEqual(set(js_counts), want, f"{label}: JetStream lost events")
        if kafka is not None:
            self.assertEqual(set(kafka_counts), want, f"{label}: Kafka lost events")
        js_dups = sum(js_counts.values()) - len(want)
        kafka_dups = sum(kafka_counts.values()) - len(want) if kafka is not None else None
        extra = " ".join(f"{k}={v}" for k, v in numbers.items())
        print(f"\n[{label}] committed={len(want)} lost=0 jetstream_duplicates={js_dups} "
              f"kafka_duplicates={kafka_dups} {extra}", flush=True)
        return js_dups, kafka_dups

    def status(self, destination, port=None):
        """$status of a destination: name -> value, and "errors": the lastErrorDetail messages,
        newest first."""
        url = (f"http://127.0.0.1:{port or self.http_port}/fhir/AidboxTopicDestination/"
               f"{destination}/$status")
        with urllib.request.urlopen(url, timeout=5) as r:
            params = json.load(r)["parameter"]
        out = {"errors": []}
        for p in params:
            if p["name"] == "lastErrorDetail":
                out["errors"] += [x["valueString"] for x in p["part"] if x["name"] == "message"]
            else:
                out[p["name"]] = p.get("valueDecimal", p.get("valueString"))
        return out

    def reconnects(self):
        return self.bridge.logs().count("replication: streaming slot")

    # --- scenarios -----------------------------------------------------------------------------

    def test_1_postgres_restarted_fast_then_immediate_mid_stream(self):
        js_start, tail = self.start_reading()
        streams_before = self.reconnects()
        writer = SteadyWriter(self.pg, "pg-restart", rate=40, per_tx=5, seconds=12)
        wait_until(writer.started, 3, writer)
        self.pg.restart("fast")
        wait_until(writer.started, 7, writer)
        self.pg.restart("immediate")  # a crash: recovery, no shutdown checkpoint
        writer.wait()
        ids = writer.committed_ids()
        waited = time.monotonic()
        js, kafka = self.wait_delivered(ids, js_start, tail)
        self.report("postgres restart -m fast, then -m immediate", ids, js, kafka,
                    writer_sessions=writer.sessions,
                    replication_restarts=self.reconnects() - streams_before,
                    delivered_after_write_s=f"{time.monotonic() - waited:.1f}")
        self.assertGreaterEqual(self.reconnects() - streams_before, 2,
                                "topicbridge streamed again after each restart")
        self.assertGreaterEqual(writer.sessions, 3, "both restarts came while writing")
        self.wait_ready()

    def test_2_nats_server_killed_and_restarted_on_its_store(self):
        js_start, tail = self.start_reading()
        writer = SteadyWriter(self.pg, "nats-kill", rate=40, per_tx=5, seconds=8)
        wait_until(writer.started, 3, writer)
        stored_before = self.js_last_seq() - js_start + 1
        self.nats.kill()  # SIGKILL: JetStream recovers its store on start
        time.sleep(1.0)
        self.nats.start()
        self.restart_client()
        writer.wait()
        ids = writer.committed_ids()
        js, kafka = self.wait_delivered(ids, js_start, tail)
        js_dups, _ = self.report("nats-server kill -9 and restart", ids, js, kafka,
                                 stored_before_kill=stored_before)
        self.assertGreater(stored_before, 0, "the kill came mid-stream")
        self.assertEqual(js_dups, 0, "resends after the restart carry their Nats-Msg-Id")
        self.wait_ready()

    def test_3_kafka_produce_errors_are_retried(self):
        js_start, tail = self.start_reading()
        attempts_before = self.status("kafka")["messagesDeliveryAttempts"]
        writer = SteadyWriter(self.pg, "kafka-errors", rate=20, per_tx=5, seconds=6)
        wait_until(writer.started, 1.5, writer)
        # A broker whose log directory failed, then one short of in-sync replicas (both
        # retriable: librdkafka retries them itself), then a request the broker refuses for
        # good (not retriable: topicbridge's own retry sends it again).
        self.kafka.request_errors(0, *["KAFKA_STORAGE_ERROR"] * 3,
                                  *["NOT_ENOUGH_REPLICAS"] * 3)
        wait_until(writer.started, 3.5, writer)
        self.kafka.request_errors(0, *["POLICY_VIOLATION"] * 2)
        self.check_refused_produce("kafka produce errors", writer, js_start, tail,
                                   attempts_before, shown="Policy violation")

    def test_3a_kafka_sequence_error_is_retried(self):
        js_start, tail = self.start_reading()
        attempts_before = self.status("kafka")["messagesDeliveryAttempts"]
        writer = SteadyWriter(self.pg, "kafka-sequence", rate=20, per_tx=5, seconds=3)
        wait_until(writer.started, 1, writer)
        # A broker that answers a sequence number it did not expect (what it says after losing
        # acknowledged data). An idempotent producer cannot go on after this (a fatal error);
        # topicbridge's at-least-once producer is not idempotent: the batch fails, topicbridge
        # sends it again in order and the slot holds meanwhile.
        self.kafka.request_errors(0, "OUT_OF_ORDER_SEQUENCE_NUMBER")
        self.check_refused_produce("kafka out-of-order sequence answer", writer, js_start, tail,
                                   attempts_before, shown="out of order sequence number")
        self.assertNotIn("fatal", self.bridge.logs())

    def check_refused_produce(self, what, writer, js_start, tail, attempts_before, shown):
        """After the writer: every committed event in JetStream and Kafka, the refusal (text
        `shown`) in the Kafka destination's $status errors, and the bridge ready again."""
        writer.wait()
        ids = writer.committed_ids()
        js, kafka = self.wait_delivered(ids, js_start, tail)
        status = self.status("kafka")
        refusals = [e for e in status["errors"] if shown in e]  # newest first
        self.report(what, ids, js, kafka,
                    delivery_attempts=status["messagesDeliveryAttempts"] - attempts_before,
                    last_refusal=refusals[:1])
        self.assertTrue(refusals, f"the refused produce shows in $status: {status['errors']}")
        self.wait_ready()

    def test_4_jetstream_stream_full_then_raised(self):
        js_start, tail = self.start_reading()
        used = self.client.js_stream_info(STREAM)["state"]["bytes"]
        # Room for about 40 of the 200 messages: "disk full" as the broker reports it.
        self.client.js_update_stream(STREAM, max_bytes=used + 40 * 1600, discard="new")
        self.addCleanup(lambda: self.client.js_update_stream(STREAM, max_bytes=-1))
        writer = SteadyWriter(self.pg, "js-full", rate=20, per_tx=5, seconds=2)
        writer.wait()
        full = harness.wait_for(
            lambda: [e for e in self.status("js")["errors"] if "maximum bytes" in e], 30,
            "$status of js to show the refused publish")
        stored_while_full = self.js_last_seq() - js_start + 1
        time.sleep(2)
        self.client.js_update_stream(STREAM, max_bytes=-1)
        raised = time.monotonic()
        ids = writer.committed_ids()
        js, kafka = self.wait_delivered(ids, js_start, tail)
        status = self.status("js")
        self.report("jetstream stream full (max_bytes, discard new), then raised", ids, js, kafka,
                    stored_while_full=stored_while_full,
                    delivered_after_raise_s=f"{time.monotonic() - raised:.1f}",
                    failed_attempts_reported=status["messagesDeliveryAttempts"],
                    last_error=full[-1])
        self.assertLess(stored_while_full, len(ids), "the stream refused messages")
        self.wait_ready()

    def test_5_standby_takes_over_when_the_active_one_is_killed(self):
        js_start, tail = self.start_reading()
        port = harness.free_port()
        standby_started = time.monotonic()
        standby = harness.Topicbridge(alo.bridge_config(self.pg, self.nats, self.kafka, port))
        self.addCleanup(standby.cleanup)
        readyz = f"http://127.0.0.1:{port}/readyz"
        # The slot admits one reader: the second process waits for it, and says so.
        standby.wait_log(r"in use by another process .*(standing by|stop the other)", 30)
        self.assertEqual(http_get(readyz)[0], 503, "a standby is not ready")
        # By now its retries are at their slowest (backoff doubling to 5 s): the worst case.
        wait_until(standby_started, 12)
        writer = SteadyWriter(self.pg, "takeover", rate=20, per_tx=5, seconds=10)
        wait_until(writer.started, 3, writer)
        self.bridge.kill()
        killed = time.monotonic()
        harness.wait_for(lambda: http_get(readyz)[0] == 200, 60, "the standby to take over",
                         interval=0.1)
        takeover = time.monotonic() - killed
        writer.wait()
        ids = writer.committed_ids()
        js, kafka = self.wait_delivered(ids, js_start, tail)
        js_dups, _ = self.report("standby takes over from a killed topicbridge", ids, js, kafka,
                                 takeover_s=f"{takeover:.1f}")
        self.assertEqual(js_dups, 0)
        # Hand the slot back: the first process waits as standby until this one stops.
        self.bridge.start()
        self.bridge.wait_log(r"in use by another process", 30)
        self.assertEqual(standby.stop(), 0, standby.logs()[-3000:])
        self.wait_ready()

    def metric(self, name, port=None):
        _, text = http_get(f"http://127.0.0.1:{port or self.http_port}/metrics")
        m = re.search(rf"^topicbridge_{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def test_6_unmappable_row_only_best_effort_wants_is_skipped(self):
        # Observations go to a best-effort destination only, read by a second process on its own
        # slot (the first one does not decode the observation table).
        self.pg.sql("SELECT aidbox_ensure_table('Observation')")
        port = harness.free_port()
        topic = "http://example.org/topics/observations"
        other = harness.Topicbridge(harness.bridge_config(
            self.pg.dsn(), "best_effort_only", port,
            topics=[harness.topic_resource(topic, "Observation")],
            destinations=[harness.destination_resource(
                "obs", "nats-core-best-effort", topic,
                [("url", self.nats.url), ("subject", "observations")])]))
        self.addCleanup(other.cleanup)
        self.wait_ready(port, other)
        sid = self.client.subscribe("observations")
        self.addCleanup(self.client.unsubscribe, sid)
        self.pg.sql(UNMAPPABLE_ROW.format(table="observation", type="Observation", id="obs-bad")
                    + "SELECT aidbox_create('Observation', 'obs-good', "
                      "'{\"status\": \"final\", \"code\": {\"text\": \"x\"}}');")
        message = self.client.next_message(timeout=30, sid=sid)
        self.assertEqual(message.json()["value"]["entry"][1]["resource"]["id"], "obs-good")
        logged = other.wait_log(r"lsn [0-9A-F]+/[0-9A-F]+: column resource of Observation/obs-bad "
                                r"is not a JSON object.*; skipped")
        self.assertEqual(self.metric("replication_changes_unprocessable_total", port), 1)
        self.assertEqual(self.metric("replication_halted", port), 0)
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/readyz")[0], 200)
        print(f"\n[unmappable row, best-effort only] logged: {logged.group(0)[:100]}...; the next "
              f"event was delivered", flush=True)

    def test_7_unmappable_row_an_at_least_once_destination_wants_halts_the_stream(self):
        js_start, tail = self.start_reading()
        readyz = f"http://127.0.0.1:{self.http_port}/readyz"
        self.pg.sql(CREATE_PATIENT.format(id="mal-before"))
        self.pg.sql("BEGIN;" + CREATE_PATIENT.format(id="mal-in-0")
                    + UNMAPPABLE_ROW.format(table="patient", type="Patient", id="mal-bad")
                    + CREATE_PATIENT.format(id="mal-in-1") + "COMMIT;")
        self.pg.sql(CREATE_PATIENT.format(id="mal-after"))
        _, why = harness.wait_for(lambda: (r := http_get(readyz))[0] == 503 and r, 30,
                                  "/readyz to report the halt")
        self.assertIn("Patient/mal-bad is not a JSON object", why)
        skip_to = re.search(rf"pg_replication_slot_advance\('{SLOT}', '([0-9A-F]+/[0-9A-F]+)'\)",
                            why).group(1)
        self.assertEqual(self.metric("replication_halted"), 1)
        self.assertGreaterEqual(self.metric("replication_changes_unprocessable_total"), 1)
        self.assertTrue(any("halted" in e for e in self.status("js")["errors"]))
        self.assertRegex(self.bridge.logs(), r"replication halted at lsn [0-9A-F]+/[0-9A-F]+: ")
        js, _ = self.wait_delivered(["mal-before"], js_start, None)
        self.assertNotIn("mal-in-1", js, "nothing after the unmappable row went out")
        self.assertNotIn("mal-after", js, "nothing after the unmappable row went out")
        # The operator decides to skip that transaction, as the message says.
        self.assertEqual(self.bridge.stop(), 0, self.bridge.logs()[-3000:])
        self.pg.sql(f"SELECT pg_replication_slot_advance('{SLOT}', '{skip_to}')")
        self.bridge.start()
        self.wait_ready()
        js, kafka = self.wait_delivered(["mal-before", "mal-after"], js_start, tail)
        self.assertNotIn("mal-in-1", js)
        self.assertEqual(self.metric("replication_halted"), 0)
        print(f"\n[unmappable row, at-least-once] halted before the transaction ending at "
              f"{skip_to}; readyz 503 naming the row and the skip command; after "
              f"pg_replication_slot_advance the stream went on: mal-after delivered; "
              f"mal-in-0 (before the bad row, same transaction) delivered: {'mal-in-0' in js}",
              flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
