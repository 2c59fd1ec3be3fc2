"""The landing page a phone camera opens: its templates, its visitor cookie, its form."""
