"""A small, independent MQTT client speaking raw bytes over a socket.

It builds every packet by hand from the MQTT 3.1, 3.1.1 and 5.0 specifications and parses what the
server sends, so tests can check exact bytes and reason codes without trusting the codec under test.
"""

import socket
import struct
import time

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

PACKET_NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
    PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

# MQTT 5 property identifiers.
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)

PROPERTY_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE,
    MESSAGE_EXPIRY_INTERVAL: _U32,
    CONTENT_TYPE: _UTF8,
    RESPONSE_TOPIC: _UTF8,
    CORRELATION_DATA: _BINARY,
    SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _U32,
    ASSIGNED_CLIENT_IDENTIFIER: _UTF8,
    SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _UTF8,
    AUTHENTICATION_DATA: _BINARY,
    REQUEST_PROBLEM_INFORMATION: _BYTE,
    WILL_DELAY_INTERVAL: _U32,
    REQUEST_RESPONSE_INFORMATION: _BYTE,
    RESPONSE_INFORMATION: _UTF8,
    SERVER_REFERENCE: _UTF8,
    REASON_STRING: _UTF8,
    RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16,
    TOPIC_ALIAS: _U16,
    MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR,
    MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE,
    SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}

# Reason codes used by the tests (MQTT 5, section 2.4).
RC_SUCCESS = 0x00
RC_GRANTED_QOS1 = 0x01
RC_GRANTED_QOS2 = 0x02
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED_ERROR = 0x80
RC_MALFORMED_PACKET = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_IMPLEMENTATION_SPECIFIC = 0x83
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_NOT_AUTHORIZED = 0x87
RC_SERVER_BUSY = 0x89
RC_BAD_AUTHENTICATION_METHOD = 0x8C
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
RC_PAYLOAD_FORMAT_INVALID = 0x99
RC_QOS_NOT_SUPPORTED = 0x9B
RC_CONNECTION_RATE_EXCEEDED = 0x9F
RC_SHARED_SUB_NOT_SUPPORTED = 0x9E
RC_SUB_IDS_NOT_SUPPORTED = 0xA1
RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2

# MQTT 3.1.1 CONNACK return codes.
CONNACK_ACCEPTED = 0x00
CONNACK_BAD_PROTOCOL = 0x01
CONNACK_ID_REJECTED = 0x02
CONNACK_SERVER_UNAVAILABLE = 0x03

SUBACK_FAILURE_V311 = 0x80

SENTINEL = b"-- sentinel --"


class ProtocolError(AssertionError):
    """The server did something the test did not expect."""


# --- encoding -------------------------------------------------------------------------------------

def varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("variable byte integer out of range")
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def utf8(s):
    data = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return u16(len(data)) + data


def binary(b):
    b = b.encode() if isinstance(b, str) else bytes(b)
    return u16(len(b)) + b


def encode_property(pid, value):
    kind = PROPERTY_TYPES[pid]
    head = varint(pid)
    if kind == _BYTE:
        return head + bytes([value])
    if kind == _U16:
        return head + u16(value)
    if kind == _U32:
        return head + u32(value)
    if kind == _VARINT:
        return head + varint(value)
    if kind == _UTF8:
        return head + utf8(value)
    if kind == _BINARY:
        return head + binary(value)
    name, val = value
    return head + utf8(name) + utf8(val)


def encode_properties(props):
    """props: None, a dict {id: value}, or a list of (id, value) pairs (duplicates kept)."""
    if props is None:
        return b"\x00"
    items = props.items() if isinstance(props, dict) else props
    body = b"".join(encode_property(pid, val) for pid, val in items)
    return varint(len(body)) + body


