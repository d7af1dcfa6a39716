"""Free text that reads like a person: decoding settings that keep a small model from stuttering, and
the check that turns a fragment into "no usable answer".

A small model asked for a sentence often gives a fragment: ``"The"``, ``"The (1991)"``, ``"The 2017
movie The Lion King"``, or one word over and over. :data:`FREE_TEXT` (plain text) and
:data:`FREE_TEXT_IN_JSON` (strings inside a JSON answer) are the sampling settings callers pass as
``params`` for reasons, feelings, interviews, reflections and taste summaries. :func:`unusable_reason`
judges what came back; :func:`usable_or_none` also counts a fragment in the run's accounting
(``unusable_texts``, see :meth:`Accountant.unusable_text` for why that is not a health-rule fallback).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

NO_USABLE_ANSWER = "no usable answer"
"""What a report shows (and an interview records) where the model's text was missing or a fragment."""

FREE_TEXT_IN_JSON: dict[str, Any] = {
    "temperature": 0.7,  # greedy decoding is what loops on one phrase; a seeded sample stays reproducible
    "top_p": 0.9,
    "repeat_penalty": 1.2,
    "frequency_penalty": 0.3,
    "presence_penalty": 0.3,
}
"""Settings for strings inside a JSON answer: no stop strings or minimum length, which would fight the grammar."""

FREE_TEXT: dict[str, Any] = {
    **FREE_TEXT_IN_JSON,
    "min_tokens": 8,  # a sentence, not "The"
    "stop": ("\n\n",),  # one paragraph: what follows a blank line is the model talking to itself
}
"""Settings for a plain-text answer of a sentence or two."""

SPOKEN_LINE: dict[str, Any] = {
    **FREE_TEXT,
    "max_tokens": 48,
    "stop": ("\n",),  # a person answers in a line; SmolLM2's second line is the task again or a reply to itself
}
"""Settings for a user's one-sentence answer to an interview question; pair with :func:`spoken_part`."""

MIN_WORDS = 3
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_TITLE_SMALL_WORDS = frozenset("the a an of and or in on at to for with from by".split())
# Words that make a sentence out of a list of names: pronouns, auxiliaries, negation, and the verbs
# and quantifiers people use about recommendations. A title rarely holds one; an answer nearly always does.
_SPEECH_WORDS = frozenset(
    """i i'm i'd i've me my we our you your it it's this that these those there they them he she
    is was were are be been being am do did does didn't don't not no nothing never none more less
    too very really so but because would could should will can can't want wanted wish liked like
    loved love enjoyed enjoy found felt feel saw watched watch missing missed lacked needed got had
    have has some any many much few all enough only just""".split()
)


# A person's answer never opens with these; a model continuing a template often does (", This sentence ...").
_NO_SENTENCE_STARTS_WITH = frozenset(",.;:)]}!?-*_|/\\")
# Two of these and the model is describing its output ("This sentence is formatted with bold text"), not answering.
_ABOUT_ITS_OWN_TEXT = frozenset("sentence sentences formatted formatting bold italic markdown paragraph text response output".split())


