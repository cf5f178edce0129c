"""The web console every member serves: pages, JSON API, live stream, metrics (server.py)."""
