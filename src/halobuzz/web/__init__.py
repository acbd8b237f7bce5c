"""The browser web app: server-rendered pages (Jinja2) over the same services and API as clients."""
