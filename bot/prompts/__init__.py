"""Team prompt experiments: a shared, versioned prompt library that anyone can run, compare and rate."""
