"""Email providers: one small interface (base.py), three implementations and a factory."""
