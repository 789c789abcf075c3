"""A real `herald serve` for the Azure Service Bus SDK tests: a fresh data folder, access keys made
with `herald keys create`, entities made with `herald queue|topic|subscription create` before the
server starts, an HTTP port and an AMQP port picked by the server (port 0, read back from the lines
it prints once listening), its log in a file, and a small HTTP/JSON client for the cross-protocol
tests and for counts.

Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REPOSITORY = Path(__file__).resolve().parents[2]


def herald_binary() -> Path:
    """`$HERALD_BINARY`, else the debug build `.build/debug/herald`; fails loudly when it is missing."""
    path = Path(os.environ.get("HERALD_BINARY") or REPOSITORY / ".build" / "debug" / "herald")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: build it first (swift build --product herald)")
    return path


@dataclass
class Key:
    """An access key as `herald keys create` printed it."""

    name: str
    bearer: str  # the HTTP API's key (Authorization: Bearer …)
    connection_string: str  # for AMQP clients, with the server's AMQP port once it listens
    key_name: str  # SharedAccessKeyName
    shared_access_key: str  # SharedAccessKey


@dataclass
class Entity:
    """An entity made before the server starts: kind is queue, topic or subscription."""

    kind: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)  # CLI option name -> value (True for a flag)
    topic: str | None = None

    def arguments(self) -> list[str]:
        arguments = [self.kind, "create"] + ([self.topic] if self.topic else []) + [self.name]
        for option, value in self.options.items():
            if value is True:
                arguments.append(f"--{option}")
            elif isinstance(value, (list, tuple)):
                for item in value:
                    arguments += [f"--{option}", str(item)]
            else:
                arguments += [f"--{option}", str(value)]
        return arguments


class HeraldServer:
    """Starts `herald serve` on a fresh data folder; `stop()` (or the context manager) ends it and
    removes the folder unless `keep` is set."""

    def __init__(
        self, entities: Iterable[Entity] = (), keep: bool = False, log_level: str = "info", extra_keys: Iterable[dict] = (), tls: bool = False
    ):
        self.binary = herald_binary()
        self.directory = Path(tempfile.mkdtemp(prefix="herald-servicebus-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "serve.log"
        self.keep = keep
        self.log_level = log_level
        self.process: subprocess.Popen | None = None
        self.http_port = 0
        self.amqp_port = 0
        # With tls, the server also listens for AMQP over TLS (amqps_port) and serves Service Bus's
        # administration API over HTTPS (admin_port), with a certificate for localhost that it
        # generates (certificate: the PEM file a client trusts).
        self.tls = tls
        self.amqps_port = 0
        self.admin_port = 0
        self.certificate = self.directory / "certificate.pem"
        self.keys: dict[str, Key] = {}
        self._entities = list(entities)
        self._extra_keys = list(extra_keys)

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> "HeraldServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        self.data.mkdir(parents=True)
        for entity in self._entities:
            self.cli(*entity.arguments(), "--data", str(self.data))
        self.create_key("admin", "manage")
        for extra in self._extra_keys:
            self.create_key(**extra)
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(self.binary), "serve", "--data", str(self.data), "--host", "127.0.0.1", "--port", "0", "--amqp-port", "0", "--log-level", self.log_level]
            + self._tls_arguments(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._record_pid(self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            http = re.search(r"^herald listening on http://127\.0\.0\.1:(\d+)", text, re.M)
            amqp = re.search(r"^herald AMQP listening on amqp://127\.0\.0\.1:(\d+)", text, re.M)
            amqps = re.search(r"^herald AMQP listening on amqps://127\.0\.0\.1:(\d+)", text, re.M)
            admin = re.search(r"^herald Service Bus administration listening on https://127\.0\.0\.1:(\d+)", text, re.M)
            if http and amqp and ((amqps and admin) or not self.tls):
                self.http_port, self.amqp_port = int(http.group(1)), int(amqp.group(1))
                self.amqps_port = int(amqps.group(1)) if amqps else 0
                self.admin_port = int(admin.group(1)) if admin else 0
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"herald serve exited with {self.process.returncode}:\n{text[-4000:]}")
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"herald serve did not listen within {timeout} s:\n{self.log()[-4000:]}")
        for key in self.keys.values():
            key.connection_string = self._with_port(key.connection_string)

    def _tls_arguments(self) -> list[str]:
        """A self-signed certificate for localhost (openssl) and the options that serve it."""
        if not self.tls:
            return []
        key = self.directory / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(self.certificate)],
            check=True, capture_output=True,
        )
        return ["--amqps-port", "0", "--servicebus-admin-port", "0", "--tls-certificate", str(self.certificate), "--tls-key", str(key)]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            # The server was started in its own process group: end exactly that group.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None:
            self._record_pid(process.pid, remove=True)
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)

    @staticmethod
    def _record_pid(pid: int, remove: bool = False) -> None:
        """With $HERALD_SERVICEBUS_PIDS (a folder), leaves one file per running server there, so that
        the runner's trap can end a server whose test process died before it could."""
        folder = os.environ.get("HERALD_SERVICEBUS_PIDS")
        if not folder:
            return
        path = Path(folder) / str(pid)
        if remove:
            path.unlink(missing_ok=True)
        else:
            path.write_text(str(pid))

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- the CLI --------------------------------------------------------------------------------

    def cli(self, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.binary), *arguments], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"herald {' '.join(arguments)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def create_key(self, name: str, rights: str, entity: str | None = None) -> Key:
        """`herald keys create`; a running server picks the key up within a second."""
        arguments = ["keys", "create", "--name", name, "--rights", rights, "--data", str(self.data)]
        if entity:
            arguments += ["--entity", entity]
        if self.amqp_port:
            arguments += ["--amqp-port", str(self.amqp_port)]
        result = self.cli(*arguments)
        bearer = result.stdout.strip().splitlines()[-1]
        connection_string = next(line for line in result.stderr.splitlines() if line.startswith("Endpoint=sb://"))
        fields = dict(part.split("=", 1) for part in connection_string.split(";") if part)
        key = Key(name, bearer, self._with_port(connection_string) if self.amqp_port else connection_string, fields["SharedAccessKeyName"], fields["SharedAccessKey"])
        self.keys[name] = key
        return key

    def admin_connection_string(self, key: str = "admin") -> str:
        """The connection string of `key` for `ServiceBusAdministrationClient`: the administration
        API's HTTPS port in place of the AMQP one, without UseDevelopmentEmulator (the client always
        speaks HTTPS)."""
        fields = self.keys[key]
        return f"Endpoint=sb://localhost:{self.admin_port};SharedAccessKeyName={fields.key_name};SharedAccessKey={fields.shared_access_key}"

    def _with_port(self, connection_string: str) -> str:
        return re.sub(r"^Endpoint=sb://[^;/]+", f"Endpoint=sb://localhost:{self.amqp_port}", connection_string)

    @property
    def connection_string(self) -> str:
        return self.keys["admin"].connection_string

    # --- the HTTP API ---------------------------------------------------------------------------

    def http(self, method: str, path: str, body: Any = None, key: str | None = None, timeout: float = 30) -> tuple[int, Any]:
        """One request to the HTTP API with the admin key (or `key`); returns (status, JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {key or self.keys['admin'].bearer}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
                return response.status, (json.loads(payload) if payload else None)
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload)
            except ValueError:
                return error.code, payload.decode(errors="replace")

    def post(self, path: str, body: Any, expect: Iterable[int] = (200, 204)) -> Any:
        status, answer = self.http("POST", path, body)
        if status not in tuple(expect):
            raise AssertionError(f"POST {path} {body!r} answered {status}: {answer!r}")
        return answer

    def counts(self, entity: dict) -> dict:
        """{active, locked, scheduled, deferred, deadLettered} of a queue or subscription."""
        return self.post("/v1/messages/counts", {"entity": entity}, expect=(200,))


def entity_of(name: str) -> dict:
    """The HTTP API's entity object for `queue` or `topic/Subscriptions/sub`."""
    parts = name.split("/")
    if len(parts) == 3:
        return {"topic": parts[0], "subscription": parts[2]}
    return {"queue": name}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
