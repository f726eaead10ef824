"""Aidbox fidelity end to end (real PostgreSQL + wal2json, real nats-server): FHIR-format
resources, create/update/delete with %current and %previous, a no-op update, a transaction
touching three resource types, an Observation stored in Aidbox format matched by
value.ofType(Quantity), REPLICA IDENTITY FULL, content modes, and topics and destinations read
from Aidbox's own tables and followed live."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BASE = "http://example.org/topics/"
ENTRY_ACTION_URL = "http://aidbox.app/StructureDefinition/notification-entry-action"


def topic(name, resource, criteria=None, interactions=None):
    return harness.topic_resource(BASE + name, resource, criteria, interactions)


def destination(did, topic_name, subject, nats, **extra):
    return harness.destination_resource(did, "nats-core-best-effort", BASE + topic_name,
                                        [("url", nats.url), ("subject", subject)], **extra)


class AidboxFidelity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)
        cls.client = harness.NatsClient(cls.nats.url)
        cls.addClassCleanup(cls.client.close)
        cls.sid = cls.client.subscribe("ev.>")
        cls.client.flush()
        cls.pending = []
        # Direct SQL writes with the old tuple in WAL: %previous without a history row.
        cls.pg.sql("SELECT aidbox_ensure_table('Practitioner')")
        cls.pg.sql("ALTER TABLE practitioner REPLICA IDENTITY FULL")
        cls.http_port = harness.free_port()
        nats = cls.nats
        config = harness.bridge_config(
            cls.pg.dsn(), "fidelity", cls.http_port,
            aidbox={"base_url": "http://aidbox.example", "topics_from_database": True},
            topics=[
                topic("patient", "Patient"),
                topic("birthdate", "Patient", "%current.birthDate != %previous.birthDate",
                      ["update"]),
                topic("obs-high", "Observation", "value.ofType(Quantity).value > 100"),
                {"resourceType": "AidboxSubscriptionTopic", "url": BASE + "clinical",
                 "status": "active",
                 "trigger": [{"resource": "Encounter"},
                             {"resource": "Condition",
                              "fhirPathCriteria": "subject.reference = 'Patient/tx-pt'"}]},
                topic("portal-encounter", "Encounter",
                      "subject.resolve().identifier.where(system.contains('patient-portal'))"
                      ".exists()"),
                topic("deactivated", "Practitioner",
                      "%previous.active = true and %current.active = false"),
            ],
            destinations=[
                destination("patients", "patient", "ev.patient", nats, includeEntryAction=True),
                destination("patients-ids", "patient", "ev.patient-ids", nats, content="id-only"),
                destination("patients-empty", "patient", "ev.patient-empty", nats, content="empty"),
                destination("birthdates", "birthdate", "ev.birthdate", nats),
                destination("observations", "obs-high", "ev.obs", nats),
                destination("encounters", "clinical", "ev.clinical", nats),
                destination("practitioners", "deactivated", "ev.practitioner", nats),
                destination("portal", "portal-encounter", "ev.portal", nats),
            ])
        cls.bridge = harness.Topicbridge(config)
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.bridge.wait_http_ok(f"http://127.0.0.1:{cls.http_port}/readyz", timeout=60)

    # -- helpers ---------------------------------------------------------------------------

    def write(self, sql):
        return self.pg.value(sql)

    @staticmethod
    def literal(resource):
        return json.dumps(resource).replace("'", "''")

    def create(self, rtype, rid, resource):
        return self.write(f"SELECT aidbox_create('{rtype}', '{rid}', '{self.literal(resource)}')")

    def update(self, rtype, rid, resource):
        return self.write(f"SELECT aidbox_update('{rtype}', '{rid}', '{self.literal(resource)}')")

    def expect(self, subject, focus=None, timeout=20):
        """The next notification on `subject` (about `focus`, "Type/id", when given); others are
        kept for later expects."""
        def wanted(s, body):
            return s == subject and (focus is None or self.focus(body) == focus)

        for i, (s, body) in enumerate(self.pending):
            if wanted(s, body):
                del self.pending[i]
                return body
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                msg = self.client.next_message(timeout=max(0.1, deadline - time.time()),
                                               sid=self.sid)
            except TimeoutError:
                break
            body = json.loads(msg.body)
            if wanted(msg.subject, body):
                return body
            self.pending.append((msg.subject, body))
        self.fail(f"no notification on {subject} within {timeout}s\n{self.bridge.logs()[-3000:]}")

    def marker(self, subject="ev.patient"):
        """Writes a Patient and waits for it: everything committed before has been processed."""
        rid = f"marker-{time.time_ns()}"
        self.create("Patient", rid, {"name": [{"family": "Marker"}]})
        self.expect(subject, f"Patient/{rid}")

    def drop(self, subject):
        self.pending = [(s, b) for (s, b) in self.pending if s != subject]

    @staticmethod
    def entry(body):
        return body["value"]["entry"][1] if len(body["value"]["entry"]) > 1 else {}

    @staticmethod
    def focus(body):
        return body["value"]["entry"][0]["resource"]["notificationEvent"][0]["focus"]["reference"]

    # -- tests -------------------------------------------------------------------------------

    def test_create_update_delete_requests_and_entry_action(self):
        tx = self.create("Patient", "p1", {"name": [{"family": "One"}], "birthDate": "1980-01-01"})
        e = self.entry(self.expect("ev.patient", "Patient/p1"))
        self.assertEqual(e["request"], {"method": "POST", "url": "/fhir/Patient"})
        self.assertEqual(e["extension"], [{"url": ENTRY_ACTION_URL, "valueCode": "create"}])
        self.assertEqual(e["resource"]["meta"]["versionId"], str(tx))
        self.assertEqual(e["fullUrl"], "http://aidbox.example/fhir/Patient/p1")

        tx2 = self.update("Patient", "p1", {"name": [{"family": "One"}], "birthDate": "1980-01-02"})
        e = self.entry(self.expect("ev.patient", "Patient/p1"))
        self.assertEqual(e["request"], {"method": "PUT", "url": "/fhir/Patient/p1"})
        self.assertEqual(e["extension"][0]["valueCode"], "update")
        self.assertEqual(e["resource"]["birthDate"], "1980-01-02")
        self.assertEqual(e["resource"]["meta"]["versionId"], str(tx2))
        # %previous came from the history row Aidbox wrote in the same transaction.
        self.assertEqual(self.focus(self.expect("ev.birthdate")), "Patient/p1")

        self.write("SELECT aidbox_delete('Patient', 'p1')")
        e = self.entry(self.expect("ev.patient", "Patient/p1"))
        self.assertEqual(e["request"], {"method": "DELETE", "url": "/fhir/Patient/p1"})
        self.assertNotIn("resource", e)
        self.assertEqual(e["extension"][0]["valueCode"], "delete")
        self.drop("ev.patient-ids")
        self.drop("ev.patient-empty")

    def test_update_without_birthdate_change_and_noop_update_do_not_fire(self):
        self.create("Patient", "p2", {"name": [{"family": "Two"}], "birthDate": "1990-05-05"})
        self.expect("ev.patient", "Patient/p2")
        self.update("Patient", "p2", {"name": [{"family": "Two"}], "birthDate": "1990-05-05",
                                      "gender": "other"})
        self.expect("ev.patient", "Patient/p2")  # an update, but birthDate is the same
        self.update("Patient", "p2", {"name": [{"family": "Two"}], "birthDate": "1990-05-05",
                                      "gender": "other"})  # no-op: same resource
        self.marker()
        self.assertFalse([s for s, _ in self.pending if s == "ev.birthdate"])
        self.drop("ev.patient-ids")
        self.drop("ev.patient-empty")

    def test_content_modes(self):
        self.create("Patient", "p3", {"name": [{"family": "Three"}]})
        ids = self.expect("ev.patient-ids", "Patient/p3")
        self.assertEqual(self.entry(ids)["fullUrl"], "http://aidbox.example/fhir/Patient/p3")
        self.assertNotIn("resource", self.entry(ids))
        empty = self.expect("ev.patient-empty", "Patient/p3")
        self.assertEqual(len(empty["value"]["entry"]), 1)
        self.assertEqual(self.focus(empty), "Patient/p3")
        self.drop("ev.patient")

    def test_transaction_touching_three_types_keeps_commit_order(self):
        self.write("""BEGIN;
            SELECT aidbox_create('Patient', 'tx-pt', '{"name": [{"family": "Tx"}]}');
            SELECT aidbox_create('Encounter', 'tx-enc', '{"status": "planned",
                "subject": {"resourceType": "Patient", "id": "tx-pt"}}');
            SELECT aidbox_create('Condition', 'tx-cond', '{"subject":
                {"resourceType": "Patient", "id": "tx-pt"}}');
            COMMIT;""")
        self.expect("ev.patient", "Patient/tx-pt")
        wanted = {"Encounter/tx-enc", "Condition/tx-cond"}
        seen = []
        while len(seen) < 2:
            body = self.expect("ev.clinical")
            if self.focus(body) in wanted:
                seen.append(body)
        first, second = seen
        self.assertEqual([self.focus(first), self.focus(second)],
                         ["Encounter/tx-enc", "Condition/tx-cond"])
        # Aidbox-format references became FHIR references.
        self.assertEqual(self.entry(first)["resource"]["subject"], {"reference": "Patient/tx-pt"})
        self.drop("ev.patient-ids")
        self.drop("ev.patient-empty")

    def test_observation_in_aidbox_format_matches_value_of_type_quantity(self):
        self.create("Observation", "obs-low", {"status": "final", "code": {"text": "glucose"},
                                               "value": {"Quantity": {"value": 90, "unit": "mg/dL"}}})
        self.create("Observation", "obs-high", {"status": "final", "code": {"text": "glucose"},
                                                "value": {"Quantity": {"value": 181, "unit": "mg/dL"}}})
        body = self.expect("ev.obs", "Observation/obs-high")
        resource = self.entry(body)["resource"]
        self.assertEqual(resource["id"], "obs-high")
        self.assertEqual(resource["valueQuantity"], {"value": 181, "unit": "mg/dL"})
        self.assertNotIn("value", resource)

    def test_resolve_reads_the_referenced_patient_from_the_database(self):
        self.create("Patient", "portal-pt", {"identifier": [
            {"system": "http://patient-portal.example/ids", "value": "42"}]})
        self.create("Patient", "plain-pt", {"identifier": [{"system": "urn:mrn", "value": "7"}]})
        self.create("Encounter", "enc-plain", {"status": "planned",
                                               "subject": {"resourceType": "Patient", "id": "plain-pt"}})
        self.create("Encounter", "enc-portal", {"status": "planned",
                                                "subject": {"resourceType": "Patient", "id": "portal-pt"}})
        body = self.expect("ev.portal")
        self.assertEqual(self.focus(body), "Encounter/enc-portal")

    def test_replica_identity_full_supplies_previous_for_direct_sql(self):
        self.create("Practitioner", "dr1", {"active": True})
        # A direct SQL update: no history row, the old tuple comes from REPLICA IDENTITY FULL.
        self.write("""UPDATE practitioner SET resource = '{"active": false}', status = 'updated',
                      txid = txid_current() WHERE id = 'dr1'""")
        self.expect("ev.practitioner", "Practitioner/dr1")

    def test_destination_inserted_into_aidbox_table_starts_without_restart(self):
        live = {"kind": "nats-core-best-effort", "topic": BASE + "patient",
                "parameter": [{"name": "url", "value": {"string": self.nats.url}},
                              {"name": "subject", "value": {"string": "ev.live"}}]}
        self.create("AidboxTopicDestination", "live", live)
        deadline = time.time() + 20
        while True:
            # Until the destination is running, Patients go only to the file's destinations.
            self.create("Patient", f"live-{time.time_ns()}", {"name": [{"family": "Live"}]})
            try:
                self.expect("ev.live", timeout=2)
                break
            except AssertionError:
                if time.time() > deadline:
                    raise
        # Deleting it stops it.
        self.write("SELECT aidbox_delete('AidboxTopicDestination', 'live')")
        self.marker()
        self.drop("ev.live")
        self.create("Patient", "after-live", {"name": [{"family": "After"}]})
        self.marker()
        self.assertFalse([s for s, _ in self.pending if s == "ev.live"])
        self.drop("ev.patient-ids")
        self.drop("ev.patient-empty")

    def test_topic_for_a_new_type_inserted_live(self):
        self.create("AidboxSubscriptionTopic", "mr", {
            "url": BASE + "medication", "status": "active",
            "trigger": [{"resource": "MedicationRequest", "fhirPathCriteria": "status = 'active'"}]})
        self.create("AidboxTopicDestination", "mr-dest", {
            "kind": "nats-core-best-effort", "topic": BASE + "medication",
            "parameter": [{"name": "url", "value": {"string": self.nats.url}},
                          {"name": "subject", "value": {"string": "ev.medication"}}]})
        deadline = time.time() + 30
        n = 0
        while True:
            n += 1
            self.create("MedicationRequest", f"mr-{n}", {"status": "active", "intent": "order"})
            try:
                self.assertTrue(self.focus(self.expect("ev.medication", timeout=2))
                                .startswith("MedicationRequest/"))
                break
            except AssertionError:
                if time.time() > deadline:
                    raise

    def test_invalid_stored_topic_is_reported_and_skipped(self):
        self.create("AidboxSubscriptionTopic", "broken", {
            "url": BASE + "broken", "status": "active",
            "trigger": [{"resource": "Patient", "fhirPathCriteria": "name.exists("}]})
        self.bridge.wait_log(r"broken", timeout=20)
        self.marker()  # still streaming
        self.drop("ev.patient-ids")
        self.drop("ev.patient-empty")


if __name__ == "__main__":
    unittest.main(verbosity=2)
