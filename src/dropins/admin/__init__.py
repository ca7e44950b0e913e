"""The browser admin of a running application and its JSON API (coil's successor).

``--admin ENDPOINT`` serves it; see docs/admin.md.  Modules: ``ring`` (the bounded log ring),
``tree`` (the service tree, stop and start), ``editing`` (config check, apply, rollback),
``api`` (the routes), ``server`` (the HTTP server, its access rules and the runner's options).
"""
