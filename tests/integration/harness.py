"""Fixtures for topicbridge integration tests (Python 3 standard library only).

Throwaway servers — PostgreSQL 15 with wal2json, nats-server with JetStream, the librdkafka
mock cluster — and the topicbridge process itself, each on 127.0.0.1 and a free port, each in
its own temporary directory. Every process a fixture starts is stopped by its PID when the
fixture's cleanup() runs: call it from tearDown/addCleanup; an atexit hook (also reached on
SIGTERM) cleans up whatever a failed test left behind.
"""

import atexit
import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import namedtuple
from pathlib import Path

SOURCE_ROOT = Path(os.environ.get("TOPICBRIDGE_SOURCE_ROOT") or Path(__file__).resolve().parents[2])
SQL_DIR = SOURCE_ROOT / "sql"
IS_ROOT = os.geteuid() == 0

# Fixtures still holding processes or directories; cleaned at exit in reverse start order.
_live = []
_live_lock = threading.Lock()


def _register(fixture):
    with _live_lock:
        if fixture not in _live:
            _live.append(fixture)


def _unregister(fixture):
    with _live_lock:
        if fixture in _live:
            _live.remove(fixture)


@atexit.register
def cleanup_all():
    """Cleans up every fixture not cleaned yet (newest first)."""
    while True:
        with _live_lock:
            if not _live:
                return
            fixture = _live.pop()
        try:
            fixture.cleanup()
        except Exception as e:  # keep cleaning the others
            print(f"harness: cleanup of {fixture!r} failed: {e}", file=sys.stderr)


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # runs atexit, so a timed-out test still stops its servers


if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def topic_resource(url, resource, criteria=None, interactions=None):
    """An AidboxSubscriptionTopic with one trigger, as a user POSTs it."""
    trigger = {"resource": resource}
    if criteria:
        trigger["fhirPathCriteria"] = criteria
    if interactions:
        trigger["supportedInteraction"] = list(interactions)
    return {"resourceType": "AidboxSubscriptionTopic", "url": url, "status": "active",
            "trigger": [trigger]}


def destination_resource(did, kind, topic_url, params, **fields):
    """An AidboxTopicDestination; params is a list of (name, value), the value[x] type taken from
    the Python type (bool → valueBoolean, int → valueInteger, else valueString)."""
    def parameter(name, value):
        if isinstance(value, bool):
            return {"name": name, "valueBoolean": value}
        if isinstance(value, int):
            return {"name": name, "valueInteger": value}
        return {"name": name, "valueString": value}

    d = {"resourceType": "AidboxTopicDestination", "id": did, "kind": kind, "topic": topic_url,
         "parameter": [parameter(n, v) for n, v in params]}
    d.update(fields)
    return d


def bridge_config(dsn, slot, http_port, topics, destinations, **sections):
    """A topicbridge config dict; each keyword is merged into its section (postgres, http, ...)."""
    config = {"postgres": {"dsn": dsn, "slot": slot},
              "http": {"listen": f"127.0.0.1:{http_port}"},
              "topics": topics, "destinations": destinations}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a truthy value, which is returned; else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid):
    """True when pid exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop_process(proc, timeout=15.0, sig=signal.SIGTERM):
    """Signals a Popen child, waits, then SIGKILLs it; returns its exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _make_temp_dir(prefix):
    # Under /tmp so the postgres user can traverse it when we run as root.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if IS_ROOT else None))


