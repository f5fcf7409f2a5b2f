"""What users of an HTTP client expect from the environment: proxies and a corporate CA.

The default stack (httpx's) goes through ``HTTP_PROXY``/``HTTPS_PROXY`` unless ``NO_PROXY`` names the
host; the lean one (``http_transport: wire``) goes through no proxy and says so rather than bypass one.
Both trust the CA bundle named by ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from pathlib import Path

import pytest
from hostile_server import HostileServer, always, answer
from reliability_support import hostile_argv

PAGE = answer(200, {"data": [{"id": 1, "name": "via the proxy"}]})
API = "http://api.example.invalid"  # resolves nowhere: only a proxy can answer for it


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("SSL_CERT")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**clean, **env})


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    return [m["record"] for m in map(json.loads, proc.stdout.splitlines()) if m["type"] == "RECORD"]


def test_the_default_stack_goes_through_the_http_proxy_of_the_environment(tmp_path):
    with HostileServer(always(PAGE)) as proxy:
        proc = run(hostile_argv("tap", tmp_path, API), HTTP_PROXY=proxy.url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert records(proc) == [{"id": 1, "name": "via the proxy"}]
    (seen,) = proxy.requests
    assert seen.target == f"{API}/v1/items"  # the absolute form a proxy is sent


def test_no_proxy_keeps_a_host_off_the_proxy(tmp_path):
    with HostileServer(always(PAGE)) as proxy:
        proc = run(hostile_argv("tap", tmp_path, API), HTTP_PROXY=proxy.url, NO_PROXY="api.example.invalid")
    assert proc.returncode == 1
    assert proxy.requests == []


def test_the_lean_stack_refuses_to_bypass_a_proxy(tmp_path):
    with HostileServer(always(PAGE)) as proxy:
        proc = run(hostile_argv("tap", tmp_path, API, "wire"), HTTP_PROXY=proxy.url)
    assert proc.returncode == 1
    assert "http_transport: wire goes through no proxy" in proc.stderr and "Traceback" not in proc.stderr
    assert proxy.requests == []


@pytest.fixture(scope="module")
def corporate_ca(tmp_path_factory) -> tuple[Path, ssl.SSLContext]:
    """A private CA (its PEM file) and a server context whose certificate for 127.0.0.1 it signed."""
    root = tmp_path_factory.mktemp("tls")
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    key = ["-newkey", "rsa:2048", "-nodes"]
    openssl("req", "-x509", *key, "-days", "2", "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", *key, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    signed_by_ca = [
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]
    openssl("x509", "-req", "-in", "server.csr", *signed_by_ca, "-out", "server.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(root / "server.pem", root / "server.key")
    return root / "ca.pem", context


@pytest.mark.parametrize("transport", ["httpx", "wire"])
def test_both_stacks_trust_the_ca_named_by_ssl_cert_file_and_no_other(tmp_path, transport, corporate_ca):
    ca, context = corporate_ca
    (tmp_path / "again").mkdir()
    with HostileServer(always(PAGE), tls=context) as server:
        trusted = run(hostile_argv("tap", tmp_path, server.url, transport), SSL_CERT_FILE=str(ca))
        untrusted = run(hostile_argv("tap", tmp_path / "again", server.url, transport))
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert records(trusted) == [{"id": 1, "name": "via the proxy"}]
    assert untrusted.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr or "certificate verify failed" in untrusted.stderr
