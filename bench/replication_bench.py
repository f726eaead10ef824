#!/usr/bin/env python3
"""End-to-end replication benchmark: how fast topicbridge drains a wal2json slot, compared with
pg_recvlogical draining the same WAL (the physical limit of logical decoding here), and the
commit-to-delivery latency at a steady transaction rate.

Starts its own throwaway PostgreSQL 15 + wal2json, nats-server (JetStream) and Kafka mock cluster
on loopback with tests/integration/harness.py, creates one slot per measurement before any data
is written (so every slot starts at the same LSN), commits N Patients (~800 bytes each) and
drains each slot. Prints one table (and --json FILE writes the numbers). Not a test: slow.

Usage: python3 bench/replication_bench.py [--quick] [--rows N] [--shape tx10|tx1|huge] ...
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402

KINDS = ["nats-core-best-effort", "nats-jetstream-at-least-once", "kafka-at-least-once"]
SHORT = {"nats-core-best-effort": "core", "nats-jetstream-at-least-once": "js",
         "kafka-at-least-once": "kafka"}
# The ten resource types of the 50-topic variant, five topics each; Patient first.
TYPES = ["Patient", "Observation", "Encounter", "Practitioner", "Organization",
         "DiagnosticReport", "Condition", "MedicationRequest", "Appointment",
         "QuestionnaireResponse"]
WAL2JSON_OPTIONS = ["format-version=2", "include-lsn=1", "include-timestamp=1", "include-xids=1",
                    "include-transaction=1"]
STREAM = "BENCH"
SUBJECT_PREFIX = "bench"
TICKS = os.sysconf("SC_CLK_TCK")

# Server-side writers: a Patient of about 800 bytes in Aidbox's storage format, a bulk loader
# committing every `per_tx` rows, and a paced writer (one row per transaction at `rate`/s) whose
# rows carry their commit-time clock (microseconds since the epoch) in identifier[0].value.
SQL_SETUP = r"""
CREATE OR REPLACE FUNCTION bench_patient(i bigint, stamp text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'identifier', jsonb_build_array(
      jsonb_build_object('system', 'urn:topicbridge:bench:commit-us', 'value', stamp),
      jsonb_build_object('use', 'official', 'system', 'urn:oid:2.16.840.1.113883.4.1',
                         'value', lpad(i::text, 9, '0'))),
    'active', true,
    'name', jsonb_build_array(
      jsonb_build_object('use', 'official', 'family', 'Family' || i,
                         'given', jsonb_build_array('Given' || i, 'Middle')),
      jsonb_build_object('use', 'usual', 'given', jsonb_build_array('Nick' || i))),
    'telecom', jsonb_build_array(
      jsonb_build_object('system', 'phone', 'value', '+1 555 ' || lpad((i % 10000)::text, 4, '0'),
                         'use', 'home'),
      jsonb_build_object('system', 'email', 'value', 'patient' || i || '@example.org')),
    'gender', CASE WHEN i % 2 = 0 THEN 'female' ELSE 'male' END,
    'birthDate', to_char(date '1950-01-01' + (i % 20000)::int, 'YYYY-MM-DD'),
    'address', jsonb_build_array(jsonb_build_object(
      'use', 'home', 'line', jsonb_build_array(i || ' Main Street', 'Apartment 4'),
      'city', 'Springfield', 'state', 'IL', 'postalCode', '62701', 'country', 'US')),
    'maritalStatus', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object(
      'system', 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', 'code', 'M',
      'display', 'Married'))),
    'communication', jsonb_build_array(jsonb_build_object(
      'language', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object(
        'system', 'urn:ietf:bcp:47', 'code', 'en-US', 'display', 'English (United States)'))),
      'preferred', true)),
    'managingOrganization', jsonb_build_object('resourceType', 'Organization', 'id', 'org-1'),
    'generalPractitioner', jsonb_build_array(
      jsonb_build_object('resourceType', 'Practitioner', 'id', 'pr-' || (i % 100))))
$$;

CREATE OR REPLACE PROCEDURE bench_load(first bigint, n bigint, per_tx bigint)
LANGUAGE plpgsql AS $$
DECLARE
  i bigint := first;
  last bigint := first + n;
BEGIN
  WHILE i < last LOOP
    INSERT INTO patient (id, txid, ts, cts, resource_type, status, resource)
    SELECT 'b-' || g, txid_current(), now(), now(), 'Patient', 'created', bench_patient(g, '0')
    FROM generate_series(i, least(i + per_tx, last) - 1) g;
    COMMIT;
    i := i + per_tx;
  END LOOP;
END
$$;

