"""lavasparse."""
