"""Text helpers of the Etl flow: a tokenizer with a stop list and a word weight."""

import re

WORD = re.compile(r"[a-z]+")
STOP = {"the", "a", "of"}


def tokens(line):
    return [w for w in WORD.findall(line.lower()) if w not in STOP]


def weight(word, bonus=1):
    return len(word) + bonus
