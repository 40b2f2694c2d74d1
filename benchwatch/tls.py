"""The certificates trusted for every HTTPS request benchwatch sends: the runner's small requests (httpx) and the
streams of its worker process (aiohttp). One choice for both, the one httpx makes by default: the file in
SSL_CERT_FILE, else the folder in SSL_CERT_DIR, else certifi's bundle (the system's store where certifi is
missing). Standard library and certifi only: the stream worker imports it and stays quick to start."""
from __future__ import annotations

import os
import ssl


def client_context() -> ssl.SSLContext:
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
