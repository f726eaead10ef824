"""Security end to end (issue 7), against real servers started on loopback:

- NATS in operator/JWT mode: the fixture mints the operator, account APP and users joe (may
  publish to joe.> only) and admin, as nsc would, with the openssl CLI (ed25519) and the nkeys
  encoding written here. joe-to-pam (subject pam.a, joe's creds) is refused: the permissions
  violation shows in its $status lastErrorDetail and in the log, later messages count as lost,
  and joe-to-joe (joe.a) still delivers.
- NATS with a bare user nkey seed file (nkeySeedFilePath); a world-readable seed is warned about.
- NATS over mutual TLS (sslContext tls + tlsCaFile/tlsCertFile/tlsKeyFile) with certificates the
  fixture generates, plus username/password.
- topicbridge runs as the least-privilege role of sql/003_least_privilege_role.sql and, with
  http.bearer_token from ${TB_HTTP_TOKEN}, answers 401 without the token and 200 with it.
- No secret (password, nkey seed, JWT, bearer token) appears in the logs, /metrics or $status.

Nothing private is committed: every key is generated in a temporary directory per run.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SOURCE_ROOT = Path(__file__).resolve().parents[2]
TOPIC_URL = "http://example.org/FHIR/R5/SubscriptionTopic/security-topic"

# nkeys prefix bytes (github.com/nats-io/nkeys).
PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3


# nats-server closes a connection whose CONNECT has not come within about 2 s of the accept (3 s
# with TLS, whose handshake must also end within 2 s; measured with nats-server 2.9). A test
# client on a loaded CI machine once missed that deadline (the server answered its first PING
# with end of file); the tests are not about it, so their servers allow 10 s.
AUTH_TIMEOUT_S = 10


def nats_conf(directory, name, body):
    """nats-server arguments that load `body` as the configuration file `name` in `directory`."""
    path = Path(directory) / name
    path.write_text(body)
    return ["-c", str(path)]


def password_conf(directory, user, password):
    return nats_conf(directory, f"password-{user}.conf",
                     f"authorization {{ user: {json.dumps(user)}, "
                     f"password: {json.dumps(password)}, timeout: {AUTH_TIMEOUT_S} }}\n")


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def b32(data):
    return base64.b32encode(data).decode().rstrip("=")


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def nkey_encode(prefix, raw):
    data = bytes([prefix]) + raw
    return b32(data + crc16(data).to_bytes(2, "little"))


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}")
    return r.stdout


class NKey:
    """An ed25519 key pair (openssl) with its nkeys public key and seed strings."""

    def __init__(self, directory, name, prefix):
        self.pem = Path(directory) / f"{name}.pem"
        openssl("genpkey", "-algorithm", "ed25519", "-out", str(self.pem))
        os.chmod(self.pem, 0o600)
        private = openssl("pkey", "-in", str(self.pem), "-outform", "DER")[-32:]
        public = openssl("pkey", "-in", str(self.pem), "-pubout", "-outform", "DER")[-32:]
        self.public = nkey_encode(prefix, public)
        self.seed = b32(self._seed_bytes(prefix, private))

    @staticmethod
    def _seed_bytes(prefix, private):
        data = bytes([PREFIX_SEED | (prefix >> 5), (prefix & 31) << 3]) + private
        return data + crc16(data).to_bytes(2, "little")

    def sign(self, data):
        # ed25519 signs in one shot: openssl needs the input's size, so a file, not a pipe.
        with tempfile.NamedTemporaryFile(dir=self.pem.parent) as message:
            message.write(data)
            message.flush()
            return openssl("pkeyutl", "-sign", "-inkey", str(self.pem), "-rawin", "-in",
                           message.name)


def mint_jwt(signer, subject, name, nats_claims):
    """A NATS JWT (v2) as nsc writes it: ed25519-nkey signature by `signer`."""
    claims = {"iat": int(time.time()), "iss": signer.public, "name": name, "sub": subject,
              "nats": {**nats_claims, "version": 2}}
    claims["jti"] = b32(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest())
    header = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = signer.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{b64url(signature)}"


def write_creds(path, jwt, seed):
    Path(path).write_text(
        "-----BEGIN NATS USER JWT-----\n" + jwt + "\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        "-----BEGIN USER NKEY SEED-----\n" + seed + "\n------END USER NKEY SEED------\n")
    os.chmod(path, 0o600)


class JwtFixture:
    """Operator, account APP (JetStream allowed), users joe (pub joe.>) and admin."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.operator = NKey(directory, "operator", PREFIX_OPERATOR)
        self.account = NKey(directory, "app", PREFIX_ACCOUNT)
        operator_jwt = mint_jwt(self.operator, self.operator.public, "OP", {"type": "operator"})
        limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                  "wildcards": True, "conn": -1, "leaf": -1, "mem_storage": -1,
                  "disk_storage": -1, "streams": -1, "consumer": -1}
        self.account_jwt = mint_jwt(self.operator, self.account.public, "APP",
                                    {"type": "account", "limits": limits})
        # JetStream (the harness always starts -js) needs a system account in operator mode.
        system = NKey(directory, "sys", PREFIX_ACCOUNT)
        system_jwt = mint_jwt(self.operator, system.public, "SYS", {"type": "account"})
        (self.dir / "operator.jwt").write_text(operator_jwt)
        self.users = {}
        for name, pub in (("joe", {"allow": ["joe.>"]}), ("admin", {})):
            user = NKey(directory, name, PREFIX_USER)
            user.jwt = mint_jwt(self.account, user.public, name,
                                {"type": "user", "pub": pub, "sub": {}, "subs": -1, "data": -1,
                                 "payload": -1})
            user.creds = self.dir / f"{name}.creds"
            write_creds(user.creds, user.jwt, user.seed)
            self.users[name] = user
        self.server_conf = self.dir / "server.conf"
        self.server_conf.write_text(
            f'operator: "{self.dir / "operator.jwt"}"\n'
            f"system_account: {system.public}\n"
            "resolver: MEMORY\n"
            f'resolver_preload: {{\n  {self.account.public}: "{self.account_jwt}"\n'
            f'  {system.public}: "{system_jwt}"\n}}\n'
            f"authorization {{ timeout: {AUTH_TIMEOUT_S} }}\n")


