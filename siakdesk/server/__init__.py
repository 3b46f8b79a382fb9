"""The meeting server: aiohttp signaling and an aiortc forwarding unit, without Qt."""