CREATE OR REPLACE PROCEDURE bench_paced(first bigint, n bigint, rate int)
LANGUAGE plpgsql AS $$
DECLARE
  started timestamptz := clock_timestamp();
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    INSERT INTO patient (id, txid, ts, cts, resource_type, status, resource)
    VALUES ('l-' || (first + k), txid_current(), now(), now(), 'Patient', 'created',
            bench_patient(first + k,
                          (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text));
    COMMIT;
    PERFORM pg_sleep(greatest(0, extract(epoch FROM
      started + (k + 1) * interval '1 second' / rate - clock_timestamp())));
  END LOOP;
END
$$;
"""


def parse_lsn(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value):
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def walsender_pid(stack, slot):
    """The PID of the walsender serving `slot`, or None while nobody streams from it."""
    value = stack.pg.value(f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}'")
    return int(value) if value else None


class CpuWatch:
    """Follows a process's utime + stime until it exits (a walsender ends with its client)."""

    def __init__(self, pid):
        self.pid = pid
        self.seconds = 0.0

    def sample(self):
        try:
            self.seconds = cpu_seconds(self.pid)
        except OSError:  # gone: keep the last reading
            pass
        return self.seconds


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Metrics:
    """Reads topicbridge's GET /metrics: replication gauges and per-destination counters."""

    SAMPLE = re.compile(r"^(topicbridge_[a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$", re.M)

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"

    def read(self):
        try:
            with urllib.request.urlopen(self.url, timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        values = {}
        for name, labels, value in self.SAMPLE.findall(text):
            key = name if name.startswith("topicbridge_replication") else name + (labels or "")
            values[key] = values.get(key, 0.0) + float(value)
        return values

    @staticmethod
    def total(values, family):
        return sum(v for k, v in values.items() if k.startswith(family))


class Stack:
    """The servers every measurement shares."""

    def __init__(self, args):
        self.args = args
        self.pg = harness.PostgresCluster(extra_conf={
            "max_replication_slots": "40", "max_wal_senders": "40", "shared_buffers": "'256MB'",
            "max_wal_size": "'4GB'", "checkpoint_timeout": "'30min'"})
        self.pg.sql(SQL_SETUP)
        self.nats = harness.NatsServer() if any("nats" in k for k in args.kinds) else None
        self.kafka = None
        if "kafka-at-least-once" in args.kinds:
            self.kafka = harness.KafkaMock(brokers=1, binary=args.kafka_mock)
        self.next_row = 0

    def create_slot(self, name):
        self.pg.sql(f"SELECT pg_create_logical_replication_slot('{name}', 'wal2json')")

    def drop_slot(self, name):
        self.pg.sql(f"SELECT pg_drop_replication_slot('{name}') FROM pg_replication_slots "
                    f"WHERE slot_name = '{name}'")

    def load(self, rows, per_tx):
        """Commits `rows` Patients, `per_tx` per transaction; returns the WAL end afterwards."""
        first = self.next_row
        self.next_row += rows
        self.pg.sql(f"CALL bench_load({first}, {rows}, {per_tx})", timeout=3600)
        return parse_lsn(self.pg.value("SELECT pg_current_wal_lsn()"))

    def cleanup(self):
        for fixture in (self.kafka, self.nats, self.pg):
            if fixture:
                fixture.cleanup()


def drain_raw(stack, slot, end_lsn, tables, workdir):
    """pg_recvlogical from `slot` to end_lsn; returns (seconds, events, last commit's nextlsn,
    the walsender's CPU seconds)."""
    out = workdir / "raw.jsonl"
    cmd = ["pg_recvlogical", "-d", stack.pg.dsn(), "--slot", slot, "--start", "--no-loop",
           "-E", format_lsn(end_lsn), "-F", "0", "-f", str(out),
           *[x for o in WAL2JSON_OPTIONS + ["add-tables=" + ",".join(tables)] for x in ("-o", o)]]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    walsender = None
    while proc.poll() is None:
        if walsender is None:
            pid = walsender_pid(stack, slot)
            walsender = CpuWatch(pid) if pid else None
        if walsender:
            walsender.sample()
        time.sleep(0.01)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed: {proc.stderr.read().decode()}")
    proc.stderr.close()
    events, last_commit = 0, 0
    with open(out, "rb") as f:
        for line in f:
            if line.startswith(b'{"action":"I"'):
                events += 1
            elif line.startswith(b'{"action":"C"'):
                last_commit = parse_lsn(json.loads(line)["nextlsn"])
    out.unlink()
    return seconds, events, last_commit, walsender.seconds if walsender else None


def topics_and_destinations(stack, kind, topic_count):
    """(topics, destinations): topic 0 matches every Patient; the others never fire."""
    topics, destinations = [], []
    for t in range(topic_count):
        resource = TYPES[t % len(TYPES)] if topic_count > 1 else "Patient"
        url = f"http://bench.example/topic-{t}"
        criteria = "name.exists()" if t == 0 else f"identifier.value = 'never-{t}'"
        topics.append(harness.topic_resource(url, resource, criteria))
        subject = f"{SUBJECT_PREFIX}.{SHORT[kind]}.{t}"
        if kind.startswith("kafka"):
            params = [("kafkaTopic", f"bench-{t}"), ("bootstrapServers", stack.kafka.bootstraps)]
        else:
            params = [("url", stack.nats.url), ("subject", subject)]
        destinations.append(harness.destination_resource(f"d{t}", kind, url, params))
    return topics, destinations


def reset_jetstream(stack):
    client = harness.NatsClient(stack.nats.url)
    try:
        try:
            client.js_delete_stream(STREAM)
        except harness.NatsError:
            pass
        client.js_add_stream(STREAM, [f"{SUBJECT_PREFIX}.js.>"])
    finally:
        client.close()


def start_bridge(stack, kind, topic_count, slot, args):
    if kind.startswith("nats-jetstream"):
        reset_jetstream(stack)
    topics, destinations = topics_and_destinations(stack, kind, topic_count)
    port = harness.free_port()
    config = harness.bridge_config(stack.pg.dsn(), slot, port, topics, destinations,
                                   log={"level": "warn"})
    bridge = harness.Topicbridge(config, binary=args.topicbridge, start=False)
    return bridge, Metrics(port)


def drain_bridge(stack, kind, topic_count, slot, end_commit, events, args):
    """topicbridge from `slot` until it confirmed end_commit and delivered `events`."""
    bridge, metrics = start_bridge(stack, kind, topic_count, slot, args)
    bridge.start()
    pid = bridge.proc.pid
    profiler = None
    try:
        started = cpu_started = None
        deadline = time.monotonic() + args.timeout
        while True:
            if bridge.proc.poll() is not None:
                raise RuntimeError(f"topicbridge exited {bridge.proc.returncode}:\n{bridge.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"topicbridge did not drain within {args.timeout}s:\n"
                                   f"{metrics.read()}\n{bridge.logs()[-3000:]}")
            values = metrics.read()
            now = time.monotonic()
            if values is None:
                time.sleep(0.005)
                continue
            if started is None and values.get("topicbridge_replication_last_received_lsn", 0) > 0:
                started, cpu_started = now, cpu_seconds(pid)
                walsender = CpuWatch(walsender_pid(stack, slot))
                if args.perf_dir:
                    profiler = start_profiler(args.perf_dir, f"{SHORT[kind]}-{topic_count}", pid)
            if started is not None:
                walsender.sample()
            done = Metrics.total(values, "topicbridge_destination_messages_delivered_total") + \
                Metrics.total(values, "topicbridge_destination_messages_lost_total")
            if (started is not None and done >= events and
                    values.get("topicbridge_replication_last_confirmed_lsn", 0) >= end_commit):
                seconds = now - started
                cpu = cpu_seconds(pid) - cpu_started
                break
            time.sleep(0.01)
        result = {
            "seconds": seconds, "events_per_s": events / seconds,
            "cpu_us_per_event": cpu * 1e6 / events, "peak_rss_mb": peak_rss_kb(pid) / 1024,
            "walsender_cpu_us_per_event": walsender.sample() * 1e6 / events,
            "lost": Metrics.total(values, "topicbridge_destination_messages_lost_total"),
            "matched": Metrics.total(values, "topicbridge_topic_events_matched_total"),
        }
        return result
    finally:
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        bridge.stop()
        bridge.cleanup()


def start_profiler(directory, name, pid):
    """`perf record -g` on the running topicbridge, stopped (SIGINT) when the drain ends."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(["perf", "record", "-F", "2999", "-g", "-p", str(pid), "-o",
                             str(Path(directory) / f"{name}.perf.data")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class StampedNatsClient(harness.NatsClient):
    """harness.NatsClient that records when each MSG line arrived (before any queueing)."""

    def _handle(self, line):
        arrived = time.time()
        super()._handle(line)
        if line[:4] in (b"MSG ", b"HMSG"):
            with self._cond:
                for queue in self._queues.values():
                    if queue and not hasattr(queue[-1], "arrived"):
                        queue[-1].arrived = arrived


class NatsArrivals:
    """Collects (arrival time, body) of every message on a subject, from a reader thread."""

    def __init__(self, stack, subject):
        self.client = StampedNatsClient(stack.nats.url, name="bench-latency")
        self.sid = self.client.subscribe(subject)

    def collect(self, count, timeout):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                msg = self.client.next_message(max(0.01, deadline - time.monotonic()), self.sid)
            except TimeoutError:
                break
            out.append((msg.arrived, msg.body))
        self.client.close()
        return out


class KafkaArrivals:
    """`kcat -C` from the end of the topic; stamps each value line with its arrival time."""

    def __init__(self, stack, topic):
        try:
            stack.kafka.create_topic(topic)
        except RuntimeError as e:  # the throughput runs created it already
            if "already exists" not in str(e):
                raise
        self.proc = subprocess.Popen(
            ["kcat", "-b", stack.kafka.bootstraps, "-C", "-t", topic, "-o", "end", "-u",
             "-X", "fetch.wait.max.ms=5", "-X", "fetch.error.backoff.ms=5", "-f", "%T %s\n"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines = []
        self.produced_ms = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(2)  # kcat joins and reaches the end of the partition

    def _read(self):
        # "%T %s": the message's CreateTime (ms, set by topicbridge's producer), then the value.
        for line in self.proc.stdout:
            arrived = time.time()
            created, _, value = line.partition(b" ")
            self.produced_ms.append(int(created))
            self.lines.append((arrived, value))

    def collect(self, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proc.terminate()
        self.proc.wait(10)
        return list(self.lines)


def commit_us(body):
    wrapper = json.loads(body)
    resource = wrapper["value"]["entry"][1]["resource"]
    return int(resource["identifier"][0]["value"])


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def measure_latency(stack, kind, args):
    """Commit-to-delivery latency of one topic at args.rate transactions/s (one Patient each)."""
    slot = f"lat_{SHORT[kind]}"
    stack.drop_slot(slot)
    stack.create_slot(slot)
    bridge, metrics = start_bridge(stack, kind, 1, slot, args)
    arrivals = None
    try:
        bridge.start()
        harness.wait_for(lambda: (metrics.read() or {}).get("topicbridge_replication_connected"),
                         60, "topicbridge to stream")
        if kind.startswith("kafka"):
            arrivals = KafkaArrivals(stack, "bench-0")
        else:
            arrivals = NatsArrivals(stack, f"{SUBJECT_PREFIX}.{SHORT[kind]}.0")
        count = int(args.rate * args.latency_seconds)
        first = stack.next_row
        stack.next_row += count
        writing = time.monotonic()
        stack.pg.sql(f"CALL bench_paced({first}, {count}, {args.rate})",
                     timeout=args.latency_seconds * 10 + 60)
        achieved_rate = count / (time.monotonic() - writing)  # below args.rate if PG lagged
        received = arrivals.collect(count, timeout=60)
        latencies = sorted((arrived * 1e6 - commit_us(body)) / 1000 for arrived, body in received)
        if not latencies:
            raise RuntimeError(f"no message arrived for {kind}")
        result = {"received": len(latencies), "sent": count, "achieved_rate": achieved_rate,
                  "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
                  "max_ms": latencies[-1]}
        if isinstance(arrivals, KafkaArrivals):
            # Splits the Kafka latency: commit -> producer (topicbridge) vs. producer -> kcat.
            to_producer = sorted(created - commit_us(body) / 1000 for created, (_, body) in
                                 zip(arrivals.produced_ms, received))
            result.update(produce_p50_ms=percentile(to_producer, 0.50),
                          produce_p99_ms=percentile(to_producer, 0.99))
        return result
    finally:
        bridge.stop()
        bridge.cleanup()
        stack.drop_slot(slot)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help="Patients to commit (default 100,000)")
    parser.add_argument("--quick", action="store_true",
                        help="defaults of 10,000 rows and 3 s of latency measurement")
    parser.add_argument("--shape", choices=["tx10", "tx1", "huge"], default="tx10",
                        help="10 rows per transaction, 1 per transaction, or all in one")
    parser.add_argument("--kinds", default=",".join(KINDS), help="destination kinds, comma list")
    parser.add_argument("--topics", default="1,50", help="topic counts, comma list")
    parser.add_argument("--rate", type=int, default=1000, help="transactions/s for latency")
    parser.add_argument("--latency-seconds", type=float, help="default 10 (3 with --quick)")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per drain")
    parser.add_argument("--topicbridge", help="binary (default $TOPICBRIDGE_BIN or build*/)")
    parser.add_argument("--kafka-mock", help="kafka-mock-cluster binary")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--perf-dir", help="record `perf record -g` of each drain here")
    args = parser.parse_args()
    if args.rows is None:
        args.rows = 10_000 if args.quick else 100_000
    if args.latency_seconds is None:
        args.latency_seconds = 3.0 if args.quick else 10.0
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        parser.error(f"--kinds: unknown {unknown}; choose from {KINDS}")
    args.topics = [int(t) for t in args.topics.split(",") if t]
    per_tx = {"tx10": 10, "tx1": 1, "huge": args.rows}[args.shape]

    stack = Stack(args)
    workdir = stack.pg.base  # throwaway, removed with the cluster
    try:
        variants = [(kind, topics) for kind in args.kinds for topics in args.topics]
        slots = {v: f"bridge_{SHORT[v[0]]}_{v[1]}" for v in variants}
        for slot in ["raw", *slots.values()]:
            stack.create_slot(slot)
        print(f"# committing {args.rows} Patients, {per_tx} per transaction ...", file=sys.stderr)
        load_started = time.monotonic()
        end_lsn = stack.load(args.rows, per_tx)
        load_seconds = time.monotonic() - load_started
        raw_seconds, raw_events, end_commit, raw_walsender = drain_raw(
            stack, "raw", end_lsn, ["public.patient", "public.patient_history"], workdir)
        if raw_events != args.rows:
            raise RuntimeError(f"pg_recvlogical saw {raw_events} inserts, expected {args.rows}")
        raw_rate = raw_events / raw_seconds
        print(f"# loaded in {load_seconds:.1f}s; pg_recvlogical: {raw_rate:,.0f} events/s "
              f"({raw_seconds:.2f}s) up to {format_lsn(end_commit)}", file=sys.stderr)
        stack.drop_slot("raw")
        results = []
        for kind, topics in variants:
            r = drain_bridge(stack, kind, topics, slots[(kind, topics)], end_commit, args.rows,
                             args)
            stack.drop_slot(slots[(kind, topics)])
            r.update(kind=kind, topics=topics, ratio=r["events_per_s"] / raw_rate)
            print(f"# {kind} x{topics}: {r}", file=sys.stderr)
            results.append(r)
        latency = {}
        if not args.no_latency:
            for kind in args.kinds:
                latency[kind] = measure_latency(stack, kind, args)
                print(f"# latency {kind}: {latency[kind]}", file=sys.stderr)
    finally:
        stack.cleanup()

    report = {"rows": args.rows, "shape": args.shape, "per_tx": per_tx,
              "load_average": load_average(), "cores": os.cpu_count(),
              "raw_events_per_s": raw_rate, "variants": results, "latency": latency,
              "raw_walsender_cpu_us_per_event":
                  raw_walsender * 1e6 / raw_events if raw_walsender else None,
              "rate": args.rate, "latency_seconds": args.latency_seconds}
    print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def print_table(report):
    print(f"\n{report['rows']:,} Patients, {report['per_tx']:,} per transaction; "
          f"{report['cores']} cores, load average {report['load_average']}")
    walsender = report["raw_walsender_cpu_us_per_event"]
    print(f"pg_recvlogical (raw decoding limit): {report['raw_events_per_s']:,.0f} events/s; "
          f"its walsender's CPU: {walsender or float('nan'):.1f} us/event\n")
    print("| destination kind | topics | events/s | ratio to raw | CPU us/event | peak RSS MB "
          "| walsender CPU us/event |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in report["variants"]:
        print(f"| {r['kind']} | {r['topics']} | {r['events_per_s']:,.0f} | {r['ratio']:.2f} | "
              f"{r['cpu_us_per_event']:.1f} | {r['peak_rss_mb']:.0f} | "
              f"{r['walsender_cpu_us_per_event']:.1f} |")
    if report["latency"]:
        print(f"\nCommit-to-delivery latency, 1 topic, {report['rate']} transactions/s for "
              f"{report['latency_seconds']:g} s:\n")
        print("| destination kind | received | achieved tx/s | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for kind, l in report["latency"].items():
            print(f"| {kind} | {l['received']}/{l['sent']} | {l['achieved_rate']:,.0f} | "
                  f"{l['p50_ms']:.1f} | {l['p99_ms']:.1f} | {l['max_ms']:.1f} |")
        for kind, l in report["latency"].items():
            if "produce_p50_ms" in l:
                print(f"\n{kind}: commit to the producer's CreateTime p50 {l['produce_p50_ms']:.1f} "
                      f"ms, p99 {l['produce_p99_ms']:.1f} ms (the rest is broker and consumer)")


if __name__ == "__main__":
    main()
