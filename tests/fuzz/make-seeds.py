#!/usr/bin/python3
"""Writes the seed corpora in tests/fuzz/corpus/ (checked in; rerun this
after adding cases).  HTTP seeds are the malformed-request table of the
end-to-end tests plus valid requests; frame seeds are one of each frame."""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from test_edge_strict import CASES, build  # noqa: E402


def write(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


HOST = "app.localhost:8080"
valid = [
    "GET / HTTP/1.1\r\n{H}\r\n",
    "GET /a?b=c HTTP/1.1\r\n{H}Accept: */*\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\n{H}\r\n",
    "POST /u HTTP/1.1\r\n{H}Content-Length: 5\r\n\r\nhello",
    "POST /u HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    "GET /ws HTTP/1.1\r\n{H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "GET http://app.localhost:8080/x HTTP/1.1\r\n{H}\r\n",
    "OPTIONS * HTTP/1.0\r\n{H}Connection: keep-alive\r\n\r\n",
    "\r\nHEAD / HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 0\r\n\r\n",
]
for template in valid + [c[1] for c in CASES]:
    write("http_req", b"\x40\x80\xc0" + build(template, HOST))


def frame(kind, stream, payload):
    return bytes([kind]) + len(payload).to_bytes(3, "big") + struct.pack(">I", stream) + payload


frames = [
    frame(1, 0, b"\x01" + b"n" * 32 + b"example.com"),
    frame(2, 0, b"k" * 32 + b"s" * 64),
    frame(3, 1, b"name=myapp\ntarget=localhost:3000\n"),
    frame(4, 1, b"name=myapp\nurl=http://myapp.example.com/\n"),
    frame(5, 0, b"\x00\x08the signature does not verify"),
    frame(16, 7, b"\x00\x00\x00\x01203.0.113.7 51234 http"),
    frame(17, 7, b"GET / HTTP/1.1\r\n\r\n"),
    frame(18, 7, b""),
    frame(19, 7, b"\x00\x01localhost:3000"),
    frame(20, 7, b"\x00\x01\x00\x00"),
]
write("frame", b"\x07" + b"".join(frames))
for f in frames:
    write("frame", b"\xff" + f)

for text in ["domain = example.com\npublic-port = 443\nscheme = https\n",
             "# comment\n\nhead-timeout = 2000\nfields-max = 50\nregistry = /x.db\n",
             "listen = [::]:4443\nsocket = /run/expose/broker.sock\nping-interval=5\n",
             "bogus\n", "domain =\n", "streams-per-tunnel = 99999999999\n"]:
    write("conf", text.encode())

# The app's responses, the first byte saying whether the first answers HEAD.
responses = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\n"
    b"Content-Length: 2\r\n\r\nok",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nContent-Length: 9\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    b"\x81\x02hi",
    b"HTTP/1.0 200 OK\r\n\r\nto the close",
]
for i, resp in enumerate(responses):
    write("http_resp", bytes([i * 6]) + resp)
write("http_resp", b"\x01HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
      b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

for host in ["app.example.com", "APP.example.com.:80", "[::1]:8080", "a..example.com",
             "u@app.example.com", "x.y.example.com", "app.example.com:99999"]:
    write("host", host.encode())
