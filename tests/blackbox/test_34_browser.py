"""MQTT over WebSocket from a real browser: Debian's Chromium (`/usr/bin/chromium`, headless, a
fresh profile per test) driven through playwright-core (`web/browser.mjs`, pinned in
`sdk/package-lock.json`), with MQTT.js's browser bundle running in a page the test serves over
HTTP (`web/index.html`, `web/mqtt_session.js` and `sdk/node_modules/mqtt/dist/mqtt.min.js`).
The page talks to iothub's ws and wss listeners while plain TCP clients (raw, paho,
mosquitto_pub) talk to the same broker; a bare WebSocket in the page checks what the browser
itself negotiates and sees (subprotocol, close codes). The page's origin
(http://127.0.0.1:PAGEPORT) is what the browser sends as Origin, refused or accepted by
`--ws-origins`.

For wss the browser is told to trust the server's own key only:
`--ignore-certificate-errors-spki-list` with the SHA-256 of the served certificate's public key
(Chromium honours it with a user data directory, which each test has), so any other
certificate still fails; a browser without the flag is refused the server's certificate
(iothub's server CA is not in Chromium's store). iothub only."""

import base64
import hashlib
import http.server
import json
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

import clients
import mqttraw as m
from brokers import assert_alive
from test_32_websocket import (  # noqa: F401  (iothub_only is an autouse fixture)
    SDK_DIR, WAIT, WEB_DIR, JsDriver, iothub_only, unique, wait_for_log, ws_url)

CHROMIUM = Path("/usr/bin/chromium")
MQTT_BUNDLE = SDK_DIR / "node_modules" / "mqtt" / "dist" / "mqtt.min.js"


# --- the page -------------------------------------------------------------------------------------

class PageServer:
    """The test page over HTTP on a free port of 127.0.0.1 (a thread of the test process)."""

    FILES = {
        "/index.html": (WEB_DIR / "index.html", "text/html; charset=utf-8"),
        "/mqtt_session.js": (WEB_DIR / "mqtt_session.js", "text/javascript; charset=utf-8"),
        "/mqtt.min.js": (MQTT_BUNDLE, "text/javascript; charset=utf-8"),
    }

    def __init__(self):
        files = self.FILES

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                entry = files.get(self.path.split("?")[0])
                if entry is None:
                    self.send_error(404)
                    return
                body = entry[0].read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", entry[1])
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.url = self.origin + "/index.html"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def page_server():
    if not MQTT_BUNDLE.exists():
        pytest.fail("MQTT.js's browser bundle is missing (%s): run `npm ci` in %s"
                    % (MQTT_BUNDLE, SDK_DIR))
    srv = PageServer()
    yield srv
    srv.close()


@pytest.fixture
def browser(page_server, tmp_path):
    """open(extra_flags) starts Chromium on the test page; each is closed at the end."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at %s: run scripts/deps --test" % CHROMIUM)
    if not (SDK_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is not installed: run `npm ci` in %s" % SDK_DIR)
    started = []

    def open_browser(flags=()):
        profile = tmp_path / ("chromium-profile-%d" % len(started))
        profile.mkdir()
        config = {"url": page_server.url, "userDataDir": str(profile),
                  "executablePath": str(CHROMIUM), "args": list(flags)}
        d = JsDriver(["node", str(WEB_DIR / "browser.mjs"), json.dumps(config)], WEB_DIR,
                     wait_ready=True)
        started.append(d)
        assert d.info["origin"] == page_server.origin, d.info
        return d

    yield open_browser
    for d in started:
        d.close()


def page_options(version, client_id=None, **kw):
    opts = {"protocolVersion": version, "clientId": client_id or unique("page")}
    if version == 3:
        opts["protocolId"] = "MQIsdp"
    opts.update(kw)
    return opts


def spki_flag(broker):
    """--ignore-certificate-errors-spki-list naming the public key of the certificate the wss
    listener serves (base64 of the SHA-256 of its DER SubjectPublicKeyInfo)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", broker.wss_port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
    pem = subprocess.run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"], input=der,
                         capture_output=True, check=True, timeout=30).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem,
                          capture_output=True, check=True, timeout=30).stdout
    digest = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return "--ignore-certificate-errors-spki-list=" + digest


def exchange_with_tcp(broker, page, url, version, tag):
    """The page's MQTT.js and TCP clients exchange messages both ways through the broker; the
    page also receives its own."""
    to_page, from_page = "c34/to-page/" + tag, "c34/from-page/" + tag
    tcp = broker.connected(4, unique("c34-tcp"))
    tcp.subscribe(from_page, 1)
    page.connect("page", url, **page_options(version))
    assert page.subscribe("page", to_page, 1) == [1]
    assert page.subscribe("page", "c34/loop/" + tag, 2) == [2]
    page.publish("page", from_page, "hello from the browser", qos=1)
    tcp.ack(tcp.expect_publish(from_page, b"hello from the browser"))
    clients.mosquitto_pub(broker, 4, to_page, "hello to the browser", qos=1)
    got = page.messages("page")
    assert [(x["topic"], x["payload"], x["qos"]) for x in got] == [
        (to_page, "hello to the browser", 1)], got
    for qos in (0, 1, 2):
        page.publish("page", "c34/loop/" + tag, "loop at qos %d" % qos, qos=qos)
    got = page.messages("page", 3)
    assert [(x["payload"], x["qos"]) for x in got] == [
        ("loop at qos %d" % q, q) for q in (0, 1, 2)], got
    page.end("page")
    tcp.disconnect()


