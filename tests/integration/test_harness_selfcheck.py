"""Proves the integration harness itself: Aidbox-shaped writes and their WAL, NATS core and
JetStream round-trips, the Kafka mock cluster via kcat, and the process wrapper."""

import json
import os
import stat
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class PostgresTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)

    def history(self, table, rid):
        return self.pg.sql(f"SELECT txid, status, resource FROM {table}_history "
                           f"WHERE id = '{rid}' ORDER BY txid")

    def test_create_strips_fhir_only_fields_and_sets_created(self):
        tx = self.pg.value("""SELECT aidbox_create('Patient', 'c1', '{"resourceType": "Patient",
            "id": "c1", "meta": {"versionId": "7", "lastUpdated": "2020-01-01"},
            "name": [{"family": "Ada"}]}')""")
        row = self.pg.sql("SELECT txid, status, resource_type, resource, ts = cts "
                          "FROM patient WHERE id = 'c1'")
        self.assertEqual(row, [[tx, "created", "Patient", '{"name": [{"family": "Ada"}]}', "t"]])
        self.assertEqual(self.history("patient", "c1"), [])

    def test_update_moves_old_version_to_history(self):
        tx1 = self.pg.value("""SELECT aidbox_create('Observation', 'u1', '{"status": "preliminary"}')""")
        tx2 = self.pg.value("""SELECT aidbox_update('Observation', 'u1', '{"status": "final"}')""")
        self.assertGreater(int(tx2), int(tx1))
        self.assertEqual(self.pg.sql("SELECT txid, status, resource, ts > cts FROM observation "
                                     "WHERE id = 'u1'"),
                         [[tx2, "updated", '{"status": "final"}', "t"]])
        self.assertEqual(self.history("observation", "u1"),
                         [[tx1, "created", '{"status": "preliminary"}']])

    def test_delete_adds_deleted_history_row_and_removes_main_row(self):
        tx1 = self.pg.value("SELECT aidbox_create('Encounter', 'd1', '{\"status\": \"planned\"}')")
        tx2 = self.pg.value("SELECT aidbox_delete('Encounter', 'd1')")
        self.assertEqual(self.pg.sql("SELECT * FROM encounter WHERE id = 'd1'"), [])
        self.assertEqual(self.history("encounter", "d1"),
                         [[tx1, "created", '{"status": "planned"}'],
                          [tx2, "deleted", '{"status": "planned"}']])
        tx3 = self.pg.value("SELECT aidbox_create('Encounter', 'd1', '{\"status\": \"arrived\"}')")
        self.assertEqual(self.pg.sql("SELECT txid, status FROM encounter WHERE id = 'd1'"),
                         [[tx3, "recreated"]])

    def test_helpers_create_tables_for_unknown_types(self):
        self.pg.value("SELECT aidbox_create('Basic', 'b1', '{\"code\": {\"text\": \"x\"}}')")
        self.assertEqual(self.pg.value("SELECT count(*) FROM basic_history"), "0")
        self.assertEqual(self.pg.value("SELECT aidbox_ensure_table('Basic')"), "basic")

    def test_schema_loads_twice(self):
        for path in sorted(harness.SQL_DIR.glob("*.sql")):
            self.pg.psql("-f", str(path))
        self.assertEqual(self.pg.value("SELECT to_regclass('aidboxtopicdestination_history')"),
                         "aidboxtopicdestination_history")

    def test_wal2json_slot_shows_aidbox_writes(self):
        self.pg.sql("SELECT pg_create_logical_replication_slot('selfcheck', 'wal2json')")
        self.addCleanup(self.pg.sql, "SELECT pg_drop_replication_slot('selfcheck')")
        self.pg.sql("""SELECT aidbox_create('Condition', 'w1', '{"clinicalStatus": {"text": "a"}}');
                       SELECT aidbox_update('Condition', 'w1', '{"clinicalStatus": {"text": "b"}}');
                       SELECT aidbox_delete('Condition', 'w1');""")
        changes = self.pg.logical_changes(
            "selfcheck", "add-tables", "public.condition,public.condition_history")
        rows = [(c["action"], c.get("table")) for c in changes if c["action"] in "IUD"]
        self.assertEqual(rows, [("I", "condition"),
                                ("I", "condition_history"), ("U", "condition"),
                                ("I", "condition_history"), ("I", "condition_history"),
                                ("D", "condition")])
        commits = [c for c in changes if c["action"] == "C"]
        self.assertEqual(len(commits), 3)
        self.assertTrue(all("nextlsn" in c for c in commits))
        insert = next(c for c in changes if c["action"] == "I")
        columns = {col["name"]: col["value"] for col in insert["columns"]}
        self.assertEqual(json.loads(columns["resource"]), {"clinicalStatus": {"text": "a"}})
        self.assertEqual(columns["status"], "created")

    def test_touch_of_a_toasted_resource_leaves_it_out_of_the_wal(self):
        self.pg.sql("SELECT pg_create_logical_replication_slot('toast', 'wal2json')")
        self.addCleanup(self.pg.sql, "SELECT pg_drop_replication_slot('toast')")
        self.pg.sql("""SELECT aidbox_create('Patient', 'big', jsonb_build_object('text',
                         (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i)));
                       SELECT aidbox_touch('Patient', 'big');""")
        changes = self.pg.logical_changes("toast", "add-tables", "public.patient")
        update = next(c for c in changes if c["action"] == "U")
        self.assertNotIn("resource", [col["name"] for col in update["columns"]])
        self.assertEqual(self.pg.value("SELECT status FROM patient_history WHERE id = 'big'"),
                         "created")

    def test_replication_connection_over_tcp_with_password(self):
        out = self.pg.psql("-At", "-c", "IDENTIFY_SYSTEM",
                           dbname=f"{self.pg.DATABASE} replication=database")
        self.assertTrue(out.strip().endswith("|aidbox"), out)

    def test_restart_and_crash_keep_data_and_port(self):
        self.pg.sql("SELECT aidbox_create('Practitioner', 'r1', '{}')")
        port = self.pg.port
        self.pg.restart()
        self.pg.kill()
        self.assertIsNone(self.pg.pid)
        self.pg.start()
        self.assertEqual(self.pg.port, port)
        self.assertEqual(self.pg.value("SELECT status FROM practitioner WHERE id = 'r1'"), "created")


class NatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)

    def client(self):
        c = harness.NatsClient(self.nats.url)
        self.addCleanup(c.close)
        return c

    def test_pub_sub_round_trip_with_headers(self):
        sub, pub = self.client(), self.client()
        sid = sub.subscribe("selfcheck.>")
        pub.publish("selfcheck.plain", b"hello")
        pub.publish("selfcheck.hdr", b'{"a": 1}', headers={"content-type": "application/json"})
        pub.flush()
        self.assertEqual(sub.next_message(5, sid), ("selfcheck.plain", {}, b"hello"))
        subject, headers, body = sub.next_message(5, sid)
        self.assertEqual((subject, headers, json.loads(body)),
                         ("selfcheck.hdr", {"content-type": "application/json"}, {"a": 1}))
        with self.assertRaises(TimeoutError):
            sub.next_message(0.2, sid)

    def test_request_without_responders_fails_fast(self):
        with self.assertRaises(harness.NatsError):
            self.client().request("selfcheck.nobody", b"x", timeout=5)

    def test_jetstream_stream_add_and_message_get(self):
        c = self.client()
        c.js_add_stream("SELFCHECK", ["js.selfcheck.>"])
        ack = c.js_publish("js.selfcheck.one", b'{"n": 1}', headers={"Nats-Msg-Id": "m1"})
        self.assertEqual((ack["stream"], ack["seq"]), ("SELFCHECK", 1))
        c.publish("js.selfcheck.two", b"two")
        c.flush()
        info = harness.wait_for(
            lambda: (i := c.js_stream_info("SELFCHECK"))["state"]["messages"] == 2 and i,
            5, "two messages in the stream")
        self.assertEqual(info["config"]["subjects"], ["js.selfcheck.>"])
        self.assertEqual(c.js_get_msg("SELFCHECK", 1), ({"Nats-Msg-Id": "m1"}, b'{"n": 1}'))
        self.assertEqual([m.subject for m in c.js_messages("SELFCHECK")],
                         ["js.selfcheck.one", "js.selfcheck.two"])

    def test_restart_keeps_port_and_jetstream_store(self):
        c = self.client()
        c.js_add_stream("DURABLE", ["durable.>"])
        c.js_publish("durable.x", b"kept")
        c.close()
        port = self.nats.port
        self.nats.stop()
        self.assertFalse(harness.port_open(port))
        self.nats.start()
        self.assertEqual(self.nats.port, port)
        self.assertEqual(self.client().js_get_msg("DURABLE", 1), ({}, b"kept"))


class KafkaMockTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.kafka = harness.KafkaMock(brokers=3)
        except FileNotFoundError as e:
            raise unittest.SkipTest(str(e))
        cls.addClassCleanup(cls.kafka.cleanup)

    def test_kcat_produces_and_consumes_one_message(self):
        self.kafka.create_topic("t1", 1)
        self.kafka.kcat("-P", "-t", "t1", "-K", ":", input=b"k1:hello kafka\n")
        out = self.kafka.kcat("-C", "-t", "t1", "-o", "beginning", "-e", "-f", "%k=%s\\n")
        self.assertEqual(out, b"k1=hello kafka\n")

    def test_produce_fails_while_partition_leader_is_down(self):
        self.kafka.create_topic("t2", 1)
        self.kafka.command("partition-leader t2 0 2")
        self.kafka.broker_down(2)
        with self.assertRaisesRegex(RuntimeError, "Delivery failed"):
            self.kafka.kcat("-P", "-t", "t2", "-X", "message.timeout.ms=1500", input=b"lost\n")
        self.kafka.broker_up(2)
        self.kafka.kcat("-P", "-t", "t2", input=b"after\n")
        out = self.kafka.kcat("-C", "-t", "t2", "-o", "beginning", "-e")
        self.assertEqual(out, b"after\n")

    def test_unknown_command_is_an_error(self):
        with self.assertRaises(RuntimeError):
            self.kafka.command("explode")


FAKE_TOPICBRIDGE = textwrap.dedent("""\
    #!/usr/bin/env python3
    # Stands in for topicbridge: `run -c FILE` serves /healthz on http.listen until SIGTERM.
    import http.server, json, signal, sys
    config = json.load(open(sys.argv[3]))
    host, port = config["http"]["listen"].rsplit(":", 1)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    server = http.server.HTTPServer((host, int(port)), Handler)
    def term(*_):
        print("draining", flush=True); sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    print("started", sys.argv[1:], flush=True)
    server.serve_forever()
""")


class TopicbridgeWrapperTest(unittest.TestCase):
    def fake_binary(self):
        path = harness._make_temp_dir("tb-fake-") / "topicbridge"
        self.addCleanup(lambda: harness.shutil.rmtree(path.parent, ignore_errors=True))
        path.write_text(FAKE_TOPICBRIDGE)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    def test_run_wait_stop_and_kill(self):
        port = harness.free_port()
        bridge = harness.Topicbridge({"http": {"listen": f"127.0.0.1:{port}"}, "topics": []},
                                     binary=self.fake_binary())
        self.addCleanup(bridge.cleanup)
        self.assertEqual(bridge.wait_http_ok(f"http://127.0.0.1:{port}/healthz"), b"ok")
        self.assertIn("'run', '-c'", bridge.wait_log(r"started .*").group(0))
        self.assertEqual(bridge.stop(), 0)
        self.assertIn("draining", bridge.logs())
        bridge.start()
        bridge.wait_http_ok(f"http://127.0.0.1:{port}/healthz")
        self.assertEqual(bridge.kill(), -9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
