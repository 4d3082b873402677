"""sluicegate."""