def _pg_bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    except (OSError, subprocess.CalledProcessError):
        pass
    return Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    """A throwaway PostgreSQL cluster set up for wal2json, with database `aidbox` and sql/ loaded.

    Runs as OS user postgres when we are root (initdb refuses root). TCP on 127.0.0.1:port with
    password auth (user postgres / password postgres); the same port survives restart().
    """

    USER = "postgres"
    PASSWORD = "postgres"
    DATABASE = "aidbox"

    def __init__(self, port=None, load_sql=True, extra_conf=None):
        self.port = port or free_port()
        self.load_sql = load_sql
        self.extra_conf = dict(extra_conf or {})
        self.base = _make_temp_dir("tb-pg-")
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log_file = self.base / "postgres.log"
        self.bindir = _pg_bindir()
        _register(self)
        self._init()
        self.start()

    def __repr__(self):
        return f"PostgresCluster(port={self.port}, base={self.base})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def _as_owner(self, args, **kw):
        cmd = (["runuser", "-u", "postgres", "--"] if IS_ROOT else []) + [str(a) for a in args]
        return subprocess.run(cmd, cwd="/", capture_output=True, text=True, **kw)

    def _init(self):
        self.socket_dir.mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.PASSWORD + "\n")
        if IS_ROOT:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        r = self._as_owner([self.bindir / "initdb", "-D", self.data_dir, "-U", self.USER,
                            f"--pwfile={pwfile}", "--auth-local=trust",
                            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        pwfile.unlink()
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "wal_level": "logical",
            "output_plugin_libraries": "'wal2json'",
            "max_replication_slots": "10",
            "max_wal_senders": "10",
            "fsync": "off",  # throwaway data; a killed server still recovers (no OS crash)
            "full_page_writes": "off",
        }
        conf.update(self.extra_conf)
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\n# topicbridge integration tests\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
            f.write("include_if_exists = 'harness_port.conf'\n")

    def _postmaster_pid(self):
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    @property
    def pid(self):
        """PID of the running postmaster, or None."""
        pid = self._postmaster_pid()
        return pid if pid and pid_alive(pid) else None

    def start(self, timeout=60):
        """Starts the server (no-op when running), creates `aidbox` and loads sql/*.sql."""
        if self.pid:
            return
        stale = self._postmaster_pid()
        if stale:  # after kill(): postgres refuses to start while that PID still exists
            wait_for(lambda: not os.path.exists(f"/proc/{stale}"), 15, "crashed postmaster to go")
        port_conf = self.data_dir / "harness_port.conf"
        port_conf.write_text(f"port = {self.port}\n")
        r = self._as_owner([self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.log_file,
                            "-w", "-t", str(timeout), "start"])
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr}\n{self.logs()[-3000:]}")
        if not self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{self.DATABASE}'",
                        dbname="postgres"):
            self.sql(f"CREATE DATABASE {self.DATABASE}", dbname="postgres")
            if self.load_sql:
                for path in sorted(SQL_DIR.glob("*.sql")):
                    self.psql("-f", str(path))

    def stop(self, mode="fast"):
        """Stops the server (pg_ctl stop -m fast|smart|immediate); no-op when stopped."""
        if self.pid:
            r = self._as_owner([self.bindir / "pg_ctl", "-D", self.data_dir, "-m", mode, "-w",
                                "-t", "60", "stop"])
            if r.returncode != 0 and self.pid:
                raise RuntimeError(f"pg_ctl stop failed: {r.stderr}")

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def kill(self):
        """SIGKILLs the postmaster: a crash; start() recovers."""
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), 15, "postmaster to die")

    def cleanup(self):
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            _unregister(self)

    def dsn(self, dbname=None):
        """libpq keyword DSN over TCP with password auth."""
        return (f"host=127.0.0.1 port={self.port} dbname={dbname or self.DATABASE} "
                f"user={self.USER} password={self.PASSWORD}")

    def psql(self, *args, dbname=None, input=None, timeout=60):
        """Runs psql (ON_ERROR_STOP, quiet, no psqlrc) over TCP; returns stdout or raises."""
        cmd = [str(self.bindir / "psql"), self.dsn(dbname), "-X", "-q", "-v", "ON_ERROR_STOP=1",
               *args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout

    def sql(self, query, dbname=None, timeout=60):
        """Runs SQL (one or more statements) and returns the rows as lists of strings.

        NULL comes back as None. Rows of every statement that returns rows are concatenated.
        """
        out = self.psql("-At", "-F", "\x1f", "-R", "\x1e", "-P", "null=\x1d", "-f", "-",
                        dbname=dbname, input=query, timeout=timeout)
        rows = []
        for line in out.split("\x1e"):
            line = line.strip("\n")
            if line:
                rows.append([None if c == "\x1d" else c for c in line.split("\x1f")])
        return rows

    def value(self, query, dbname=None):
        """The first column of the first row, or None when there is no row."""
        rows = self.sql(query, dbname)
        return rows[0][0] if rows else None

    def logical_changes(self, slot, *options, peek=False):
        """Consumes (or peeks) a wal2json format-version 2 slot; returns the parsed changes."""
        opts = ["format-version", "2", "include-lsn", "1", *options]
        fn = "pg_logical_slot_peek_changes" if peek else "pg_logical_slot_get_changes"
        args = ", ".join("'" + o.replace("'", "''") + "'" for o in opts)
        return [json.loads(r[0]) for r in self.sql(f"SELECT data FROM {fn}('{slot}', NULL, NULL, {args})")]

    def logs(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


class NatsServer:
    """nats-server with JetStream on 127.0.0.1; stop() then start() keeps port and store."""

    def __init__(self, port=None, monitor_port=None, extra_args=()):
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.extra_args = list(extra_args)
        self.base = _make_temp_dir("tb-nats-")
        self.store_dir = self.base / "store"
        self.log_file = self.base / "nats.log"
        self.proc = None
        _register(self)
        self.start()

    def __repr__(self):
        return f"NatsServer(port={self.port}, pid={self.pid})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self, timeout=20):
        if self.pid:
            return
        cmd = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m",
               str(self.monitor_port), "-sd", str(self.store_dir), "-n", "tb-test",
               *self.extra_args]
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true",
                        timeout=1) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False

        wait_for(ready, timeout, "nats-server to be ready")

    def stop(self):
        _stop_process(self.proc)
        self.proc = None

    def kill(self):
        _stop_process(self.proc, sig=signal.SIGKILL)
        self.proc = None

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            _unregister(self)

    def logs(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


class Message(tuple):
    """A received NATS message; unpacks as (subject, headers, body). `.reply` is the reply-to."""

    def __new__(cls, subject, headers, body, reply=None, sid=None):
        m = super().__new__(cls, (subject, headers, body))
        m.reply = reply
        m.sid = sid
        return m

    subject = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    body = property(lambda self: self[2])

    def json(self):
        return json.loads(self.body)


class NatsError(RuntimeError):
    pass


def parse_nats_headers(block):
    """Parses a `NATS/1.0 [status [description]]\\r\\nKey: Value\\r\\n...` block into a dict.

    A status line's code lands under ':status' and its text under ':description'; a header
    repeated keeps its last value.
    """
    lines = block.decode("utf-8", errors="replace").split("\r\n")
    headers = {}
    status = lines[0][len("NATS/1.0"):].strip() if lines and lines[0].startswith("NATS/1.0") else ""
    if status:
        code, _, description = status.partition(" ")
        headers[":status"] = code
        if description:
            headers[":description"] = description
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip()] = value.strip()
    return headers


