"""Offline checks of sluicegate's routing: labeled-prompt evaluation and workload replay."""
