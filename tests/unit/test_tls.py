"""The certificates trusted for HTTPS (benchwatch/tls.py): SSL_CERT_FILE / SSL_CERT_DIR as httpx reads them, for
the runner's small requests and the stream worker's streams alike."""
import socket
from multiprocessing.connection import Connection

import certifi

from benchwatch.backends import http as transport
from benchwatch.stream_worker import StreamWorker, new_event_loop
from benchwatch.tls import client_context


def _one_cert_file(tmp_path):
    bundle = open(certifi.where(), encoding="ascii").read()
    end = "-----END CERTIFICATE-----"
    path = tmp_path / "one.pem"
    path.write_text(bundle[bundle.index("-----BEGIN CERTIFICATE-----"):bundle.index(end) + len(end)] + "\n")
    return path


def test_ssl_cert_file_is_the_only_trust_when_set(tmp_path, monkeypatch):
    assert len(client_context().get_ca_certs()) > 50  # certifi's bundle by default
    monkeypatch.setenv("SSL_CERT_FILE", str(_one_cert_file(tmp_path)))
    assert len(client_context().get_ca_certs()) == 1


def test_the_stream_worker_trusts_what_the_runner_trusts(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(_one_cert_file(tmp_path)))
    ours, theirs = socket.socketpair()
    loop = new_event_loop()

    async def make() -> StreamWorker:
        return StreamWorker(Connection(ours.detach()), loop)

    async def close(worker: StreamWorker) -> None:
        await worker.session.close()
        await worker.fresh.close()

    try:
        worker = loop.run_until_complete(make())
        for session in (worker.session, worker.fresh):
            assert len(session.connector._ssl.get_ca_certs()) == 1  # aiohttp keeps the context it was given
        loop.run_until_complete(close(worker))
    finally:
        loop.close()
        theirs.close()
    transport._tls_context.cache_clear()  # the runner's side: the same function, once per process
    try:
        assert len(transport._tls_context().get_ca_certs()) == 1
    finally:
        transport._tls_context.cache_clear()