def fixed(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def _payload_bytes(payload):
    if payload is None:
        return b""
    return payload.encode() if isinstance(payload, str) else bytes(payload)


def connect_packet(version=4, client_id="", clean=True, keepalive=60, will=None, props=None,
                   username=None, password=None, proto_name=None, reserved_flag=False):
    """will: dict with topic, payload, qos (0), retain (False), props (v5, optional)."""
    if proto_name is None:
        proto_name = "MQIsdp" if version == 3 else "MQTT"
    flags = 0
    if clean:
        flags |= 0x02
    if reserved_flag:
        flags |= 0x01
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    body = utf8(proto_name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        body += encode_properties(props)
    body += utf8(client_id)
    if will is not None:
        if version == 5:
            body += encode_properties(will.get("props"))
        body += utf8(will["topic"]) + binary(_payload_bytes(will.get("payload", b"")))
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password)
    return fixed(CONNECT, 0, body)


def publish_packet(version, topic, payload=b"", qos=0, retain=False, dup=False, mid=None,
                   props=None):
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = utf8(topic)
    if qos > 0:
        body += u16(1 if mid is None else mid)
    if version == 5:
        body += encode_properties(props)
    body += _payload_bytes(payload)
    return fixed(PUBLISH, flags, body)


def ack_packet(version, ptype, mid, reason=None, props=None):
    """PUBACK, PUBREC, PUBREL, PUBCOMP."""
    flags = 0x02 if ptype == PUBREL else 0
    body = u16(mid)
    if version == 5 and (reason is not None or props is not None):
        body += bytes([reason or 0])
        if props is not None:
            body += encode_properties(props)
    return fixed(ptype, flags, body)


def subscribe_packet(version, mid, topics, props=None):
    """topics: list of (filter, options) where options is the whole options byte (QoS in bits 0-1,
    no local 0x04, retain as published 0x08, retain handling << 4)."""
    body = u16(mid)
    if version == 5:
        body += encode_properties(props)
    for filt, opts in topics:
        body += utf8(filt) + bytes([opts])
    return fixed(SUBSCRIBE, 0x02, body)


def unsubscribe_packet(version, mid, filters, props=None):
    body = u16(mid)
    if version == 5:
        body += encode_properties(props)
    for filt in filters:
        body += utf8(filt)
    return fixed(UNSUBSCRIBE, 0x02, body)


def pingreq_packet():
    return b"\xc0\x00"


def disconnect_packet(version=4, reason=None, props=None):
    if version < 5 or (reason is None and props is None):
        return b"\xe0\x00"
    body = bytes([reason or 0])
    if props is not None:
        body += encode_properties(props)
    return fixed(DISCONNECT, 0, body)


def auth_packet(reason=0x18, props=None):
    return fixed(AUTH, 0, bytes([reason]) + encode_properties(props))


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return (qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0)
            | (retain_handling << 4))


# --- decoding -------------------------------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if self.left() < n:
            raise ProtocolError("packet shorter than its fields")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        mult, value = 1, 0
        for _ in range(4):
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128
        raise ProtocolError("variable byte integer longer than 4 bytes")

    def utf8(self):
        return self.take(self.u16()).decode("utf-8")

    def binary(self):
        return self.take(self.u16())

    def properties(self):
        length = self.varint()
        sub = Reader(self.take(length))
        out = []
        while sub.left():
            pid = sub.varint()
            kind = PROPERTY_TYPES.get(pid)
            if kind is None:
                raise ProtocolError("unknown property 0x%02x" % pid)
            if kind == _BYTE:
                val = sub.byte()
            elif kind == _U16:
                val = sub.u16()
            elif kind == _U32:
                val = sub.u32()
            elif kind == _VARINT:
                val = sub.varint()
            elif kind == _UTF8:
                val = sub.utf8()
            elif kind == _BINARY:
                val = sub.binary()
            else:
                val = (sub.utf8(), sub.utf8())
            out.append((pid, val))
        return Properties(out)


class Properties(list):
    """The properties of a packet, in order, duplicates kept."""

    def get(self, pid, default=None):
        for key, val in self:
            if key == pid:
                return val
        return default

    def all(self, pid):
        return [val for key, val in self if key == pid]

    def __contains__(self, pid):
        return any(key == pid for key, _ in self)


