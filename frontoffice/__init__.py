"""Frontoffice: a self-hosted omnichannel contact center with a built-in CRM."""

__version__ = "0.1.0"
__all__ = ["__version__"]
