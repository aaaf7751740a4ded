"""The ground floor: settings, database, errors, migrations and shared mail types."""