class TlsFixture:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all EC P-256."""

    def __init__(self, directory):
        d = Path(directory)
        self.ca, self.ca_key = d / "ca.pem", d / "ca-key.pem"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(self.ca_key), "-out", str(self.ca), "-days", "2",
                "-subj", "/CN=topicbridge test CA")
        self.server_cert, self.server_key = self._issue(d, "server", "127.0.0.1",
                                                        "subjectAltName=IP:127.0.0.1")
        self.client_cert, self.client_key = self._issue(d, "client", "topicbridge",
                                                        "extendedKeyUsage=clientAuth")

    def _issue(self, d, name, cn, extension):
        key, csr, cert = d / f"{name}-key.pem", d / f"{name}.csr", d / f"{name}.pem"
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        ext = d / f"{name}.ext"
        ext.write_text(extension + "\n")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
        os.chmod(key, 0o600)
        return cert, key

    def client_context(self):
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


class AuthNatsClient(harness.NatsClient):
    """harness.NatsClient with authentication (JWT + nonce signature, or user/password) and
    TLS (upgraded after the server's INFO, as NATS does)."""

    def __init__(self, url, user=None, tls=None, username=None, password=None, timeout=10.0):
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        info_line = sock.makefile("rb").readline()
        if not info_line.startswith(b"INFO "):
            raise harness.NatsError(f"expected INFO, got {info_line!r}")
        self.server_info = json.loads(info_line[5:])
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.settimeout(None)
        self.sock = sock
        self._file = sock.makefile("rb")
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queues = {}
        self._next_sid = 1
        self._pongs = 0
        self._error = None
        self._closed = False
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": "tb-security", "lang": "python-harness", "version": "0",
                   "tls_required": tls is not None}
        if user is not None:
            nonce = self.server_info["nonce"].encode()
            connect.update(jwt=user.jwt, sig=b64url(user.sign(nonce)))
        if username is not None:
            connect.update(user=username, **{"pass": password})
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.flush(timeout)


