"""emgjax.models."""
