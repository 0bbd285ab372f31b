"""propc: trace NumPy-style model code, differentiate it, compile both passes."""
