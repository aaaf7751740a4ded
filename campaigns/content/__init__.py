"""The content room: what an issue says, from the snippet library to a checked email.

Snippets come in (by hand or imported), a week's issue is assembled from them, rendered
once to HTML and text, checked by preflight and previewed. Nothing here sends or tracks
mail (that is :mod:`campaigns.delivery` and :mod:`campaigns.tracking`); the one exception
is preview, which builds the MIME message a reader would get through the outbox
provider's own code.

Modules, in the order content flows through them:

- ``snippets``: the library; validation, canonical URLs (the key), upsert, list, delete.
- ``snippet_import``: Markdown files (YAML front matter) and RSS 2.0 / Atom feeds, by file
  or URL; idempotent, and a bad entry is reported with its position, not fatal.
- ``feeds``: RSS and Atom read entry by entry (feedparser's own handler on a stream), each
  entry as a snippet's values; feedparser's forgiving parser for feeds that are not XML.
- ``assembly``: one ISO week's issue: picks the snippets (freshness, pinned first, a cap per
  category, no repeats), renders subject and preheader, creates the draft campaign.
- ``rendering``: Jinja2 -> MJML -> HTML plus the plain-text part, stored once per campaign
  with ``[%key%]`` placeholders for per-recipient values.
- ``html_checks``: what the rendered HTML contains (links, images, language, size).
- ``reachability``: bounded fetches of every image and link, for preflight, under the
  feed fetch's address policy (``newsletter.net``).
- ``preflight``: every finding that blocks or warns about a send; ``require_preflight`` is
  the one "preflight or raise".
- ``preview``: email.html, .txt, .eml and Chromium screenshots, offline.
- ``review``: preview and preflight of a campaign by id, as the doors ask for them.
"""
