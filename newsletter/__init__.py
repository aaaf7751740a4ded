"""The ground floor: what every room stands on, and nothing about newsletters in particular.

- ``settings``: every setting (``NEWSLETTER_*`` variables or ``.env``), validated once.
- ``errors``: the one exception tree; doors show a :class:`~newsletter.errors.NewsletterError`'s
  message, anything else is a bug.
- ``clock``: "now" and the aware-UTC form of an instant from outside.
- ``db``: engines, sessions, savepoints, migrations and the UTC timestamp column type.
- ``migrations``: the Alembic history of the schema.
- ``models``: the service's own tables (API tokens, leases, job runs).
- ``leases``: named leases (one scheduler, one sender per campaign) and leader election.
- ``job_runs``: a row per scheduler job run; what health checks report.
- ``api_tokens``: bearer tokens for the HTTP API, stored as hashes.
- ``mail``: the message types and placeholders every mail path shares.
- ``templating``: Jinja2 and MJML, with a user's template folder first.
- ``jsonlog``: JSON-lines logs for long-running processes.
- ``net``: fetching a URL someone named: which addresses (SSRF policy), one deadline, size.

Nothing here imports a room (``subscribers``, ``campaigns``) or a door (``web``, ``cli``,
``scheduler``).
"""
