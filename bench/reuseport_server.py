"""One uvicorn process on its own ``SO_REUSEPORT`` socket: start N of these on one port and
the kernel spreads new connections across them evenly, as a load balancer spreads them
across replicas.

``uvicorn --workers N`` instead shares one listening socket, and whichever worker wakes
first accepts: with wrk's handful of keep-alive connections, opened at once and kept for
the whole run, one of two workers took most of them (10.5 s of CPU against 4.3 s in a
20 s run), which measured the accept race rather than the service.

    python bench/reuseport_server.py --port 8000 app.main:create_app --factory
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("app")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-dir", default="")
    args = parser.parse_args()
    if args.app_dir:
        sys.path.insert(0, args.app_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    sock.set_inheritable(True)
    config = uvicorn.Config(
        args.app,
        factory=args.factory,
        access_log=False,
        log_level="warning",
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
