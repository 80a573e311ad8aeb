"""Unsubscribing: signed tokens, the suppression list, the one-click endpoint, the staff side."""
