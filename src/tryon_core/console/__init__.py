"""The web console: server-rendered pages for people, served by the gateway at ``/``.

It is a client of the core like the API is: every page calls the core's functions
(accounts, billing, catalog, jobs, webhooks, reports); none reads the database itself.
:func:`tryon_core.console.app.console_routers` builds it from the settings (nothing when
``[console] enabled`` is false). See docs/console.md.
"""
