"""The seed walkthrough end to end, against a real PostgreSQL 15 + wal2json and a real
nats-server: a committed Patient with a name becomes one message on `foo`, shaped as Aidbox
sends it; a Patient without a name sends nothing; a restarted topicbridge resumes from its slot."""

import json
import os
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC_URL = "http://example.org/FHIR/R5/SubscriptionTopic/patient-topic"


def seed_config(pg, nats, http_port, slot="topicbridge"):
    profile = "http://aidbox.app/StructureDefinition/aidboxtopicdestination-nats-core-best-effort"
    return harness.bridge_config(
        pg.dsn(), slot, http_port,
        topics=[harness.topic_resource(TOPIC_URL, "Patient", "name.exists()")],
        destinations=[harness.destination_resource(
            "basic", "nats-core-best-effort", TOPIC_URL, [("url", nats.url), ("subject", "foo")],
            meta={"profile": [profile]})],
        aidbox={"base_url": "http://localhost:8080"})


class SeedScenario(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)
        cls.client = harness.NatsClient(cls.nats.url)
        cls.addClassCleanup(cls.client.close)
        cls.sid = cls.client.subscribe("foo")
        cls.client.flush()
        cls.http_port = harness.free_port()
        cls.bridge = harness.Topicbridge(seed_config(cls.pg, cls.nats, cls.http_port))
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.wait_ready()

    @classmethod
    def wait_ready(cls):
        cls.bridge.wait_http_ok(f"http://127.0.0.1:{cls.http_port}/readyz", timeout=60)

    def create_patient(self, rid, resource):
        return self.pg.value(
            f"SELECT aidbox_create('Patient', '{rid}', '{json.dumps(resource)}'::jsonb)")

    def next_notification(self):
        msg = self.client.next_message(timeout=20, sid=self.sid)
        self.assertEqual(msg.subject, "foo")
        self.assertEqual(msg.headers.get("content-type"), "application/json")
        return json.loads(msg.body)

    def test_1_named_patient_is_delivered_in_aidbox_shape(self):
        txid = self.create_patient("pt-1", {"name": [{"family": "Smith", "given": ["Ann"]}],
                                            "gender": "female"})
        body = self.next_notification()
        self.assertEqual(sorted(body), ["topic", "value"])
        self.assertEqual(body["topic"], "foo")
        bundle = body["value"]
        self.assertEqual(bundle["resourceType"], "Bundle")
        self.assertEqual(bundle["type"], "history")
        self.assertRegex(bundle["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(len(bundle["entry"]), 2)
        status = bundle["entry"][0]["resource"]
        self.assertEqual(status, {
            "resourceType": "AidboxSubscriptionStatus",
            "status": "active",
            "type": "event-notification",
            "notificationEvent": [{"eventNumber": 1, "focus": {"reference": "Patient/pt-1"}}],
            "topic": TOPIC_URL,
            "topic-destination": {"reference": "AidboxTopicDestination/basic"},
        })
        entry = bundle["entry"][1]
        self.assertEqual(entry["request"], {"method": "POST", "url": "/fhir/Patient"})
        self.assertEqual(entry["fullUrl"], "http://localhost:8080/fhir/Patient/pt-1")
        resource = entry["resource"]
        self.assertEqual(resource["resourceType"], "Patient")
        self.assertEqual(resource["id"], "pt-1")
        self.assertEqual(resource["name"], [{"family": "Smith", "given": ["Ann"]}])
        self.assertEqual(resource["gender"], "female")
        self.assertEqual(resource["meta"]["versionId"], str(txid))
        self.assertRegex(resource["meta"]["lastUpdated"], r"Z$")
        self.assertEqual(resource["meta"]["extension"][0]["url"], "ex:createdAt")

    def test_2_patient_without_name_sends_nothing(self):
        self.create_patient("pt-anonymous", {"gender": "male"})
        self.create_patient("pt-2", {"name": [{"family": "Jones"}]})
        # Messages keep commit order, so the next one must be pt-2's.
        body = self.next_notification()
        self.assertEqual(body["value"]["entry"][1]["resource"]["id"], "pt-2")
        self.assertEqual(body["value"]["entry"][0]["resource"]["notificationEvent"][0]["eventNumber"], 2)

    def test_3_restart_resumes_from_the_slot(self):
        self.assertEqual(self.bridge.stop(), 0, self.bridge.logs())
        # Committed while topicbridge is down: the slot keeps it.
        self.create_patient("pt-while-down", {"name": [{"family": "Down"}]})
        self.bridge.start()
        self.wait_ready()
        body = self.next_notification()
        self.assertEqual(body["value"]["entry"][1]["resource"]["id"], "pt-while-down")
        # Nothing confirmed before the stop comes back.
        self.create_patient("pt-after", {"name": [{"family": "After"}]})
        body = self.next_notification()
        self.assertEqual(body["value"]["entry"][1]["resource"]["id"], "pt-after")

    def test_4_healthz_answers(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=5) as r:
            self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
