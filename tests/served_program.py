"""The tail of a recorded test program that serves its ASGI ``app`` and is its own client.

A program's text ends with :data:`SERVED`: it defines ``app`` and ``client(url)`` (and
imports ``socket``, ``threading``, ``time`` and ``uvicorn``); ``main`` serves the app with
uvicorn on a free loopback port in a thread, runs the client against it, and stops the
server.
"""

from __future__ import annotations

import textwrap

SERVED = textwrap.dedent(
    """


    def main():  # app served by uvicorn on a free port in a thread; client(url) its client
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
        t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        t.start()
        while not server.started:
            time.sleep(0.01)
        client(f"http://127.0.0.1:{sock.getsockname()[1]}")
        server.should_exit = True
        t.join()


    main()
    """
)
