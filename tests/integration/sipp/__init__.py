"""sipp scenarios (XML) for the voice tests and the helpers that run them."""
