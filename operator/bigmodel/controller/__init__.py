"""The controllers: shared parts here (API client, conditions, kopf settings, context,
health), one subpackage per kind (`job`, `service`) with thin handlers and pure decisions."""
