"""Instructions of the tabletop tasks: which object one names, and the phrasings demonstrations use.

Phrasings combine a verb and a noun with a colour ("grab the blue block"). Some verb-noun pairs are
held out of the demonstrations, so that evaluating on them measures language generalisation: every
word of a held-out phrasing is seen in training, never that combination.
"""

from __future__ import annotations

import re

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "black", "white")
VERBS = ("pick up", "grab", "lift", "take")
NOUNS = ("cube", "block")
HELD_OUT = (("take", "block"), ("grab", "cube"))  # verb-noun pairs never demonstrated


# Words a person types for the ones the demonstrations use (the built-in model's encoder maps them before
# looking words up; words it has no entry for are left out rather than read as "unknown").
SYNONYMS = {
    "grasp": "grab", "grip": "grab", "seize": "grab", "get": "take", "fetch": "take", "collect": "take",
    "bring": "take", "raise": "lift", "elevate": "lift", "pickup": "pick",
    "box": "block", "brick": "block", "piece": "block", "blocks": "block", "cubes": "cube", "one": "cube",
    "thing": "cube", "object": "cube", "square": "cube", "item": "cube",
    "crimson": "red", "scarlet": "red", "lime": "green", "navy": "blue",
    "that": "the", "this": "the", "a": "the", "an": "the",  # (every demonstration says "the": its mean needs it)
}


def clean_prompt(text: str) -> str:
    """openpi's prompt cleaning before PaliGemma tokenisation: stripped, '_' and newlines as spaces."""
    return text.strip().replace("_", " ").replace("\n", " ")


def phrase(colour: str, verb: str, noun: str) -> str:
    return f"{verb} the {colour} {noun}"


def phrasings(colour: str, held_out: bool = False) -> list[str]:
    """The training phrasings of ``colour`` (``held_out``: only the held-out ones)."""
    return [phrase(colour, v, n) for v in VERBS for n in NOUNS if ((v, n) in HELD_OUT) == held_out]


def task_colours(objects) -> tuple[str, ...]:
    """The colours a task's objects can be named by ('red_cube', 'green_cube' -> red, green), in order."""
    return tuple(c for name in objects for c in COLOURS if name.split("_")[0] == c)


def instruction_colours(task, default: tuple[str, ...] = ("red", "green", "blue")) -> tuple[str, ...]:
    """The colours to phrase a preset's task instructions with: its objects' (ALOHA's transfer: red only), or
    ``default`` for a task without coloured objects (or no task)."""
    return (task_colours(task.objects) if task is not None else ()) or default


def target_object(instruction: str, objects) -> str | None:
    """The object an instruction names ('pick up the red cube' -> 'red_cube'), or None."""
    text = instruction.lower()
    for name in objects:
        if name.replace("_", " ") in text:
            return name
    for colour in COLOURS:
        if re.search(rf"\b{colour}\b", text):
            matches = [n for n in objects if n.startswith(colour)]
            if matches:
                return matches[0]
    return None
