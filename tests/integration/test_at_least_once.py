"""At-least-once delivery (issue 4) against a real PostgreSQL 15 + wal2json, a real nats-server
with JetStream and librdkafka's mock Kafka cluster: kill -9 of topicbridge, a NATS outage, a
Kafka outage, SIGTERM and one very large transaction lose no event; JetStream replays carry the
same Nats-Msg-Id and are dropped as duplicates; the slot does not move past an undelivered event;
peak memory stays bounded. Every scenario prints its numbers (events, duplicates, times, RSS).

Sizes: TB_ALO_EVENTS (kill -9 stream, default 10000) and TB_ALO_BIG_ROWS (one transaction,
default 50000; 200000 was measured by hand, see the report in the commit history)."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC_URL = "http://example.org/topics/patient-created"
STREAM = "EVENTS"
JS_SUBJECT = "patients.created"
KAFKA_TOPIC = "patients"
CORE_SUBJECT = "best-effort.patients"  # outside the stream's patients.>
SLOT = "topicbridge"
EVENTS = int(os.environ.get("TB_ALO_EVENTS", "10000"))
BIG_ROWS = int(os.environ.get("TB_ALO_BIG_ROWS", "50000"))
# TB_ALO_PEAK_RSS_LIMIT_KB: scripts/test.sh raises it for the ASan build (shadow memory, quarantine).
PEAK_RSS_LIMIT_KB = int(os.environ.get("TB_ALO_PEAK_RSS_LIMIT_KB", str(150 * 1024)))
WINDOW = 1000  # at-least-once window: small enough that an outage fills it and blocks the reader
# <destination>:<commit LSN>:<change LSN>, the same on JetStream and in Kafka's header.
MSG_ID = re.compile(r"^(js|kafka):([0-9A-F]+/[0-9A-F]+):([0-9A-F]+/[0-9A-F]+)$")


def parse_lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def bridge_config(pg, nats, kafka, http_port):
    return harness.bridge_config(
        pg.dsn(), SLOT, http_port,
        topics=[harness.topic_resource(TOPIC_URL, "Patient", "name.exists()")],
        destinations=[
            harness.destination_resource("js", "nats-jetstream-at-least-once", TOPIC_URL,
                                         [("url", nats.url), ("subject", JS_SUBJECT)]),
            harness.destination_resource("kafka", "kafka-at-least-once", TOPIC_URL,
                                         [("kafkaTopic", KAFKA_TOPIC),
                                          ("bootstrapServers", kafka.bootstraps),
                                          ("keyByResourceId", True)]),
            harness.destination_resource("core", "nats-core-best-effort", TOPIC_URL,
                                         [("url", nats.url), ("subject", CORE_SUBJECT)]),
        ],
        aidbox={"base_url": "http://localhost:8080"},
        log={"level": "info"},
        delivery={"at_least_once_window": WINDOW, "drain_timeout_ms": 10000})


class Writer:
    """A background psql committing `transactions` transactions of `per_tx` Patients each
    (ids <prefix>-0 ... in order), pausing `pause` seconds between transactions."""

    def __init__(self, pg, prefix, transactions, per_tx, pause):
        self.ids = [f"{prefix}-{i}" for i in range(transactions * per_tx)]
        lines = []
        for t in range(transactions):
            first = t * per_tx
            lines.append(
                "SELECT count(aidbox_create('Patient', '" + prefix + "-' || g, jsonb_build_object("
                "'name', jsonb_build_array(jsonb_build_object('family', 'F' || g, 'given', "
                "jsonb_build_array('Ann'))), 'gender', 'female', 'birthDate', '1970-01-01'))) "
                f"FROM generate_series({first}, {first + per_tx - 1}) g;")
            if pause:
                lines.append(f"SELECT pg_sleep({pause});")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(pg.bindir / "psql"), pg.dsn(), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._stdin_text = "\n".join(lines) + "\n"
        # Fed from a thread: the script may exceed the pipe buffer while psql is still busy.
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self):
        try:
            self.proc.stdin.write(self._stdin_text)
            self.proc.stdin.close()
        except OSError:
            pass

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=300):
        self.proc.wait(timeout)
        self._feeder.join(5)
        with self.proc.stderr:
            if self.proc.returncode != 0:
                raise RuntimeError(f"writer failed: {self.proc.stderr.read()}")
        return time.monotonic() - self.started


class AtLeastOnce(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A short wal_sender_timeout makes a reader that stops answering while blocked on a full
        # window lose its connection within the outages below.
        cls.pg = harness.PostgresCluster(extra_conf={"wal_sender_timeout": "'5s'"})
        cls.addClassCleanup(cls.pg.cleanup)
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)
        cls.client = harness.NatsClient(cls.nats.url)
        cls.addClassCleanup(lambda: cls.client.close())  # the client restart_client left
        cls.js_add_stream()
        cls.kafka = harness.KafkaMock(brokers=3)
        cls.addClassCleanup(cls.kafka.cleanup)
        cls.kafka.create_topic(KAFKA_TOPIC, 1)
        cls.http_port = harness.free_port()
        cls.bridge = harness.Topicbridge(
            bridge_config(cls.pg, cls.nats, cls.kafka, cls.http_port))
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.wait_ready()

    @classmethod
    def js_add_stream(cls):
        cls.client.js_add_stream(STREAM, ["patients.>"], duplicate_window=120 * 10**9)

    @classmethod
    def wait_ready(cls):
        cls.bridge.wait_http_ok(f"http://127.0.0.1:{cls.http_port}/readyz", timeout=60)

    def restart_client(self):
        try:
            type(self).client.close()
        except OSError:
            pass
        type(self).client = harness.NatsClient(self.nats.url)

    # --- reading what the brokers hold ---------------------------------------------------------

    def js_last_seq(self):
        return self.client.js_stream_info(STREAM)["state"]["last_seq"]

    def js_read(self, start_seq):
        """Stored messages from start_seq on: list of dicts seq, time_ns, msg_id, id."""
        last = self.js_last_seq()
        if last < start_seq:
            return []
        inbox = f"_INBOX.alo.{os.urandom(6).hex()}"
        sid = self.client.subscribe(inbox)
        config = {"deliver_subject": inbox, "ack_policy": "none",
                  "deliver_policy": "by_start_sequence", "opt_start_seq": start_seq,
                  "replay_policy": "instant", "flow_control": True,
                  "idle_heartbeat": 1_000_000_000, "mem_storage": True}
        name = self.client.js_api(f"CONSUMER.CREATE.{STREAM}",
                                  {"stream_name": STREAM, "config": config})["name"]
        out = []
        try:
            while True:
                m = self.client.next_message(timeout=30, sid=sid)
                if m.headers.get(":status"):
                    if m.reply:  # flow control: answer so the server keeps sending
                        self.client.publish(m.reply)
                    continue
                # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>
                tokens = m.reply.split(".")
                seq = int(tokens[5])
                body = json.loads(m.body)
                out.append({"seq": seq, "time_ns": int(tokens[7]),
                            "msg_id": m.headers.get("Nats-Msg-Id"),
                            "id": body["value"]["entry"][1]["resource"]["id"]})
                if seq >= last:
                    return out
        finally:
            self.client.unsubscribe(sid)
            self.client.js_api(f"CONSUMER.DELETE.{STREAM}.{name}")

    def kafka_end_offset(self):
        out = self.kafka.kcat("-Q", "-t", f"{KAFKA_TOPIC}:0:-1").decode()
        return int(re.search(r"offset (-?\d+)", out).group(1))

    def start_reading(self):
        """(first JetStream sequence, KafkaTail) for the events a scenario is about to write."""
        tail = harness.KafkaTail(self.kafka, KAFKA_TOPIC, self.kafka_end_offset())
        self.addCleanup(tail.close)
        return self.js_last_seq() + 1, tail

    def wait_all_delivered(self, ids, js_start, tail, timeout):
        """Waits until every id is in the stream and the Kafka topic; returns the reads."""
        want = set(ids)
        deadline = time.monotonic() + timeout
        js = kafka = None
        while True:
            if self.js_last_seq() - js_start + 1 >= len(want):
                js = self.js_read(js_start)
                if want <= {m["id"] for m in js}:
                    break
            if time.monotonic() > deadline:
                missing = want - {m["id"] for m in (js or [])}
                self.fail(f"JetStream misses {len(missing)} events, e.g. {sorted(missing)[:5]}\n"
                          + self.bridge.logs()[-4000:])
            time.sleep(0.5)
        while tail is not None:
            kafka = tail.snapshot()
            if want <= {m.id for m in kafka}:
                break
            if time.monotonic() > deadline:
                missing = want - {m.id for m in kafka}
                self.fail(f"Kafka misses {len(missing)} events, e.g. {sorted(missing)[:5]} "
                          f"(read {len(kafka)}, offset gaps {tail.gaps[:3]}); "
                          f"$status {self.status('kafka')}\n" + self.bridge.logs()[-4000:])
            time.sleep(1.0)
        return js, kafka

    def check_no_loss(self, label, ids, js, kafka):
        """Asserts every id is present; returns (JetStream duplicates, Kafka duplicates)."""
        want = set(ids)
        js_counts = Counter(m["id"] for m in js if m["id"] in want)
        self.assertEqual(set(js_counts), want, f"{label}: JetStream lost events")
        js_dups = sum(js_counts.values()) - len(want)
        kafka_dups = None
        if kafka is not None:
            kafka_counts = Counter(rid for _, rid, _ in kafka if rid in want)
            self.assertEqual(set(kafka_counts), want, f"{label}: Kafka lost events")
            by_id = {}
            for key, rid, msg_id in kafka:
                self.assertEqual(key, rid, "keyByResourceId: the Kafka key is the resource id")
                self.assertRegex(msg_id or "", MSG_ID, "topicbridge-message-id header")
                # A replay carries the same id: deduplicating by it leaves one per event.
                self.assertEqual(by_id.setdefault(msg_id, rid), rid, "one message id, one event")
            self.assertEqual(len({m for m, rid in by_id.items() if rid in want}), len(want),
                             f"{label}: Kafka message ids, one per event")
            kafka_dups = sum(kafka_counts.values()) - len(want)
        print(f"\n[{label}] events={len(want)} jetstream: stored={sum(js_counts.values())} "
              f"duplicates={js_dups}; kafka: duplicates={kafka_dups}", flush=True)
        return js_dups, kafka_dups

    def check_msg_ids(self, js):
        """Every JetStream message has Nats-Msg-Id js:<commit lsn>:<change lsn>, one per event."""
        by_id = {}
        for m in js:
            self.assertIsNotNone(m["msg_id"], "Nats-Msg-Id header missing")
            self.assertRegex(m["msg_id"], MSG_ID)
            self.assertEqual(by_id.setdefault(m["msg_id"], m["id"]), m["id"],
                             "one Nats-Msg-Id names one event")
        return by_id

    def confirmed_flush_lsn(self):
        value = self.pg.value(
            f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{SLOT}'")
        return parse_lsn(value) if value else 0

    def replication_losses(self):
        return self.bridge.logs().count("replication connection lost")

    def vm_hwm_kb(self):
        with open(f"/proc/{self.bridge.pid}/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))

    def status(self, destination):
        url = (f"http://127.0.0.1:{self.http_port}/fhir/AidboxTopicDestination/"
               f"{destination}/$status")
        with urllib.request.urlopen(url, timeout=5) as r:
            params = json.load(r)["parameter"]
        return {p["name"]: p.get("valueDecimal", p.get("valueString")) for p in params}

    # --- scenarios -----------------------------------------------------------------------------

    def test_0_sigterm_before_any_message_exits_0(self):
        self.assertEqual(self.bridge.stop(), 0, self.bridge.logs()[-3000:])
        self.bridge.start()
        self.wait_ready()

    def test_1_kill_9_three_times_loses_nothing(self):
        js_start, tail = self.start_reading()
        writer = Writer(self.pg, "k9", EVENTS // 10, 10, 0.015)
        kills = 0
        for at in (4, 9, 14):
            while time.monotonic() - writer.started < at and writer.running():
                time.sleep(0.1)
            self.bridge.kill()
            kills += 1
            time.sleep(1.0)
            self.bridge.start()
        restarted = time.monotonic()
        write_seconds = writer.wait()
        js, kafka = self.wait_all_delivered(writer.ids, js_start, tail, timeout=180)
        recovered = time.monotonic() - restarted
        print(f"\n[kill -9] {kills} kills, {len(writer.ids)} events in {EVENTS // 10} "
              f"transactions written in {write_seconds:.1f}s; all delivered {recovered:.1f}s "
              f"after the last restart", flush=True)
        js_dups, _ = self.check_no_loss("kill -9", writer.ids, js, kafka)
        by_id = self.check_msg_ids(js)
        self.assertEqual(js_dups, 0, "replays within the duplicate window are dropped")
        self.assertEqual(len(by_id), len(writer.ids))
        self.wait_ready()

    def test_2_nats_outage_holds_the_slot_and_loses_nothing(self):
        js_start, tail = self.start_reading()
        losses_before = self.replication_losses()
        writer = Writer(self.pg, "nats-down", 300, 10, 0.01)
        while time.monotonic() - writer.started < 2 and writer.running():
            time.sleep(0.1)
        self.nats.stop()
        down_at = time.time_ns()
        highest_confirmed = 0
        while time.time_ns() - down_at < 10 * 10**9:
            highest_confirmed = max(highest_confirmed, self.confirmed_flush_lsn())
            time.sleep(0.3)
        up_at = time.time_ns()
        self.nats.start()
        self.restart_client()
        restarted = time.monotonic()
        writer.wait()
        js, kafka = self.wait_all_delivered(writer.ids, js_start, tail, timeout=120)
        recovered = time.monotonic() - restarted
        self.check_no_loss("nats down 10s", writer.ids, js, kafka)
        self.check_msg_ids(js)
        stored_before = [m for m in js if m["time_ns"] < down_at]
        stored_after = [m for m in js if m["time_ns"] >= up_at]
        self.assertTrue(stored_before and stored_after, "the outage was mid-stream")
        first_undelivered = min(parse_lsn(MSG_ID.match(m["msg_id"]).group(2))
                                for m in stored_after)
        print(f"\n[nats down 10s] stored before the outage: {len(stored_before)}, after: "
              f"{len(stored_after)}; slot confirmed_flush_lsn while down <= "
              f"{highest_confirmed:X}, first undelivered commit lsn {first_undelivered:X}; "
              f"all delivered {recovered:.1f}s after nats-server restarted", flush=True)
        self.assertLessEqual(highest_confirmed, first_undelivered,
                             "the slot passed an event JetStream had not acknowledged")
        self.assertEqual(self.replication_losses(), losses_before,
                         "the reader blocked on the full window lost its replication connection:\n"
                         + self.bridge.logs()[-4000:])

    def test_3_kafka_outage_loses_nothing(self):
        js_start, tail = self.start_reading()
        core = self.client.subscribe(CORE_SUBJECT)
        writer = Writer(self.pg, "kafka-down", 300, 10, 0.01)
        while time.monotonic() - writer.started < 2 and writer.running():
            time.sleep(0.1)
        for broker in (1, 2, 3):
            self.kafka.broker_down(broker)
        core_at_down = self.client.pending(core)
        time.sleep(10)
        # Best-effort has its own queue: it keeps flowing while Kafka is down, until the Kafka
        # window fills and pauses the reader for everyone.
        core_during_outage = self.client.pending(core) - core_at_down
        for broker in (1, 2, 3):
            self.kafka.broker_up(broker)
        restarted = time.monotonic()
        writer.wait()
        js, kafka = self.wait_all_delivered(writer.ids, js_start, tail, timeout=180)
        recovered = time.monotonic() - restarted
        self.client.unsubscribe(core)
        print(f"\n[kafka down 10s] best-effort NATS messages received while Kafka was down: "
              f"{core_during_outage}; all delivered {recovered:.1f}s after the brokers came "
              f"back", flush=True)
        self.check_no_loss("kafka down 10s", writer.ids, js, kafka)
        self.assertGreater(core_during_outage, 0)

    def test_4_sigterm_drains_confirms_and_exits_0(self):
        js_start, tail = self.start_reading()
        writer = Writer(self.pg, "term", 200, 10, 0.01)
        while time.monotonic() - writer.started < 2 and writer.running():
            time.sleep(0.1)
        started = time.monotonic()
        code = self.bridge.stop(timeout=60)
        stop_seconds = time.monotonic() - started
        self.assertEqual(code, 0, self.bridge.logs()[-4000:])
        confirmed = self.confirmed_flush_lsn()
        # Every transaction whose events all reached JetStream before the exit is confirmed.
        js = self.js_read(js_start)
        per_tx = Counter(MSG_ID.match(m["msg_id"]).group(2) for m in js)
        complete = [parse_lsn(lsn) for lsn, n in per_tx.items() if n == 10]
        self.assertTrue(complete, "SIGTERM came mid-stream")
        self.assertGreater(confirmed, max(complete),
                           f"a drained transaction was not confirmed (confirmed {confirmed:X}, "
                           f"complete {max(complete):X}):\n{self.bridge.logs()[-3000:]}")
        in_flight_warnings = self.bridge.logs().count("still in flight at shutdown")
        finished_open = "reading the open transaction to its commit" in self.bridge.logs()
        self.bridge.start()
        self.wait_ready()
        writer.wait()
        js, kafka = self.wait_all_delivered(writer.ids, js_start, tail, timeout=120)
        _, kafka_dups = self.check_no_loss("sigterm", writer.ids, js, kafka)
        print(f"\n[sigterm] exit 0 after {stop_seconds:.1f}s; {len(complete)} complete "
              f"transactions in JetStream at exit, all confirmed; stopped inside a transaction "
              f"and read it to its commit: {'yes' if finished_open else 'no'}; Kafka duplicates "
              f"after the restart: {kafka_dups}", flush=True)
        self.assertEqual(in_flight_warnings, 0, "the drain completed")
        # At most one transaction may be sent again: the one open at the stop, if the full
        # window turned a message of it away (else it was read to its commit and confirmed).
        self.assertLessEqual(kafka_dups, 10)

    def test_5_one_big_transaction_with_bounded_memory(self):
        # A fresh process, so VmHWM is this transaction's peak, with the default window.
        self.assertEqual(self.bridge.stop(), 0)
        config = bridge_config(self.pg, self.nats, self.kafka, self.http_port)
        del config["delivery"]["at_least_once_window"]
        self.bridge.write_config(config)
        self.bridge.start()
        self.wait_ready()
        js_start = self.js_last_seq() + 1
        ids = [f"big-{i}" for i in range(BIG_ROWS)]
        started = time.monotonic()
        self.pg.sql(
            "INSERT INTO patient (id, txid, ts, cts, resource_type, status, resource) "
            "SELECT 'big-' || g, txid_current(), now(), now(), 'Patient', 'created', "
            "jsonb_build_object('name', jsonb_build_array(jsonb_build_object('family', 'F' || g, "
            "'given', jsonb_build_array('Ann'))), 'gender', 'female', 'birthDate', '1970-01-01') "
            f"FROM generate_series(0, {BIG_ROWS - 1}) g", timeout=300)
        committed = time.monotonic() - started
        # Kafka by its acknowledgements: the mock cluster keeps only ~5 MB per partition, less
        # than this transaction, and a reader racing the burst is not what is tested here.
        js, _ = self.wait_all_delivered(ids, js_start, None, timeout=400)
        harness.wait_for(lambda: self.status("kafka")["messagesDelivered"] >= BIG_ROWS, 120,
                         "Kafka to acknowledge the transaction")
        delivered = time.monotonic() - started
        peak_kb = self.vm_hwm_kb()
        print(f"\n[big transaction] {BIG_ROWS} rows committed in {committed:.1f}s, delivered to "
              f"JetStream and Kafka {delivered:.1f}s after the start; topicbridge VmHWM "
              f"{peak_kb / 1024:.1f} MB", flush=True)
        self.check_no_loss("big transaction", ids, js, None)
        self.assertEqual(self.status("kafka")["messagesDelivered"], BIG_ROWS)
        self.assertLess(peak_kb, PEAK_RSS_LIMIT_KB)


if __name__ == "__main__":
    unittest.main(verbosity=2)
