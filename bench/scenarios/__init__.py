"""The bench's scenarios, one module each; ``python -m bench`` runs them in order."""
