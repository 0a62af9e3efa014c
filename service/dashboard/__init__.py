"""The dashboard: a calm, readable page of a person's record, rendered on the server."""