def nats_destination(did, url, subject, *params, kind="nats-core-best-effort"):
    return harness.destination_resource(did, kind, TOPIC_URL,
                                        [("url", url), ("subject", subject), *params])


def bridge_config(dsn, slot, http_port, destinations, http_extra=None):
    return harness.bridge_config(
        dsn, slot, http_port,
        topics=[harness.topic_resource(TOPIC_URL, "Patient", "name.exists()")],
        destinations=destinations, http=http_extra or {})


def http_get(port, path, token=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:  # not listening yet
        return None, str(e)


def status_of(port, did, token=None):
    """$status as {name: value} plus "errors": the lastErrorDetail messages."""
    code, body = http_get(port, f"/fhir/AidboxTopicDestination/{did}/$status", token)
    assert code == 200, (code, body)
    out = {"errors": [], "raw": body}
    for p in json.loads(body)["parameter"]:
        if p["name"] == "lastErrorDetail":
            out["errors"] += [q["valueString"] for q in p["part"] if q["name"] == "message"]
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


class SecurityScenarios(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl CLI not installed")
        cls.dir = Path(tempfile.mkdtemp(prefix="tb-security-"))
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.pg = harness.PostgresCluster()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.patients = 0

    def create_patient(self):
        SecurityScenarios.patients += 1
        rid = f"sec-{self.patients}"
        self.pg.value(f"""SELECT aidbox_create('Patient', '{rid}',
                          '{{"name": [{{"family": "Sec"}}]}}'::jsonb)""")
        return rid

    def start_bridge(self, config, http_port, env=None):
        """Starts topicbridge with `env` added to its environment; waits for /readyz 200."""
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            bridge = harness.Topicbridge(config)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.addCleanup(bridge.cleanup)
        bridge.wait_http_ok(f"http://127.0.0.1:{http_port}/readyz", timeout=60)
        return bridge

    def assert_no_secret(self, secrets, bridge, http_port, dids, token=None):
        texts = {"log": bridge.logs(), "/metrics": http_get(http_port, "/metrics", token)[1]}
        for did in dids:
            texts[f"{did} $status"] = status_of(http_port, did, token)["raw"]
        for where, text in texts.items():
            for secret in secrets:
                self.assertNotIn(secret, text, f"a secret shows in {where}")

    def test_jwt_permissions_violation_is_reported_and_does_not_disturb_others(self):
        fixture = JwtFixture(self.dir / "jwt")
        nats = harness.NatsServer(extra_args=["-c", str(fixture.server_conf)])
        self.addCleanup(nats.cleanup)
        admin = AuthNatsClient(nats.url, user=fixture.users["admin"])
        self.addCleanup(admin.close)
        joe_sid, pam_sid = admin.subscribe("joe.a"), admin.subscribe("pam.a")
        admin.flush()
        admin.js_add_stream("PAM", ["pam.b"])  # only joe's permissions stand in the way
        creds = str(fixture.users["joe"].creds)
        port = harness.free_port()
        bridge = self.start_bridge(bridge_config(
            self.pg.dsn(), "tb_jwt", port,
            [nats_destination("joe-to-pam", nats.url, "pam.a", ("credentialsFilePath", creds)),
             nats_destination("joe-to-joe", nats.url, "joe.a", ("credentialsFilePath", creds)),
             nats_destination("joe-to-pam-js", nats.url, "pam.b", ("credentialsFilePath", creds),
                              kind="nats-jetstream-at-least-once")]),
            port)

        self.create_patient()
        self.assertEqual(admin.next_message(timeout=20, sid=joe_sid).json()["topic"], "joe.a")
        harness.wait_for(
            lambda: any("Permissions Violation" in e for e in status_of(port, "joe-to-pam")["errors"]),
            20, "the permissions violation in joe-to-pam's $status")
        # The server refuses asynchronously: what follows within 5 s counts as lost.
        self.create_patient()
        self.assertEqual(admin.next_message(timeout=20, sid=joe_sid).json()["topic"], "joe.a")
        harness.wait_for(lambda: status_of(port, "joe-to-pam")["messagesLost"] >= 1, 20,
                         "joe-to-pam to count a lost message")
        bridge.wait_log(r"joe-to-pam.*Permissions Violation for Publish to \"?pam\.a")
        self.assertEqual(admin.pending(pam_sid), 0)
        # At least once: no PubAck ever comes for a refused message; it is retried, not lost.
        harness.wait_for(
            lambda: status_of(port, "joe-to-pam-js").get("messagesDeliveryAttempts", 0) >= 2, 90,
            "joe-to-pam-js to retry")
        js = status_of(port, "joe-to-pam-js")
        self.assertEqual(js["messagesDelivered"], 0)
        self.assertNotIn("messagesLost", js)
        self.assertTrue(any("Permissions Violation" in e for e in js["errors"]), js["errors"])
        self.assertEqual(admin.js_stream_info("PAM")["state"]["messages"], 0)
        joe = status_of(port, "joe-to-joe")
        self.assertEqual((joe["messagesDelivered"], joe["messagesLost"], joe["errors"]), (2, 0, []))
        user = fixture.users["joe"]
        self.assert_no_secret([user.seed, user.jwt.split(".")[2]], bridge, port,
                              ["joe-to-pam", "joe-to-joe", "joe-to-pam-js"])

    def test_nkey_seed_file_authenticates_and_a_readable_seed_is_warned_about(self):
        user = NKey(self.dir, "nkey-user", PREFIX_USER)
        seed_file = self.dir / "tb.nk"
        seed_file.write_text(user.seed + "\n")
        os.chmod(seed_file, 0o644)
        nats = harness.NatsServer(extra_args=nats_conf(
            self.dir, "nkey.conf",
            f'authorization {{ users = [ {{ nkey: "{user.public}" }} ], '
            f"timeout: {AUTH_TIMEOUT_S} }}\n"))
        self.addCleanup(nats.cleanup)
        port = harness.free_port()
        bridge = self.start_bridge(bridge_config(
            self.pg.dsn(), "tb_nkey", port,
            [nats_destination("nkey", nats.url, "nk.a", ("nkeySeedFilePath", str(seed_file)))]),
            port)
        self.create_patient()
        harness.wait_for(lambda: status_of(port, "nkey")["messagesDelivered"] >= 1, 20,
                         "delivery with the nkey seed")
        bridge.wait_log(r"nkeySeedFilePath .*tb\.nk is readable by every user")
        self.assert_no_secret([user.seed], bridge, port, ["nkey"])

    def test_refused_nats_credentials_are_reported_and_the_rest_starts(self):
        password, wrong = "pw-right-4", "pw-wrong-5"
        nats = harness.NatsServer(extra_args=password_conf(self.dir, "tb", password))
        self.addCleanup(nats.cleanup)
        reader = AuthNatsClient(nats.url, username="tb", password=password)
        self.addCleanup(reader.close)
        sid = reader.subscribe("auth.good")
        reader.flush()
        port = harness.free_port()
        bridge = harness.Topicbridge(bridge_config(
            self.pg.dsn(), "tb_refused", port,
            [nats_destination("refused", nats.url, "auth.bad", ("username", "tb"),
                              ("password", wrong)),
             nats_destination("refused-js", nats.url, "auth.bad.js", ("username", "tb"),
                              ("password", wrong), kind="nats-jetstream-at-least-once"),
             nats_destination("good", nats.url, "auth.good", ("username", "tb"),
                              ("password", password))]))
        self.addCleanup(bridge.cleanup)
        # Start-up does not wait for a server that refuses the login.
        bridge.wait_http_ok(f"http://127.0.0.1:{port}/healthz", timeout=30)
        for did in ("refused", "refused-js"):
            errors = status_of(port, did)["errors"]
            self.assertTrue(any("Authorization Violation" in e and "check username/password" in e
                                for e in errors), (did, errors))
        bridge.wait_log(r"destination refused: nats: cannot connect to .*Authorization Violation")
        # /readyz names the first thing not ready: "replication not connected" until the slot
        # streams (later under ASan), then the refused destination.
        def readyz_naming_refused():
            answer = http_get(port, "/readyz")
            return answer if "refused" in answer[1] else None
        readyz = harness.wait_for(readyz_naming_refused, 30, "/readyz to name the refused destination")
        self.assertEqual(readyz[0], 503)

        self.create_patient()
        self.assertEqual(reader.next_message(timeout=20, sid=sid).json()["topic"], "auth.good")
        harness.wait_for(lambda: status_of(port, "refused")["messagesLost"] >= 1, 20,
                         "the refused best-effort destination to count the message lost")
        js = status_of(port, "refused-js")
        self.assertEqual(js["messagesDelivered"], 0)
        self.assertNotIn("messagesLost", js)
        self.assert_no_secret([password, wrong], bridge, port, ["refused", "refused-js", "good"])

    def test_mutual_tls_and_password_with_least_privilege_role_and_bearer_token(self):
        tls = TlsFixture(self.dir)
        password, token = "pw-Tr0ub4dor-3", "tok-correct-horse-battery"
        nats = harness.NatsServer(extra_args=nats_conf(self.dir, "tls.conf", (
            f"tls {{ cert_file: {json.dumps(str(tls.server_cert))}, "
            f"key_file: {json.dumps(str(tls.server_key))}, ca_file: {json.dumps(str(tls.ca))}, "
            f"verify: true, timeout: {AUTH_TIMEOUT_S - 1} }}\n"
            f"authorization {{ user: tb, password: {json.dumps(password)}, "
            f"timeout: {AUTH_TIMEOUT_S} }}\n")))
        self.addCleanup(nats.cleanup)
        reader = AuthNatsClient(nats.url, tls=tls.client_context(), username="tb",
                                password=password)
        self.addCleanup(reader.close)
        sid = reader.subscribe("secure.a")
        reader.flush()

        # The role of sql/003, with a password (the harness's pg_hba asks TCP logins for one).
        self.pg.psql("-c", "SET topicbridge.tables = 'patient'", "-f",
                     str(SOURCE_ROOT / "sql" / "003_least_privilege_role.sql"))
        role_password = "pg-role-Secr3t"
        self.pg.sql(f"ALTER ROLE topicbridge PASSWORD '{role_password}'")
        self.assertEqual(self.pg.value(
            "SELECT has_table_privilege('topicbridge', 'patient', 'INSERT')"), "f")
        self.assertEqual(self.pg.value(
            "SELECT rolsuper::text || rolreplication::text FROM pg_roles "
            "WHERE rolname = 'topicbridge'"), "falsetrue")
        dsn = (f"host=127.0.0.1 port={self.pg.port} dbname={self.pg.DATABASE} user=topicbridge "
               f"password={role_password}")

        tls_params = [("sslContext", "tls"), ("tlsCaFile", str(tls.ca)),
                      ("tlsCertFile", str(tls.client_cert)),
                      ("tlsKeyFile", str(tls.client_key)), ("username", "tb")]
        secure = nats_destination("secure", nats.url, "secure.a", *tls_params,
                                  ("password", "${TB_NATS_PASSWORD}"))
        port = harness.free_port()
        bridge = self.start_bridge(
            bridge_config(dsn, "tb_tls", port, [secure],
                          {"bearer_token": "${TB_HTTP_TOKEN}"}),
            port, env={"TB_HTTP_TOKEN": token, "TB_NATS_PASSWORD": password})

        self.create_patient()
        msg = reader.next_message(timeout=20, sid=sid)
        self.assertEqual(msg.json()["value"]["entry"][1]["resource"]["resourceType"], "Patient")

        for path in ("/metrics", "/fhir/AidboxTopicDestination/secure/$status",
                     "/fhir/AidboxTopicDestination"):
            self.assertEqual(http_get(port, path)[0], 401, path)
            self.assertEqual(http_get(port, path, "wrong-" + token)[0], 401, path)
            self.assertEqual(http_get(port, path, token)[0], 200, path)
        self.assertEqual(http_get(port, "/healthz"), (200, "ok\n"))
        self.assertEqual(status_of(port, "secure", token)["messagesDelivered"], 1)
        self.assert_no_secret([password, token, role_password], bridge, port, ["secure"], token)


if __name__ == "__main__":
    unittest.main(verbosity=2)
