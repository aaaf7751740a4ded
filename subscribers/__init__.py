"""Who receives the newsletter: consent, tokens, suppression, import/export and pages."""