# --- ws -------------------------------------------------------------------------------------------

@pytest.mark.versions([3, 4, 5])
def test_page_over_ws(broker, browser, version):
    page = browser()
    exchange_with_tcp(broker, page, ws_url(broker), version, "ws-%d" % version)


def test_bare_websocket_negotiation(broker, browser):
    """What the browser's own WebSocket gets: the subprotocol it asked for, none when it asked
    for none, a failure for one the server does not speak or another path."""
    page = browser()
    url = ws_url(broker)
    for protocols, expected in ((["mqtt"], "mqtt"), (["mqttv3.1"], "mqttv3.1"), ([], ""),
                                (["foo", "mqtt"], "mqtt")):
        r = page.call("ws_probe", url=url, protocols=protocols)
        assert r["opened"] and r["protocol"] == expected, (protocols, r)
        assert r["closeCode"] == 1000, r
    for target, protocols in ((url, ["foo"]), (url.replace("/mqtt", "/other"), ["mqtt"])):
        r = page.call("ws_probe", url=target, protocols=protocols)
        assert not r["opened"], (target, protocols, r)
    assert_alive(broker)


def test_browser_sees_the_close_codes(broker, browser):
    """The browser's view of the closing handshake: after CONNECT and DISCONNECT the server
    closes cleanly with 1000; a text message is answered with 1003."""
    page = browser()
    url = ws_url(broker)
    connect = m.connect_packet(4, unique("c34-bare")).hex()
    r = page.call("ws_probe", url=url, protocols=["mqtt"],
                  sendHex=[connect, m.disconnect_packet(4).hex()])
    assert r["opened"], r
    assert r["received"] == ["20020000"], r  # CONNACK, accepted
    assert r["closeCode"] == 1000 and r["wasClean"], r
    r = page.call("ws_probe", url=url, protocols=["mqtt"], sendHex=[connect[:10], connect[10:]],
                  sendText="not MQTT")
    assert r["opened"], r
    assert r["closeCode"] == 1003 and r["wasClean"], r
    assert_alive(broker)


def test_page_sees_a_takeover(broker, browser):
    page = browser()
    cid = unique("c34-taken")
    page.connect("page", ws_url(broker), **page_options(5, cid))
    tcp = broker.connected(5, cid)
    assert page.wait_closed("page")
    tcp.disconnect()


# --- wss ------------------------------------------------------------------------------------------

@pytest.mark.versions([4, 5])
def test_page_over_wss(broker, browser, version):
    """Trusting the server's key, the page works over wss as over ws."""
    page = browser([spki_flag(broker)])
    r = page.call("ws_probe", url=ws_url(broker, True), protocols=["mqtt"])
    assert r["opened"] and r["protocol"] == "mqtt", \
        "the browser could not open wss: %r\n%s" % (r, page.errors())
    exchange_with_tcp(broker, page, ws_url(broker, True), version, "wss-%d" % version)


def test_untrusted_server_certificate_is_refused_by_the_browser(broker, browser):
    """Without the flag the browser does not trust iothub's server CA: the wss connection
    fails in the TLS handshake, and the server goes on."""
    page = browser()
    r = page.call("ws_probe", url=ws_url(broker, True), protocols=["mqtt"])
    assert not r["opened"], r
    a = page.connect("page", ws_url(broker, True), expect=False, **page_options(4))
    assert not a["connected"], a
    assert "ERR_CERT_AUTHORITY_INVALID" in page.errors(), page.errors()
    assert_alive(broker)


# --- origins --------------------------------------------------------------------------------------

def test_page_origin_refused(broker_factory, browser, page_server):
    """--ws-origins without the page's origin: the browser's upgrade (Origin:
    http://127.0.0.1:PAGEPORT) gets 403 and MQTT.js cannot connect."""
    b = broker_factory(extra_args=["--ws-origins", "https://other.example"])
    page = browser()
    r = page.call("ws_probe", url=ws_url(b), protocols=["mqtt"])
    assert not r["opened"], r
    a = page.connect("page", ws_url(b), expect=False, **page_options(4))
    assert not a["connected"], a
    wait_for_log(b, "(403)")
    assert page_server.origin in b.log(), b.log()  # the log says whose origin it refused
    assert_alive(b)


def test_page_origin_accepted_when_listed(broker_factory, browser, page_server):
    b = broker_factory(extra_args=["--ws-origins",
                                   "https://other.example," + page_server.origin])
    page = browser()
    exchange_with_tcp(b, page, ws_url(b), 5, "origin")
