"""The harness floor: an ideal pipelining SMTP client, for bench_send.py (issue 14, item 7).

    python floor_client.py PORT COUNT MESSAGE

Sends COUNT copies of the file MESSAGE over one connection to 127.0.0.1:PORT, the way
nieuwsbrief pipelines (RFC 2920): each body goes out with the next transaction's MAIL, RCPT and
DATA in one write, and its replies come back in one read; the last body goes with QUIT. The bytes
are built once and nothing is recorded, so what it reaches is what the proxy or server in front
of it allows. bench_send.py starts one per connection at once; it imports only `socket` and
`sys` so that eight of them start on two cores in a few milliseconds. Exits 1 on any refusal.
"""

import socket
import sys

SENDER = "info@bureau-kennis.net"
RECIPIENT = "abonnee@gemeente.example"


def body_of(path: str) -> bytes:
    """The file as DATA: CRLF line ends, leading dots doubled, the end-of-data line."""
    with open(path, "rb") as handle:
        lines = handle.read().replace(b"\r\n", b"\n").split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    stuffed = ((b"." + x if x.startswith(b".") else x) + b"\r\n" for x in lines)
    return b"".join(stuffed) + b".\r\n"


def send(port: int, count: int, body: bytes) -> None:
    envelope = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")

        def expect(*codes: bytes) -> None:
            for code in codes:
                while (line := reader.readline())[3:4] == b"-" and line.startswith(code):
                    pass
                if not line.startswith(code):
                    raise SystemExit(f"floor client: expected {code!r}, got {line!r}")

        expect(b"220")
        sock.sendall(b"EHLO floor.example\r\n")
        expect(b"250")
        sock.sendall(envelope)
        expect(b"250", b"250", b"354")
        for left in range(count - 1, -1, -1):
            if left:
                sock.sendall(body + envelope)
                expect(b"250", b"250", b"250", b"354")
            else:
                sock.sendall(body + b"QUIT\r\n")
                expect(b"250", b"221")


if __name__ == "__main__":
    send(int(sys.argv[1]), int(sys.argv[2]), body_of(sys.argv[3]))
