"""Alarms operators watch: index memory against its budget, and the active alerts."""
