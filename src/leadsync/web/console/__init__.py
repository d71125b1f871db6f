"""The operator console at /console: server-rendered pages (Jinja2 templates in this package),
plain forms, a session cookie signed with a key derived from LEADSYNC_INTERNAL_TOKEN, CSRF
tokens and an Origin check on every POST (docs/runbook.md, "The console")."""

from leadsync.web.console.routes import router

__all__ = ["router"]