class Packet:
    def __init__(self, ptype, flags, body, raw):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.raw = raw
        self.props = Properties()
        self.reason = None
        self.mid = None
        self.topic = None
        self.payload = None
        self.qos = 0
        self.retain = False
        self.dup = False
        self.session_present = None
        self.return_codes = []

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, "type%d" % self.type)

    def __repr__(self):
        parts = [self.name]
        for field in ("reason", "mid", "topic", "payload", "qos", "session_present"):
            val = getattr(self, field)
            if val not in (None, 0, False):
                parts.append("%s=%r" % (field, val))
        if self.return_codes:
            parts.append("codes=%r" % (self.return_codes,))
        if self.props:
            parts.append("props=%r" % (list(self.props),))
        return "<%s>" % " ".join(parts)


def parse_packet(version, first, body):
    raw = bytes([first]) + varint(len(body)) + body
    ptype, flags = first >> 4, first & 0x0F
    pkt = Packet(ptype, flags, body, raw)
    r = Reader(body)
    if ptype == CONNACK:
        pkt.session_present = bool(r.byte() & 0x01)
        pkt.reason = r.byte()
        if version == 5 and r.left():
            pkt.props = r.properties()
    elif ptype == PUBLISH:
        pkt.qos = (flags >> 1) & 0x03
        pkt.retain = bool(flags & 0x01)
        pkt.dup = bool(flags & 0x08)
        pkt.topic = r.utf8()
        if pkt.qos:
            pkt.mid = r.u16()
        if version == 5:
            pkt.props = r.properties()
        pkt.payload = r.take(r.left())
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        pkt.mid = r.u16()
        pkt.reason = 0
        if version == 5 and r.left():
            pkt.reason = r.byte()
            if r.left():
                pkt.props = r.properties()
    elif ptype in (SUBACK, UNSUBACK):
        pkt.mid = r.u16()
        if version == 5:
            pkt.props = r.properties()
        pkt.return_codes = list(r.take(r.left()))
    elif ptype in (DISCONNECT, AUTH):
        pkt.reason = 0
        if r.left():
            pkt.reason = r.byte()
            if r.left():
                pkt.props = r.properties()
    return pkt


# --- the client -----------------------------------------------------------------------------------

