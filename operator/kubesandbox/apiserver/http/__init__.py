"""The HTTP face of the API server (aiohttp): routes, bodies, streams and the request log."""
