"""The tiny step functions of the chain and outputs scenarios (put on ``PYTHONPATH`` for both engines)."""


def chain(previous):
    """Return the previous step's number plus one."""
    return {"n": int(previous) + 1}


def make_list(count, size):
    """A list of ``count`` distinct strings of ``size`` bytes (the outputs scenario)."""
    return {"items": ["x" * (int(size) - 8) + f"{i:08d}" for i in range(int(count))]}


def count_items(items):
    """The length of a list passed in by a whole-value reference."""
    return {"n": len(items)}
