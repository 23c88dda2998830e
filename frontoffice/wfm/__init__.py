"""Frontoffice."""
