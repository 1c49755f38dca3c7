"""The HTTP port (aiohttp): a native key API, metrics, health."""
