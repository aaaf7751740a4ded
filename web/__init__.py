"""The HTTP door: subscriber pages, the provider's webhook, the campaign API, /healthz.

Routes read the request, call one room function and format its answer; errors go to
one map. The modules:

- ``app``: ``create_app(settings)``, the FastAPI app of one configuration;
- ``deps``: what routes share, as ``Annotated`` dependencies (session, settings, mailer,
  client, pages, verified links, the API's bearer token);
- ``errors``: the one map from error classes to HTTP statuses, and its handlers;
- ``bodies``: size-capped request bodies and forms;
- ``responses``: pages as uncached HTML answers;
- ``subscriber_pages``: sign-up, confirm, unsubscribe (RFC 8058) and preferences pages;
- ``webhooks``: SendGrid's signed event webhook;
- ``api``: the campaign API under /api/, one module per resource;
- ``health``: ``GET /healthz`` for monitors.
"""
