"""The HTTP signing service: app factory, routes, request hooks and audit, signing with the unlock
cache, lockout, rate limit, metrics, OpenAPI, and the gunicorn runner."""
