"""The HTTP port's listener: aiohttp's server on the node's event loop,
started and stopped by the node's lifecycle like the other listeners."""

from __future__ import annotations

import ssl

from aiohttp import web

from olivia.protocols.http.app import HttpFrontEnd


class HttpListener:
    """One aiohttp site serving the HTTP front end's routes."""

    def __init__(self, front: HttpFrontEnd, host: str, port: int,
                 context: ssl.SSLContext | None) -> None:
        self._front = front
        self.host = host
        self.port = port
        self._ssl = context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind (OSError if the port is taken) and serve."""
        runner = web.AppRunner(self._front.application(), access_log=None,
                               handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self._ssl,
                           reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])

    async def stop(self, timeout: float) -> None:
        """Stop accepting, let requests in progress finish (up to ``timeout``)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.shutdown()
            await runner.cleanup()
