"""Operations the Calls flow looks up by name."""

OFFSET = 1


def double(x):
    return x * 2


def triple(x):
    return x * 3
