"""Every examples/*.yaml passes `topicbridge check`: the configs that the docs point people to
stay valid as the code changes. The environment each example reads is set here (a dummy NATS
.creds file where one is referenced), the way a user would set it.

Two examples also run end to end, unchanged, against a real PostgreSQL 15 + wal2json and a
nats-server with JetStream (tests/integration/harness.py), configured only through the
environment variables their comments name: the JetStream walkthrough, the Encounter
in-progress -> finished topic with %previous, and the criterion that follows Encounter.subject
with resolve().

TOPICBRIDGE_BIN names the binary (meson sets it); TOPICBRIDGE_SOURCE_ROOT the source tree
(default: two folders up from this file)."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SOURCE_ROOT = os.environ.get(
    "TOPICBRIDGE_SOURCE_ROOT",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EXAMPLES = sorted(glob.glob(os.path.join(SOURCE_ROOT, "examples", "*.yaml")))
DEPLOY_CONFIGS = [
    os.path.join(SOURCE_ROOT, "deploy", "docker", "topicbridge.yaml"),
]
CONFIG_MAP = os.path.join(SOURCE_ROOT, "deploy", "kubernetes", "configmap.yaml")

# What `nsc generate creds` writes; cnats reads it only when it connects, and `check` only
# needs a readable file.
DUMMY_CREDS = """-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2lnbmF0dXJl
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE
------END USER NKEY SEED------
"""

# Variables with no default in some example: a user must export them.
REQUIRED_ENV = {
    "NATS_PASSWORD": "secret1",
    "MSK_PASSWORD": "example-password",
    "TB_PG_PASSWORD": "example-password",
}


def config_map_file(path, key="topicbridge.yaml"):
    """The `key: |` block of a ConfigMap, dedented (enough YAML for our own manifest)."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == key + ": |")
    indent = len(lines[start]) - len(lines[start].lstrip()) + 2
    body = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        body.append(line[indent:])
    return "\n".join(body) + "\n"


def topicbridge_bin():
    path = os.environ.get("TOPICBRIDGE_BIN")
    if not path:
        raise unittest.SkipTest("TOPICBRIDGE_BIN is not set (run through meson test)")
    return path


class ExamplesPassCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = topicbridge_bin()
        cls.tmp = tempfile.TemporaryDirectory(prefix="tb-examples-")
        cls.addClassCleanup(cls.tmp.cleanup)
        for name in ("joe.creds", "nats.creds"):
            with open(os.path.join(cls.tmp.name, name), "w") as f:
                f.write(DUMMY_CREDS)
        cls.config_map_config = os.path.join(cls.tmp.name, "kubernetes-topicbridge.yaml")
        with open(cls.config_map_config, "w") as f:
            f.write(config_map_file(CONFIG_MAP))

    def environment(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TB_", "NATS_", "MSK_"))}
        env.update(REQUIRED_ENV)
        env["NATS_CREDS_DIR"] = self.tmp.name
        env["TB_NATS_CREDS"] = os.path.join(self.tmp.name, "nats.creds")
        env.update(extra)
        return env

    def check(self, path, env):
        return subprocess.run([self.bin, "check", "-c", path], env=env, capture_output=True,
                              text=True, timeout=60)

    def test_there_are_examples(self):
        self.assertGreaterEqual(len(EXAMPLES), 2, f"no examples found under {SOURCE_ROOT}")

    def test_every_example_passes_check(self):
        for path in EXAMPLES + DEPLOY_CONFIGS:
            with self.subTest(config=os.path.relpath(path, SOURCE_ROOT)):
                result = self.check(path, self.environment())
                self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
                self.assertIn(": ok (", result.stdout)

    def test_kubernetes_config_map_passes_check(self):
        result = self.check(self.config_map_config, self.environment())
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)

    def test_required_secrets_are_named_when_missing(self):
        # The password-taking examples refuse to load without their secret, naming it.
        for name, variable in [("nats-username-password.yaml", "NATS_PASSWORD"),
                               ("kafka-msk-sasl-ssl.yaml", "MSK_PASSWORD")]:
            with self.subTest(example=name):
                env = self.environment()
                del env[variable]
                result = self.check(os.path.join(SOURCE_ROOT, "examples", name), env)
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertIn(f"environment variable {variable} is not set", result.stderr)

    def test_missing_credentials_file_is_reported(self):
        env = self.environment(NATS_CREDS_DIR=os.path.join(self.tmp.name, "absent"))
        result = self.check(os.path.join(SOURCE_ROOT, "examples", "nats-jwt-auth.yaml"), env)
        self.assertEqual(result.returncode, 1, result.stdout)
        # One line per destination, naming the parameter and the file.
        self.assertIn("destinations[0].parameter[3]", result.stderr)
        self.assertIn(os.path.join("absent", "joe.creds"), result.stderr)


