#!/usr/bin/env python3
"""A TCP proxy that caps every connection's download rate, for the benchmarks.

    python3 bench/conn_cap.py UPSTREAM_PORT LISTEN_PORT=BYTES_PER_SEC [LISTEN_PORT=BYTES_PER_SEC ...]

Listens on 127.0.0.1:LISTEN_PORT for each pair and forwards each connection to
127.0.0.1:UPSTREAM_PORT, pacing what flows back to the client at BYTES_PER_SEC per connection: the cap of a long-distance path, which holds across the requests a keep-alive
connection carries. nginx's `limit_rate` is per request instead and lets every request start with
a burst (an 8 MB/s cap served a 1 MiB range in 1.3 ms), which favours clients that make many short
requests over ones that stream. Prints "ready" once listening.
"""

import socket
import sys
import threading
import time

CHUNK = 256 << 10
# Credit a connection may build up while idle (between requests), in seconds of its rate.
BURST = 0.02


def pump(src, dst, rate):
    start = time.monotonic()
    sent = 0
    try:
        while True:
            data = src.recv(CHUNK if rate is None else max(1, min(CHUNK, int(rate * BURST))))
            if not data:
                break
            dst.sendall(data)
            if rate is None:
                continue
            sent += len(data)
            now = time.monotonic()
            # An idle connection must not save up more than BURST of credit.
            start = max(start, now - sent / rate - BURST)
            due = start + sent / rate
            if due > now:
                time.sleep(due - now)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listen_port, upstream_port, rate):
    server = socket.create_server(("127.0.0.1", listen_port), backlog=128)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(client, upstream, None), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, rate), daemon=True).start()


def main():
    upstream = int(sys.argv[1])
    for pair in sys.argv[2:]:
        port, rate = pair.split("=")
        threading.Thread(target=serve, args=(int(port), upstream, float(rate)), daemon=True).start()
    time.sleep(0.2)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
