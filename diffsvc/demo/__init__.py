"""`diffsvc demo`: two bundled sample upstreams, the whole stack, traffic, and the report."""
