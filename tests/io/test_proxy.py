"""HAProxy's runtime API, for real: the HAProxy binary runs the config file generated repos ship."""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gitops_ml.io.proxy import HAProxy, ProxyError

from tests.conftest import free_port

BACKEND = "model"


class Upstream:
    """A tiny HTTP server standing in for a model container: answers its name; /slow takes a second."""

    def __init__(self, name: str):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                if self.path == "/slow":
                    outer.in_flight.set()
                    time.sleep(1.0)
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.in_flight = threading.Event()
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstreams():
    started = [Upstream("blue"), Upstream("green")]
    yield started
    for upstream in started:
        upstream.close()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_both_slots_start_in_maintenance(haproxy):
    proxy = HAProxy(haproxy().admin)
    slots = {slot.name: slot for slot in proxy.slots(BACKEND)}
    assert set(slots) == {"blue", "green"}
    assert all(slot.admin == "maint" and slot.status == "MAINT" and slot.address == "127.0.0.1:1"
               for slot in slots.values())


def test_point_enable_drain_and_maint_move_traffic_between_slots(haproxy, upstreams):
    running = haproxy()
    proxy = HAProxy(running.admin)
    blue, green = upstreams
    proxy.point(BACKEND, "blue", "127.0.0.1", blue.port)
    proxy.set_state(BACKEND, "blue", "ready")
    assert proxy.slot(BACKEND, "blue").address == f"127.0.0.1:{blue.port}"
    assert proxy.slot(BACKEND, "blue").serving
    assert fetch(running.url) == "blue"

    # A request in flight on blue is counted until it finishes, even while blue drains.
    slow = threading.Thread(target=fetch, args=(f"{running.url}/slow",))
    slow.start()
    assert blue.in_flight.wait(5)
    proxy.point(BACKEND, "green", "127.0.0.1", green.port)
    proxy.set_state(BACKEND, "green", "ready")
    proxy.set_state(BACKEND, "blue", "drain")
    assert proxy.slot(BACKEND, "blue").admin == "drain"
    assert proxy.slot(BACKEND, "blue").sessions == 1
    assert {fetch(running.url) for _ in range(6)} == {"green"}  # new requests skip the draining slot
    slow.join()
    wait_for(lambda: proxy.slot(BACKEND, "blue").sessions == 0)
    proxy.set_state(BACKEND, "blue", "maint")
    assert proxy.slot(BACKEND, "blue").admin == "maint"
    assert fetch(running.url) == "green"


def test_the_api_works_over_a_unix_socket(haproxy):
    running = haproxy(admin="unix")
    assert running.admin.startswith("unix:///")
    assert len(HAProxy(running.admin).slots(BACKEND)) == 2


def test_an_unknown_backend_is_named_with_the_ones_that_exist(haproxy):
    with pytest.raises(ProxyError, match=r"has no backend 'web' \(it has \['model'\]\)"):
        HAProxy(haproxy().admin).slots("web")


def test_a_refused_command_is_reported_with_haproxys_answer(haproxy):
    proxy = HAProxy(haproxy().admin)
    with pytest.raises(ProxyError, match=r"refused `set server model/purple state ready`: No such server"):
        proxy.set_state(BACKEND, "purple", "ready")
    with pytest.raises(ProxyError, match=r"refused `set server model/blue addr not-an-ip port 8000`"):
        proxy.point(BACKEND, "blue", "not-an-ip", 8000)


def test_an_unreachable_api_names_the_address():
    admin = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ProxyError, match=f"runtime API at {admin} did not answer `show stat`"):
        HAProxy(admin).slots(BACKEND)


def test_a_malformed_admin_address_is_refused():
    with pytest.raises(ProxyError, match="expected tcp://HOST:PORT or unix:///PATH"):
        HAProxy("127.0.0.1:9999")