# "Return of the Jedi (1983); genres: Action, Sci-Fi; watched by 47% of users": the prompt's item line, copied.
_LABELLED_FIELD = re.compile(r";\s*[^\W\d_]+(?: [^\W\d_]+)?:\s")
# A user in character says "I"; "What the viewer liked about recommendations" is the model narrating the task.
# "The interviewer noted that ..." is the same narration, from the other chair.
_THIRD_PERSON = re.compile(r"\b(?:the|this|that) (?:viewer|user|reviewer|customer|interviewer)s?\b", re.IGNORECASE)
# "The movie recommended by 32% of users": the item line's statistics ("watched by 32% of users", "average rating
# 4.2 of 5") read out. A viewer knows what they watched, not the catalogue's figures.
_ITEM_STATISTIC = re.compile(r"\d+(?:\.\d+)?\s*%\s*of (?:the )?(?:users|viewers|people)\b|\baverage rating\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# A period after these ends no sentence: "I liked Dr. Strangelove and" must not become "I liked Dr.".
_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr vs vol pt".split())


def _ends_sentence(line: str, end: re.Match) -> bool:
    before = line[: end.start()].split()
    return not (end.group() == "." and before and before[-1].lower() in _ABBREVIATIONS)


def spoken_part(text: str | None) -> str:
    """The part of a model's answer a person said: its first non-empty line, cut after the last complete sentence
    when the line stops mid-sentence (at the token limit: "I'd be happy to share your"). A line with no sentence end
    at all is kept whole, for :func:`unusable_reason` to judge."""
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), "")
    ends = [m.end() for m in _SENTENCE_END.finditer(line) if _ends_sentence(line, m)]
    if ends and ends[-1] < len(line):
        return line[: ends[-1]]
    return line


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def unusable_reason(text: str | None, prompt: str = "", *, min_words: int = MIN_WORDS, in_character: bool = False) -> str | None:
    """Why `text` is not something a person would say (a short phrase), or None when it is usable.

    Rejects: no text; a first character no sentence starts with (a comma, a closing bracket, markup); fewer than
    `min_words` words (numbers and years are not words); mostly digits and
    punctuation; an opening bracket never closed (or a closing one never opened); labelled fields after a semicolon
    (the prompt's item line, "...; genres: Action; ..."); one word or one pair of words repeated; a title (capitalised
    names with no word of speech, a year in brackets or not); the model describing its own text ("This sentence is
    formatted with bold text"); an echo of `prompt` (most of its three-word runs copied); and with `in_character`
    (a user's own reason, feeling or interview answer), the viewer spoken of in the third person ("What the viewer
    liked about recommendations") and the prompt's item statistics read out ("recommended by 32% of users")."""
    stripped = (text or "").strip()
    if not stripped:
        return "empty"
    if stripped[0] in _NO_SENTENCE_STARTS_WITH:
        return "starts with a punctuation mark"
    words = _words(stripped)
    if len(words) < min_words:
        return f"fewer than {min_words} words"
    visible = [c for c in stripped if not c.isspace()]
    if sum(c.isalpha() for c in visible) < 0.6 * len(visible):
        return "mostly digits or punctuation"
    if stripped.count("(") != stripped.count(")") or stripped.count("[") != stripped.count("]"):
        return "unbalanced brackets"  # cut off mid-list, as in "1970s(32),conspiracy theory("
    if _LABELLED_FIELD.search(stripped):
        return "labelled fields, not a sentence"
    if in_character and _THIRD_PERSON.search(stripped):
        return "speaks of the viewer, not as the viewer"
    if in_character and _ITEM_STATISTIC.search(stripped):
        return "reads out the prompt's item statistics"
    lower = [w.lower() for w in words]
    if len(lower) >= 4:
        top_count = Counter(lower).most_common(1)[0][1]
        pairs = Counter(zip(lower, lower[1:]))
        if top_count > max(2, 0.4 * len(lower)) or (pairs and pairs.most_common(1)[0][1] >= 3):
            return "the same words repeated"
        if len(lower) >= 8 and len(set(lower)) < 0.4 * len(lower):
            return "the same words repeated"
    if all(w in _TITLE_SMALL_WORDS for w in lower):
        return "no word of content"
    if len(_ABOUT_ITS_OWN_TEXT.intersection(lower)) >= 2:
        return "talks about its own text"
    # A title capitalises its words; speech leaves most of them lower case. The first word is
    # capitalised either way, so it does not count.
    capitalised = sum(w[0].isupper() for w in words[1:])
    plain = sum(w[0].islower() and w.lower() not in _TITLE_SMALL_WORDS for w in words[1:])
    if not _SPEECH_WORDS.intersection(lower) and capitalised > plain:
        return "a title, not a sentence"
    if prompt and len(lower) >= 3:
        runs = set(zip(lower, lower[1:], lower[2:]))
        prompt_words = [w.lower() for w in _words(prompt)]
        copied = runs & set(zip(prompt_words, prompt_words[1:], prompt_words[2:]))
        if len(copied) >= 0.8 * len(runs):
            return "an echo of the question"
    return None


def is_usable_text(text: str | None, prompt: str = "", *, min_words: int = MIN_WORDS, in_character: bool = False) -> bool:
    """True when `text` reads like a person's phrase (see :func:`unusable_reason`)."""
    return unusable_reason(text, prompt, min_words=min_words, in_character=in_character) is None


def usable_or_none(
    text: str | None, *, prompt: str = "", accountant: Any = None, component: str = "text", min_words: int = MIN_WORDS,
    in_character: bool = False,
) -> str | None:
    """`text` stripped when usable; None otherwise, counted in `accountant` (an :class:`Accountant`, or None)."""
    reason = unusable_reason(text, prompt, min_words=min_words, in_character=in_character)
    if reason is None:
        return (text or "").strip()
    if accountant is not None:
        accountant.unusable_text(component, reason, text or "")
    return None


def shown_text(text: Any, *, min_words: int = 2) -> str:
    """What a report prints for a quoted answer: the text when usable, otherwise :data:`NO_USABLE_ANSWER`.

    A display guard behind the users' own check (which already replaced their fragments): two words
    are enough here, so a statistical user's templated "More Drama." still shows, while a title, a
    stutter, one word, the viewer spoken of in the third person or an old run's fragment never does."""
    usable = isinstance(text, str) and is_usable_text(text, min_words=min_words, in_character=True)
    return str(text).strip() if usable else NO_USABLE_ANSWER
