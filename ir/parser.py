"""Placeholder replaced by the parser."""
def parse(text):
    raise NotImplementedError