def format_nats_headers(headers):
    return ("NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


class NatsClient:
    """A minimal NATS client (CONNECT with headers, PUB/HPUB, SUB/UNSUB, MSG/HMSG, PING/PONG).

    A reader thread parses the socket and answers server PINGs; received messages wait in
    per-subscription queues until next_message() takes them. Also JetStream management calls
    over $JS.API requests.
    """

    def __init__(self, url_or_port, timeout=10.0, name="tb-harness"):
        host, port = "127.0.0.1", url_or_port
        if isinstance(url_or_port, str):
            m = re.match(r"(?:nats://)?([^:/]+):(\d+)", url_or_port)
            host, port = m.group(1), int(m.group(2))
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self._file = self.sock.makefile("rb")
        info = self._file.readline()
        if not info.startswith(b"INFO "):
            raise NatsError(f"expected INFO, got {info!r}")
        self.server_info = json.loads(info[5:])
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queues = {}  # sid -> list of Message
        self._next_sid = 1
        self._pongs = 0
        self._error = None
        self._closed = False
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": name, "lang": "python-harness", "version": "0"}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self._reader = threading.Thread(target=self._read_loop, name="nats-reader", daemon=True)
        self._reader.start()
        self.flush(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # The reader sees end of file after the shutdown; its file is closed once it is done.
        if self._reader is not threading.current_thread():
            self._reader.join(5)
        if not self._reader.is_alive():
            self._file.close()
        self.sock.close()

    def _send(self, data):
        with self._send_lock:
            self.sock.sendall(data)

    def _read_loop(self):
        try:
            while True:
                line = self._file.readline()
                if not line:
                    raise NatsError("connection closed by server")
                self._handle(line.rstrip(b"\r\n"))
        except Exception as e:  # socket closed or protocol error: wake waiters
            with self._cond:
                self._error = e if not self._closed else NatsError("client closed")
                self._cond.notify_all()

    def _handle(self, line):
        op, _, rest = line.partition(b" ")
        op = op.upper()
        if op == b"PING":
            self._send(b"PONG\r\n")
        elif op == b"PONG":
            with self._cond:
                self._pongs += 1
                self._cond.notify_all()
        elif op in (b"MSG", b"HMSG"):
            args = rest.decode().split()
            subject, sid = args[0], int(args[1])
            if op == b"MSG":
                reply = args[2] if len(args) == 3 else None
                hdr_len, total = 0, int(args[-1])
            else:
                reply = args[2] if len(args) == 5 else None
                hdr_len, total = int(args[-2]), int(args[-1])
            payload = self._file.read(total + 2)[:total]
            headers = parse_nats_headers(payload[:hdr_len]) if hdr_len else {}
            msg = Message(subject, headers, payload[hdr_len:], reply, sid)
            with self._cond:
                if sid in self._queues:
                    self._queues[sid].append(msg)
                    self._cond.notify_all()
        elif op == b"-ERR":
            with self._cond:
                self._error = NatsError(rest.decode())
                self._cond.notify_all()
        # +OK and INFO updates need no action.

    def flush(self, timeout=10.0):
        """Round-trips a PING: everything sent before (SUB, PUB) has reached the server."""
        with self._cond:
            want = self._pongs + 1
        self._send(b"PING\r\n")
        with self._cond:
            if not self._cond.wait_for(lambda: self._pongs >= want or self._error, timeout):
                raise TimeoutError("no PONG from nats-server")
            if self._error:
                raise self._error

    def subscribe(self, subject, queue_group=None):
        """Subscribes and flushes; returns the sid for next_message(sid=...)/unsubscribe()."""
        with self._cond:
            sid = self._next_sid
            self._next_sid += 1
            self._queues[sid] = []
        group = f" {queue_group}" if queue_group else ""
        self._send(f"SUB {subject}{group} {sid}\r\n".encode())
        self.flush()
        return sid

    def unsubscribe(self, sid):
        self._send(f"UNSUB {sid}\r\n".encode())
        with self._cond:
            self._queues.pop(sid, None)

    def publish(self, subject, body=b"", headers=None, reply=None):
        if isinstance(body, str):
            body = body.encode()
        reply_part = f" {reply}" if reply else ""
        if headers:
            hdr = format_nats_headers(headers)
            self._send(f"HPUB {subject}{reply_part} {len(hdr)} {len(hdr) + len(body)}\r\n".encode()
                       + hdr + body + b"\r\n")
        else:
            self._send(f"PUB {subject}{reply_part} {len(body)}\r\n".encode() + body + b"\r\n")

    def next_message(self, timeout=5.0, sid=None):
        """The oldest message of subscription sid (any subscription when None); TimeoutError."""
        def take():
            for s, q in self._queues.items():
                if (sid is None or s == sid) and q:
                    return q.pop(0)
            return None

        with self._cond:
            msg = self._cond.wait_for(lambda: take() or self._error, timeout)
            if isinstance(msg, Message):
                return msg
            if self._error:
                raise self._error
            raise TimeoutError(f"no message within {timeout}s")

    def messages(self, count, timeout=10.0, sid=None):
        """Exactly `count` messages (in arrival order) within timeout overall."""
        deadline = time.monotonic() + timeout
        return [self.next_message(max(0.0, deadline - time.monotonic()), sid) for _ in range(count)]

    def pending(self, sid=None):
        with self._cond:
            return sum(len(q) for s, q in self._queues.items() if sid is None or s == sid)

    def request(self, subject, payload=b"", timeout=5.0, headers=None):
        """Publishes with a fresh reply inbox and returns the first reply (a Message)."""
        inbox = f"_INBOX.{os.urandom(8).hex()}"
        sid = self.subscribe(inbox)
        try:
            self.publish(subject, payload, headers=headers, reply=inbox)
            msg = self.next_message(timeout, sid)
        finally:
            self.unsubscribe(sid)
        if msg.headers.get(":status") == "503":
            raise NatsError(f"no responders for {subject}")
        return msg

    # --- JetStream management over $JS.API ------------------------------------------------

    def js_api(self, api, request=None, timeout=5.0):
        """Calls $JS.API.<api> with a JSON request; returns the JSON reply or raises NatsError."""
        payload = json.dumps(request).encode() if request is not None else b""
        reply = json.loads(self.request(f"$JS.API.{api}", payload, timeout).body)
        if "error" in reply:
            raise NatsError(f"$JS.API.{api}: {reply['error']}")
        return reply

    def js_add_stream(self, name, subjects, **config):
        """Creates a file-backed stream; extra config keys go into the request as given."""
        return self.js_api(f"STREAM.CREATE.{name}",
                           {"name": name, "subjects": list(subjects), "storage": "file", **config})

    def js_delete_stream(self, name):
        return self.js_api(f"STREAM.DELETE.{name}")

    def js_stream_info(self, name):
        return self.js_api(f"STREAM.INFO.{name}")

    def js_get_msg(self, stream, seq):
        """(headers dict, body bytes) of message seq of the stream."""
        m = self.js_get_message(stream, seq)
        return m.headers, m.body

    def js_get_message(self, stream, seq):
        """The stored message seq as a Message (its subject, headers, body); .seq is set."""
        m = self.js_api(f"STREAM.MSG.GET.{stream}", {"seq": seq})["message"]
        hdrs = base64.b64decode(m["hdrs"]) if m.get("hdrs") else b""
        msg = Message(m["subject"], parse_nats_headers(hdrs) if hdrs else {},
                      base64.b64decode(m.get("data") or ""))
        msg.seq = m["seq"]
        return msg

    def js_messages(self, stream):
        """Every message the stream holds, in sequence order."""
        state = self.js_stream_info(stream)["state"]
        if state["messages"] == 0:
            return []
        out = []
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            try:
                out.append(self.js_get_message(stream, seq))
            except NatsError:  # a deleted sequence
                pass
        return out

    def js_publish(self, subject, body=b"", headers=None, timeout=5.0):
        """Publishes into a stream and returns the PubAck JSON."""
        reply = json.loads(self.request(subject, body, timeout, headers).body)
        if "error" in reply:
            raise NatsError(f"publish to {subject}: {reply['error']}")
        return reply

    def js_update_stream(self, name, **changes):
        """Changes a stream's configuration (e.g. max_msgs, discard); returns the new info."""
        config = self.js_stream_info(name)["config"]
        config.update(changes)
        return self.js_api(f"STREAM.UPDATE.{name}", config)

    def js_read(self, stream, start_seq, timeout=30.0):
        """Every message stored from start_seq to the stream's last sequence, read through an
        ephemeral push consumer with flow control; each Message has .seq and .time_ns (when
        it was stored, from the ack subject) set."""
        last = self.js_stream_info(stream)["state"]["last_seq"]
        if last < start_seq:
            return []
        inbox = f"_INBOX.read.{os.urandom(6).hex()}"
        sid = self.subscribe(inbox)
        config = {"deliver_subject": inbox, "ack_policy": "none",
                  "deliver_policy": "by_start_sequence", "opt_start_seq": start_seq,
                  "replay_policy": "instant", "flow_control": True,
                  "idle_heartbeat": 1_000_000_000, "mem_storage": True}
        name = self.js_api(f"CONSUMER.CREATE.{stream}",
                           {"stream_name": stream, "config": config})["name"]
        out = []
        try:
            while True:
                m = self.next_message(timeout=timeout, sid=sid)
                if m.headers.get(":status"):
                    if m.reply:  # flow control: answer so the server keeps sending
                        self.publish(m.reply)
                    continue
                # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>
                tokens = m.reply.split(".")
                m.seq, m.time_ns = int(tokens[5]), int(tokens[7])
                out.append(m)
                if m.seq >= last:
                    return out
        finally:
            self.unsubscribe(sid)
            self.js_api(f"CONSUMER.DELETE.{stream}.{name}")


def find_binary(env_var, relative, what):
    """A built program: $env_var, else <source>/build*/<relative>; raises if none exists."""
    path = os.environ.get(env_var)
    if path:
        return Path(path)
    for candidate in sorted(SOURCE_ROOT.glob(f"build*/{relative}")):
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{what} not found: set {env_var}")


class Topicbridge:
    """The topicbridge daemon under test: `topicbridge run -c <temp config>`.

    config is a dict (written as JSON, which is YAML) or YAML text. Output (stdout and stderr)
    goes to a log file read by logs().
    """

    def __init__(self, config, binary=None, extra_args=(), start=True):
        self.binary = Path(binary) if binary else find_binary(
            "TOPICBRIDGE_BIN", "src/app/topicbridge", "topicbridge binary")
        self.base = _make_temp_dir("tb-bridge-")
        self.config_file = self.base / "topicbridge.yaml"
        self.log_file = self.base / "topicbridge.log"
        self.extra_args = list(extra_args)
        self.proc = None
        self.returncode = None
        self.write_config(config)
        _register(self)
        if start:
            self.start()

    def __repr__(self):
        return f"Topicbridge(pid={self.pid}, config={self.config_file})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def write_config(self, config):
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        self.config_file.write_text(text)

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self):
        """Starts `topicbridge run -c FILE`; the log file keeps output of earlier runs."""
        if self.pid:
            return
        self.returncode = None
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "run", "-c", str(self.config_file), *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_http_ok(self, url, timeout=30.0):
        """Polls url until it answers 200; returns the body. Fails early if the process exits."""
        def ok():
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"topicbridge exited {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.read() if r.status == 200 else None
            except (OSError, urllib.error.URLError):
                return None

        return wait_for(ok, timeout, f"{url} to answer 200")

    def wait_log(self, pattern, timeout=30.0):
        """Waits until the log matches the regex; returns the match."""
        return wait_for(lambda: re.search(pattern, self.logs()), timeout, f"log /{pattern}/")

    def wait_exit(self, timeout=30.0):
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stop(self, timeout=30.0):
        """SIGTERM, wait for the drain; returns the exit code (SIGKILL after timeout)."""
        if self.proc:
            self.returncode = _stop_process(self.proc, timeout)
        return self.returncode

    def kill(self):
        """SIGKILL: a crash without drain."""
        if self.proc:
            self.returncode = _stop_process(self.proc, sig=signal.SIGKILL)
        return self.returncode

    def peak_rss_kb(self):
        """VmHWM of the running process in kB (its peak resident memory), or None."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
        except (OSError, TypeError, AttributeError):
            return None

    def cleanup(self):
        try:
            self.kill()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            _unregister(self)

    def logs(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


class KafkaMock:
    """tools/kafka-mock's kafka-mock-cluster: librdkafka's mock Kafka cluster on loopback.

    The program prints its bootstrap servers, then obeys one command per stdin line and answers
    each with "ok" or "error: ...".
    """

    def __init__(self, brokers=3, binary=None, timeout=20.0):
        self.binary = Path(binary) if binary else find_binary(
            "KAFKA_MOCK_BIN", "tools/kafka-mock/kafka-mock-cluster", "kafka-mock-cluster")
        self.base = _make_temp_dir("tb-kafka-")
        self.log_file = self.base / "kafka-mock.log"
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen([str(self.binary), "--brokers", str(brokers)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log)
        _register(self)
        self.bootstraps = self._read_line(timeout)
        if not self.bootstraps:
            raise RuntimeError(f"kafka-mock-cluster printed no bootstraps:\n{self.logs()}")

    def __repr__(self):
        return f"KafkaMock(bootstraps={self.bootstraps!r}, pid={self.pid})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def _read_line(self, timeout):
        fd = self.proc.stdout
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"kafka-mock-cluster silent for {timeout}s:\n{self.logs()}")
        return fd.readline().decode().strip()

    def command(self, line, timeout=10.0):
        """Sends one command line; raises unless the answer is "ok"."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._read_line(timeout)
        if answer != "ok":
            raise RuntimeError(f"kafka-mock-cluster {line!r}: {answer or 'no answer'}")

    def broker_down(self, broker_id):
        self.command(f"broker-down {broker_id}")

    def broker_up(self, broker_id):
        self.command(f"broker-up {broker_id}")

    def create_topic(self, name, partitions=1):
        self.command(f"create-topic {name} {partitions}")

    def request_errors(self, api_key, *errors):
        """The next len(errors) requests of that API (0 = Produce) fail with these errors, in
        order (names like KAFKA_STORAGE_ERROR or numbers)."""
        self.command(f"request-errors {api_key} {' '.join(errors)}")

    def stop(self, timeout=10.0):
        if self.pid:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _stop_process(self.proc)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            _unregister(self)

    def logs(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def kcat(self, *args, input=None, timeout=30.0):
        """Runs `kcat -b <bootstraps> ARGS`; returns stdout bytes or raises with stderr."""
        r = subprocess.run(["kcat", "-b", self.bootstraps, *args], input=input,
                           capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"kcat {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
        return r.stdout


KafkaRecord = namedtuple("KafkaRecord", "key id msg_id")
KafkaRecord.__doc__ = ("A message KafkaTail read: its key, the id of the notification's resource "
                       "and its topicbridge-message-id header (None when absent).")


class KafkaTail:
    """A background `kcat -C` on partition 0 of `topic` from `offset` on, collecting a
    KafkaRecord per message as messages arrive: the mock cluster keeps only about 5 MB per
    partition, so reading back once at the end would find the oldest messages gone. kcat exits
    when every broker is down; it is started again from the next offset. Offsets are checked
    for gaps (`gaps`: (expected, got) pairs)."""

    def __init__(self, kafka, topic, offset):
        self.kafka = kafka
        self.topic = topic
        self.next_offset = offset
        self.gaps = []
        self.messages = []
        self.lock = threading.Lock()
        self.closed = False
        self.proc = None
        self.stderr_path = kafka.base / f"kcat-{offset}.err"
        self.stderr_path.write_bytes(b"")
        self.reader = threading.Thread(target=self._run, daemon=True)
        self.reader.start()
        # Positioned at the end of the partition before anything is written.
        wait_for(lambda: b"Reached end of topic" in self.stderr_path.read_bytes(), 30,
                 "kcat to reach the end of the topic")

    def _run(self):
        while not self.closed:
            with open(self.stderr_path, "ab") as stderr:
                self.proc = subprocess.Popen(
                    ["kcat", "-b", self.kafka.bootstraps, "-C", "-t", self.topic, "-p", "0",
                     "-o", str(self.next_offset), "-u", "-f", "%o\t%k\t%h\t%s\n"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
            if self.closed:  # close() came while starting it
                _stop_process(self.proc, timeout=5)
                self.proc.stdout.close()
                break
            with self.proc.stdout:
                for line in self.proc.stdout:
                    self._add(line)
            self.proc.wait()
            time.sleep(0.5)

    def _add(self, line):
        offset, key, headers, value = line.decode().rstrip("\n").split("\t", 3)
        rid = json.loads(value)["value"]["entry"][1]["resource"]["id"]
        msg_id = dict(h.split("=", 1) for h in headers.split(",") if "=" in h).get(
            "topicbridge-message-id")
        with self.lock:
            if int(offset) != self.next_offset:
                self.gaps.append((self.next_offset, int(offset)))
            self.next_offset = int(offset) + 1
            self.messages.append(KafkaRecord(key, rid, msg_id))

    def snapshot(self):
        """The KafkaRecords read so far, in offset order."""
        with self.lock:
            return list(self.messages)

    def ids(self, unique=True):
        """The resource ids read so far: a set, or with unique=False a list with repeats."""
        ids = [record.id for record in self.snapshot()]
        return set(ids) if unique else ids

    def close(self):
        self.closed = True
        if self.proc:
            _stop_process(self.proc, timeout=5)
        self.reader.join(10)
