"""Email providers: one small interface, three implementations and a factory.

- ``base``: what a provider is. :class:`Provider` sends a batch of one campaign and
  single messages; every batch is answered with a typed :class:`BatchResult` (each
  recipient accepted, rejected or deferred, as django-anymail reports it). Also
  :class:`BulkContent`, a campaign rendered once, and ``bulk_content``.
- ``outbox``: ``.eml`` files in a folder, the same bytes SMTP carries (demo, tests).
- ``smtp``: RFC 5321 over a reused connection per thread, pipelined (RFC 2920), DKIM, a
  batch's messages made ahead (``prepare``); ``smtp_replies``: the envelope's commands
  and what each reply means for its recipient (RFC 5321 4.2.1).
- ``sendgrid``: SendGrid's v3 Mail Send through the official client: the request body,
  SendGrid's limits, a batch's requests prepared ahead (``prepare``); with
  ``sendgrid_personalizations`` (one per recipient, our custom_args names, written as
  bytes from unsigned recipients) and ``sendgrid_http`` (the body we hand the client,
  Retry-After, error bodies).
- ``sendgrid_events``: SendGrid's Event Webhook: the signature check and the table
  from SendGrid's event names to our vocabulary (``campaigns.tracking.events``).
- ``factory``: the provider ``NEWSLETTER_PROVIDER`` names.

Messages are encoded by ``newsletter.mail`` (one encoder for every provider that writes
RFC 5322 bytes). Nothing SendGrid-shaped lives outside ``sendgrid*.py``.
"""
