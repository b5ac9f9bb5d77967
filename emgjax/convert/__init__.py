"""emgjax.convert."""
