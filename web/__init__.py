"""The HTTP door: subscriber pages, the provider's webhook, the campaign API, /healthz.

Routes read the request, call one room function and format its answer; errors go to
one map. The modules:

- ``app``: ``create_app(settings)``, the FastAPI app of one configuration;
- ``deps``: what routes share, as ``Annotated`` dependencies (session, settings, mailer
  or the queue that sends after the answer, client, pages, verified links, the API's
  bearer token, the database-kept rate limits);
- ``clients``: who the client is (the peer, or what a trusted proxy forwarded);
- ``security``: the security headers of every answer (CSP, nosniff, no-referrer, HSTS);
- ``errors``: the one map from error classes to HTTP statuses, and its handlers;
- ``bodies``: size-capped request bodies and forms;
- ``responses``: pages as uncached HTML answers;
- ``subscriber_pages``: sign-up (with its anti-robot challenge), confirm, unsubscribe
  (RFC 8058) and preferences pages;
- ``my_data_pages``: the reader's own data, downloaded or deleted;
- ``assets``: our static files, the brand's CSS, and the API docs served offline;
- ``webhooks``: SendGrid's signed event webhook;
- ``api``: the campaign API under /api/, one module per resource;
- ``health``: ``GET /healthz`` for monitors.
"""
