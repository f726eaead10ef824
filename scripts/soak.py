#!/usr/bin/env python3
"""Soak: a steady write load through topicbridge for a given time, with periodic faults, then
an end-to-end count. Starts its own PostgreSQL 15 + wal2json, nats-server (JetStream) and the
librdkafka mock Kafka cluster on 127.0.0.1 (tests/integration/harness.py), one topicbridge with a
JetStream and a Kafka at-least-once destination, and rotates the faults: SIGKILL of topicbridge
(restarted 1 s later), nats-server restart (stop + start on its store), every Kafka broker down
for 10 s, PostgreSQL restart (-m fast). At the end it waits for delivery and prints events
committed, delivered, lost and duplicated per destination and topicbridge's peak RSS.

  TOPICBRIDGE_BIN=... KAFKA_MOCK_BIN=... scripts/soak.py --minutes 30 --rate 20 --fault-every 60

Exit status 0 when no committed event is missing from either destination, else 1.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests" / "integration"
sys.path.insert(0, str(TESTS))
import harness  # noqa: E402
import test_at_least_once as alo  # noqa: E402  (its bridge config and names)
from test_faults import SteadyWriter  # noqa: E402

FAULTS = ("kill-topicbridge", "restart-nats", "kafka-down", "restart-postgres")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=2.0, help="how long to write (default 2)")
    p.add_argument("--rate", type=float, default=20.0, help="transactions per second (20)")
    p.add_argument("--rows", type=int, default=5, help="Patients per transaction (5)")
    p.add_argument("--fault-every", type=float, default=30.0,
                   help="seconds between faults, 0 for none (30)")
    p.add_argument("--faults", default=",".join(FAULTS),
                   help="comma-separated rotation of " + ", ".join(FAULTS))
    p.add_argument("--drain-timeout", type=float, default=600.0,
                   help="seconds to wait for delivery after writing ends (600)")
    return p.parse_args()


class Soak:
    def __init__(self, args):
        self.args = args
        self.faults = [f for f in args.faults.split(",") if f]
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            sys.exit(f"--faults: unknown {sorted(unknown)}; choose from {', '.join(FAULTS)}")
        self.done = Counter()
        self.peak_rss_kb = 0
        self.pg = harness.PostgresCluster(extra_conf={"wal_sender_timeout": "'5s'"})
        self.nats = harness.NatsServer()
        self.client = harness.NatsClient(self.nats.url)
        self.client.js_add_stream(alo.STREAM, ["patients.>"], duplicate_window=120 * 10**9)
        self.kafka = harness.KafkaMock(brokers=3)
        self.kafka.create_topic(alo.KAFKA_TOPIC, 1)
        self.http_port = harness.free_port()
        config = alo.bridge_config(self.pg, self.nats, self.kafka, self.http_port)
        del config["delivery"]["at_least_once_window"]  # the default, as deployed
        self.bridge = harness.Topicbridge(config)
        self.wait_ready()

    def log(self, text):
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def wait_ready(self):
        self.bridge.wait_http_ok(f"http://127.0.0.1:{self.http_port}/readyz", timeout=120)

    def sample_rss(self):
        kb = self.bridge.peak_rss_kb()
        if kb:
            self.peak_rss_kb = max(self.peak_rss_kb, kb)

    def reconnect_client(self):
        try:
            self.client.close()
        except OSError:
            pass
        self.client = harness.wait_for(self._try_client, 30, "a NATS client")

    def _try_client(self):
        try:
            return harness.NatsClient(self.nats.url)
        except OSError:
            return None

    def inject(self, fault):
        self.sample_rss()
        if fault == "kill-topicbridge":
            self.bridge.kill()
            time.sleep(1.0)
            self.bridge.start()
        elif fault == "restart-nats":
            self.nats.stop()
            self.nats.start()
            self.reconnect_client()
        elif fault == "kafka-down":
            for broker in (1, 2, 3):
                self.kafka.broker_down(broker)
            time.sleep(10)
            for broker in (1, 2, 3):
                self.kafka.broker_up(broker)
        elif fault == "restart-postgres":
            self.pg.restart("fast")
        self.done[fault] += 1
        self.log(f"fault {fault} (#{self.done[fault]})")

    def run(self):
        a = self.args
        js_start = self.client.js_stream_info(alo.STREAM)["state"]["last_seq"] + 1
        tail = harness.KafkaTail(self.kafka, alo.KAFKA_TOPIC, 0)
        seconds = a.minutes * 60
        writer = SteadyWriter(self.pg, "soak", a.rate, a.rows, seconds)
        self.log(f"writing {a.rate:g} tx/s x {a.rows} Patients for {seconds:.0f} s; "
                 f"a fault every {a.fault_every:g} s: {', '.join(self.faults)}")
        next_fault, turn = a.fault_every, 0
        while writer.running():
            time.sleep(0.5)
            self.sample_rss()
            if a.fault_every and self.faults and time.monotonic() - writer.started >= next_fault:
                self.inject(self.faults[turn % len(self.faults)])
                turn += 1
                next_fault += a.fault_every
        wrote = writer.wait()
        ids = writer.committed_ids()
        self.log(f"writing ended after {wrote:.0f} s: {len(ids)} events committed; waiting for "
                 f"delivery")
        drained_at = time.monotonic()
        js, kafka = self.wait_delivered(ids, js_start, tail)
        drain_s = time.monotonic() - drained_at
        self.sample_rss()
        tail.close()
        return self.summary(ids, js, kafka, tail.gaps, wrote, drain_s)

    def js_ids(self, js_start):
        return [m.json()["value"]["entry"][1]["resource"]["id"]
                for m in self.client.js_read(alo.STREAM, js_start, timeout=60)]

    def wait_delivered(self, ids, js_start, tail):
        """Polls until both destinations hold every id or --drain-timeout passes."""
        deadline = time.monotonic() + self.args.drain_timeout
        while True:
            kafka = tail.ids(unique=False)
            stored = self.client.js_stream_info(alo.STREAM)["state"]["last_seq"] - js_start + 1
            if stored >= len(ids) and ids <= set(kafka):
                js = self.js_ids(js_start)
                if ids <= set(js) or time.monotonic() > deadline:
                    return js, kafka
            if time.monotonic() > deadline:
                return self.js_ids(js_start), kafka
            time.sleep(2)

    def summary(self, ids, js, kafka, gaps, wrote, drain_s):
        a = self.args
        lost_any = False
        lines = [f"soak: {a.minutes:g} min at {a.rate:g} tx/s x {a.rows} rows "
                 f"(wrote for {wrote:.0f} s); faults: "
                 + (", ".join(f"{f}={self.done[f]}" for f in self.faults) or "none"),
                 f"committed events: {len(ids)}"]
        for name, got in (("jetstream", js), ("kafka", kafka)):
            counts = Counter(i for i in got if i in ids)
            lost = len(ids) - len(counts)
            lost_any = lost_any or lost > 0
            lines.append(f"{name}: delivered={len(counts)} lost={lost} "
                         f"duplicated={sum(counts.values()) - len(counts)} "
                         f"(messages read {len(got)})")
        lines.append(f"kafka reader offset gaps: {len(gaps)} (the mock keeps ~5 MB per partition)")
        lines.append(f"all delivered {drain_s:.1f} s after writing ended")
        lines.append(f"topicbridge peak RSS (VmHWM, max over restarts): "
                     f"{self.peak_rss_kb / 1024:.1f} MB")
        print("\n".join(lines), flush=True)
        return 1 if lost_any else 0


def main():
    soak = Soak(parse_args())
    try:
        return soak.run()
    finally:
        soak.client.close()
        harness.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