class Client:
    """One raw MQTT connection. Every wait has a timeout; none asserts how long something took."""

    def __init__(self, host, port, version=4, timeout=5.0):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pending = []
        self.connack = None
        self.closed = False
        self._next_mid = 0

    # sending
    def send_raw(self, data):
        self.sock.sendall(data)

    def next_mid(self):
        self._next_mid = self._next_mid % 65535 + 1
        return self._next_mid

    def connect(self, client_id="", clean=True, keepalive=60, will=None, props=None,
                username=None, password=None, proto_name=None, expect=True):
        self.send_raw(connect_packet(self.version, client_id, clean, keepalive, will, props,
                                     username, password, proto_name))
        if not expect:
            return None
        self.connack = self.expect_packet(CONNACK)
        return self.connack

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, mid=None, props=None):
        if qos and mid is None:
            mid = self.next_mid()
        self.send_raw(publish_packet(self.version, topic, payload, qos, retain, dup, mid, props))
        return mid

    def await_packet(self, ptype, mid=None, timeout=None):
        """Wait for a packet of this type (and packet id), holding any PUBLISH that comes first
        for later reads: a server may forward a message before acknowledging its publisher."""
        held = []
        try:
            while True:
                pkt = self.expect_packet_any(timeout)
                if pkt.type == ptype and (mid is None or pkt.mid == mid):
                    return pkt
                if pkt.type != PUBLISH:
                    raise ProtocolError("expected %s, got %r" % (PACKET_NAMES[ptype], pkt))
                held.append(pkt)
        finally:
            self.pending = held + self.pending

    def expect_packet_any(self, timeout=None):
        try:
            return self.read_packet(timeout)
        except TimeoutError:
            raise ProtocolError("expected a packet, got nothing") from None
        except ConnectionError:
            raise ProtocolError("expected a packet, the server closed the connection") from None

    def publish_acked(self, topic, payload=b"", qos=1, retain=False, props=None):
        """Publish with the full acknowledgement flow; returns the final ack packet."""
        mid = self.publish(topic, payload, qos, retain, props=props)
        if qos == 0:
            return None
        if qos == 1:
            return self.await_packet(PUBACK, mid)
        rec = self.await_packet(PUBREC, mid)
        if rec.reason is not None and rec.reason >= 0x80:
            return rec
        self.send_raw(ack_packet(self.version, PUBREL, mid))
        return self.await_packet(PUBCOMP, mid)

    def publish_many(self, topic, payloads, qos=1, window=None):
        """Publish a run of messages, pipelined, keeping at most `window` unacknowledged (for v5,
        by default, the Receive Maximum the server announced)."""
        if window is None:
            window = 10
            connack = getattr(self, "connack", None)
            if self.version == 5 and connack is not None:
                window = min(connack.props.get(RECEIVE_MAXIMUM, 65535), 50)
        if qos == 0:
            for p in payloads:
                self.publish(topic, p)
            return
        open_ids = set()
        todo = list(payloads)
        held = []
        try:
            self._publish_window(topic, todo, qos, window, open_ids, held)
        finally:
            self.pending = held + self.pending

    def _publish_window(self, topic, todo, qos, window, open_ids, held):
        while todo or open_ids:
            while todo and len(open_ids) < window:
                open_ids.add(self.publish(topic, todo.pop(0), qos))
            pkt = self.expect_packet_any()
            if pkt.type == PUBLISH:
                held.append(pkt)
                continue
            if qos == 1 and pkt.type == PUBACK:
                open_ids.discard(pkt.mid)
            elif qos == 2 and pkt.type == PUBREC:
                self.send_raw(ack_packet(self.version, PUBREL, pkt.mid))
            elif qos == 2 and pkt.type == PUBCOMP:
                open_ids.discard(pkt.mid)
            else:
                raise ProtocolError("unexpected %r while publishing" % (pkt,))

    def subscribe(self, topic, qos=0, props=None, options=None, mid=None):
        """Subscribe to one filter (or a list of (filter, options)) and return the SUBACK."""
        topics = topic if isinstance(topic, list) else [(topic, qos if options is None else options)]
        mid = mid or self.next_mid()
        self.send_raw(subscribe_packet(self.version, mid, topics, props))
        return self.await_packet(SUBACK, mid)

    def unsubscribe(self, filters, props=None):
        filters = filters if isinstance(filters, list) else [filters]
        mid = self.next_mid()
        self.send_raw(unsubscribe_packet(self.version, mid, filters, props))
        return self.await_packet(UNSUBACK, mid)

    def ack(self, pkt):
        """Acknowledge a received PUBLISH at its QoS (QoS 2: PUBREC, PUBREL, PUBCOMP)."""
        if pkt.qos == 1:
            self.send_raw(ack_packet(self.version, PUBACK, pkt.mid))
        elif pkt.qos == 2:
            self.send_raw(ack_packet(self.version, PUBREC, pkt.mid))
            held = []
            while True:
                rel = self.read_packet()
                if rel.type == PUBREL and rel.mid == pkt.mid:
                    break
                held.append(rel)
            self.pending = held + self.pending
            assert rel.flags == 0x02, rel
            self.send_raw(ack_packet(self.version, PUBCOMP, pkt.mid))

    def ping(self):
        self.send_raw(pingreq_packet())
        self.expect_packet(PINGRESP)

    def disconnect(self, reason=None, props=None):
        try:
            self.send_raw(disconnect_packet(self.version, reason, props))
        except OSError:
            pass
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def drop(self):
        """Close the TCP connection abruptly with a reset, without DISCONNECT."""
        if not self.closed:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.close()

    # receiving
    def _fill(self, deadline):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out waiting for data")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("timed out waiting for data") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
            return

    def _whole_packet(self):
        """Return (first byte, body) of the first whole packet in the buffer, or None."""
        if len(self.buf) < 2:
            return None
        mult, length, pos = 1, 0, 1
        while True:
            if pos >= len(self.buf):
                return None
            b = self.buf[pos]
            length += (b & 0x7F) * mult
            pos += 1
            if not b & 0x80:
                break
            mult *= 128
            if pos > 4:
                raise ProtocolError("server sent a malformed remaining length")
        if len(self.buf) < pos + length:
            return None
        first, body = self.buf[0], self.buf[pos:pos + length]
        self.buf = self.buf[pos + length:]
        return first, body

    def read_packet(self, timeout=None):
        """The next packet. Raises TimeoutError, or ConnectionError when the server closed."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            whole = self._whole_packet()
            if whole is not None:
                return parse_packet(self.version, *whole)
            self._fill(deadline)

    def expect_packet(self, ptype, timeout=None):
        try:
            pkt = self.read_packet(timeout)
        except TimeoutError:
            raise ProtocolError("expected %s, got nothing" % PACKET_NAMES[ptype]) from None
        except ConnectionError:
            raise ProtocolError("expected %s, the server closed the connection"
                                % PACKET_NAMES[ptype]) from None
        if pkt.type != ptype:
            raise ProtocolError("expected %s, got %r" % (PACKET_NAMES[ptype], pkt))
        return pkt

    def expect_publish(self, topic=None, payload=None, qos=None, timeout=None):
        pkt = self.expect_packet(PUBLISH, timeout)
        if topic is not None:
            assert pkt.topic == topic, pkt
        if payload is not None:
            assert pkt.payload == _payload_bytes(payload), pkt
        if qos is not None:
            assert pkt.qos == qos, pkt
        return pkt

    def expect_closed(self, timeout=None):
        """Wait until the server closes the connection; return the packets sent before that."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got, self.pending = self.pending, []
        while True:
            whole = self._whole_packet()
            if whole is not None:
                got.append(parse_packet(self.version, *whole))
                continue
            try:
                self._fill(deadline)
            except TimeoutError:
                raise ProtocolError("the server did not close the connection; got %r"
                                    % (got,)) from None
            except ConnectionError:
                self.close()
                return got
            except OSError:
                self.close()
                return got

    def expect_disconnect(self, reason, timeout=None):
        """v5: the server sends DISCONNECT with this reason code, then closes.
        v3.1.1: the server closes without sending anything."""
        got = self.expect_closed(timeout)
        if self.version < 5:
            assert got == [] or all(p.type == PUBLISH for p in got), got
            return None
        disc = [p for p in got if p.type == DISCONNECT]
        assert disc, "expected DISCONNECT 0x%02x before close, got %r" % (reason, got)
        assert disc[-1].reason == reason, \
            "expected DISCONNECT 0x%02x, got %r" % (reason, disc[-1])
        return disc[-1]

    def expect_nothing(self, timeout=0.5):
        """No packet arrives within the window (used only where no sentinel can order things)."""
        try:
            pkt = self.read_packet(timeout)
        except TimeoutError:
            return
        raise ProtocolError("expected nothing, got %r" % (pkt,))

    def collect_publishes(self, count, timeout=None, ack=True):
        """Receive count PUBLISH packets (acknowledging them unless ack=False)."""
        out = []
        for _ in range(count):
            pkt = self.expect_packet(PUBLISH, timeout)
            if ack:
                self.ack(pkt)
            out.append(pkt)
        return out

    def collect_until(self, topic, payload=SENTINEL, timeout=None):
        """Receive (and acknowledge) PUBLISH packets until the sentinel message arrives; return
        those before it. Messages that should not arrive are checked this way: the sentinel is sent
        after them, on an ordered path, so had they been sent they would have come first."""
        out = []
        while True:
            pkt = self.expect_packet(PUBLISH, timeout)
            self.ack(pkt)
            if pkt.topic == topic and pkt.payload == _payload_bytes(payload):
                return out
            out.append(pkt)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