class ExamplesRunEndToEnd(unittest.TestCase):
    """Runs examples as shipped; only TB_* environment variables point them at the test servers."""

    @classmethod
    def setUpClass(cls):
        topicbridge_bin()
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.nats = harness.NatsServer()
        cls.addClassCleanup(cls.nats.cleanup)
        cls.client = harness.NatsClient(cls.nats.url)
        cls.addClassCleanup(cls.client.close)
        # The streams the examples' comments tell the user to create.
        cls.client.js_add_stream("EVENTS", ["patients.>"])
        cls.client.js_add_stream("ENCOUNTERS", ["encounters.>"])

    def run_example(self, name, slot):
        port = harness.free_port()
        env = {"TB_PG_DSN": self.pg.dsn(), "TB_NATS_URL": self.nats.url, "TB_SLOT": slot,
               "TB_HTTP_LISTEN": f"127.0.0.1:{port}"}
        with open(os.path.join(SOURCE_ROOT, "examples", name)) as f:
            text = f.read()
        with mock.patch.dict(os.environ, env):
            bridge = harness.Topicbridge(text)
        self.addCleanup(bridge.cleanup)
        bridge.wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=60)
        return bridge

    def write(self, function, rtype, rid, resource=None):
        args = f"'{rtype}', '{rid}'" + (f", '{json.dumps(resource)}'::jsonb" if resource else "")
        return self.pg.value(f"SELECT {function}({args})")

    def stream_messages(self, stream, count):
        harness.wait_for(lambda: len(self.client.js_messages(stream)) >= count, 30,
                         f"{count} messages in {stream}")
        return self.client.js_messages(stream)

    def test_jetstream_walkthrough_delivers_a_named_patient(self):
        self.run_example("nats-jetstream.yaml", "example_jetstream")
        self.write("aidbox_create", "Patient", "js-1", {"gender": "male"})
        self.write("aidbox_create", "Patient", "js-2", {"name": [{"family": "smith"}]})
        [msg] = self.stream_messages("EVENTS", 1)
        self.assertEqual(msg.subject, "patients.created")
        self.assertEqual(msg.headers.get("content-type"), "application/json")
        self.assertTrue(msg.headers.get("Nats-Msg-Id", "").startswith("jetstream:"))
        body = msg.json()
        self.assertEqual(body["topic"], "patients.created")
        status = body["value"]["entry"][0]["resource"]
        self.assertEqual(status["topic"], "patient-topic")
        self.assertEqual(status["topic-destination"],
                         {"reference": "AidboxTopicDestination/jetstream"})
        self.assertEqual(status["notificationEvent"][0]["focus"], {"reference": "Patient/js-2"})

    def test_encounter_example_fires_only_on_in_progress_to_finished(self):
        self.run_example("encounter-finished.yaml", "example_encounter")
        amb = {"class": {"code": "AMB"}}
        self.write("aidbox_create", "Encounter", "enc-1", {"status": "in-progress", **amb})
        self.write("aidbox_create", "Encounter", "enc-2", {"status": "finished", **amb})
        self.write("aidbox_update", "Encounter", "enc-1", {"status": "finished", **amb})
        self.write("aidbox_update", "Encounter", "enc-1",
                   {"status": "finished", "class": {"code": "IMP"}})
        self.write("aidbox_update", "Encounter", "enc-2", {"status": "cancelled", **amb})
        # A later event proves the earlier non-events were decoded and skipped, in order.
        self.write("aidbox_create", "Encounter", "enc-3", {"status": "in-progress", **amb})
        self.write("aidbox_update", "Encounter", "enc-3", {"status": "finished", **amb})
        messages = self.stream_messages("ENCOUNTERS", 2)
        self.assertEqual([m.subject for m in messages], ["encounters.finished"] * 2)
        foci = [m.json()["value"]["entry"][0]["resource"]["notificationEvent"][0]["focus"]
                for m in messages]
        self.assertEqual(foci, [{"reference": "Encounter/enc-1"},
                                {"reference": "Encounter/enc-3"}])
        entry = messages[0].json()["value"]["entry"][1]
        self.assertEqual(entry["request"], {"method": "PUT", "url": "/fhir/Encounter/enc-1"})
        self.assertNotIn("resource", entry)  # content: id-only

    def test_resolve_example_follows_the_encounter_subject(self):
        sid = self.client.subscribe("portal.encounters")
        self.client.flush()
        self.run_example("encounter-portal-patient.yaml", "example_portal")
        self.write("aidbox_create", "Patient", "pt-portal", {"identifier": [
            {"system": "https://patient-portal.example.org/id", "value": "42"}]})
        self.write("aidbox_create", "Patient", "pt-other", {"identifier": [
            {"system": "urn:oid:1.2.3", "value": "7"}]})
        amb = {"status": "in-progress", "class": {"code": "AMB"}}
        self.write("aidbox_create", "Encounter", "enc-other",
                   {**amb, "subject": {"resourceType": "Patient", "id": "pt-other"}})
        self.write("aidbox_create", "Encounter", "enc-portal",
                   {**amb, "subject": {"resourceType": "Patient", "id": "pt-portal"}})
        # Commit order: the first message must be enc-portal's, so enc-other did not fire.
        body = self.client.next_message(timeout=20, sid=sid).json()
        status = body["value"]["entry"][0]["resource"]
        self.assertEqual(status["notificationEvent"][0]["focus"],
                         {"reference": "Encounter/enc-portal"})
        self.assertEqual(body["value"]["entry"][1]["resource"]["subject"],
                         {"reference": "Patient/pt-portal"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
