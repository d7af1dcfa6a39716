"""Free text that reads like a person: the fragment check, and the decoding settings on their way to a backend and the cache key."""

from __future__ import annotations

import numpy as np
import pytest

from recarena.agents.llm import LLM, Accountant, SamplingParams, SQLiteCache
from recarena.agents.llm.cache import cache_key
from recarena.agents.llm.protocol import ChatRequest
from recarena.agents.llm.scripted import ScriptedBackend
from recarena.agents.llm.text import (
    FREE_TEXT, NO_USABLE_ANSWER, SPOKEN_LINE, is_usable_text, shown_text, spoken_part, unusable_reason, usable_or_none,
)

# What SmolLM2-135M wrote into the A/B report's "What users said" before these settings and this check.
REAL_FRAGMENTS = ["The", "The (1991)", "The 2017 movie The Lion King", "loved", "lacked", "Lion King, The (1994)", "Star Wars (1977)"]
DEGENERATE = ["", "   ", "the the the the the", "I liked it I liked it I liked it", "Action movies, action movies, action movies, action movies",
              "1995 1996 !!! ?? ...", "Toy Story and Heat", "of the and",
              ",   This sentence is formatted with bold text and incl.",  # the tuned model's demo interview, 2026-11-30
              "This sentence is formatted in bold text for emphasis.",
              "1970s(32),conspiracy theory(",  # the tuned model's demo interview, 2026-12-01
              "The (1983); genres: Action, Sci-Fi; watched by  47% of users"]  # the same, a later run  # fmt: skip
# The tuned model's demo interviews, 2026-12-01: readable, but the model narrating the task, not the user answering.
OUT_OF_CHARACTER = ["What the viewer liked about recommendations", "What the viewer liked about recommendations: 4.5;",
                    "The reviewer appreciated many of our recommended movies. For example, The Good Dinosaur was a great movie.",
                    "The user who enjoyed those.",
                    # SmolLM2 asked the interview's questions in plain text, 2026-12-01: the interviewer's side.
                    "This interviewer asked me to choose a movie they did not like but enjoyed.",
                    "The interviewer's comment: \"You wanted a comedy, but didn't get the show.\""]  # fmt: skip
# make demo, 2026-12-01: the prompt's item statistics read out as if the viewer knew them.
ITEM_STATISTICS = ["The movie recommended by 32% of users included the iconic films: Terminator II, The Matrix.",
                   "I didn't get the 7th Terminator2: Judgment Day (1990), which was rated as \"Excellent\" by 46% of users.",
                   "I liked it, and its average rating was high."]  # fmt: skip
SENTENCES = ["I loved the sci-fi picks and the pacing.", "There were not enough thrillers for my taste.", "Too many old westerns.",
             "The comedies were great but I wanted more horror.", "Great variety of comedies.", "Nothing was missing.",
             "I watched 2 of 15 suggestions.", "The Godfather Part II was a classic pick."]  # fmt: skip


@pytest.mark.parametrize("text", REAL_FRAGMENTS + DEGENERATE)
def test_fragments_are_rejected(text):
    assert not is_usable_text(text) and unusable_reason(text)


@pytest.mark.parametrize("text", SENTENCES)
def test_sentences_are_kept(text):
    assert is_usable_text(text), unusable_reason(text)


def test_each_kind_of_fragment_says_why():
    assert unusable_reason("The (1991)") == "fewer than 3 words"
    assert unusable_reason("The 2017 movie The Lion King") == "a title, not a sentence"
    assert unusable_reason("the the the the the") == "the same words repeated"
    assert unusable_reason("12 15 17 (1995) ok !!! a b") == "mostly digits or punctuation"
    assert unusable_reason(", I liked the westerns.") == "starts with a punctuation mark"
    assert unusable_reason("I wanted more 1970s films (conspiracy thrillers") == "unbalanced brackets"
    assert unusable_reason("I wanted more 1970s films (conspiracy thrillers).") is None
    assert unusable_reason("The response text is formatted as a list.") == "talks about its own text"
    question = "You decided to watch Heat (1995). In one short sentence, why?"
    assert unusable_reason("You decided to watch Heat", question) == "an echo of the question"
    assert unusable_reason("Because I love crime films.", question) is None


@pytest.mark.parametrize("text", OUT_OF_CHARACTER)
def test_a_user_in_character_never_speaks_of_the_viewer(text):
    assert unusable_reason(text, in_character=True) == "speaks of the viewer, not as the viewer"
    assert shown_text(text) == NO_USABLE_ANSWER  # the A/B report's quotes are the users' own answers


@pytest.mark.parametrize("text", ITEM_STATISTICS)
def test_a_user_in_character_never_reads_out_the_item_statistics(text):
    assert unusable_reason(text, in_character=True) == "reads out the prompt's item statistics"
    assert unusable_reason(text) is None  # a summary or a persona may cite them
    assert shown_text(text) == NO_USABLE_ANSWER


def test_a_taste_summary_may_speak_of_the_viewer_and_a_sentence_may_hold_a_semicolon():
    assert unusable_reason("The viewer enjoys dark crime dramas and old westerns.") is None  # not in character: a summary
    assert unusable_reason("I liked the westerns; more comedies would help.", in_character=True) is None
    assert unusable_reason("What I liked about the recommendations was the variety.", in_character=True) is None
    assert unusable_reason("Heat (1995); genres: Crime; watched by 9% of users") == "labelled fields, not a sentence"


def test_a_feeling_may_be_short_but_not_a_title():
    assert is_usable_text("Pretty happy.", min_words=1) and is_usable_text("bored", min_words=1)
    assert not is_usable_text("The", min_words=1) and not is_usable_text("Star Wars (1977)", min_words=1)


def test_a_fragment_is_counted_as_unusable_text_not_as_a_fallback():
    accountant = Accountant()
    assert usable_or_none("  I wanted more horror.  ", accountant=accountant, component="users.text") == "I wanted more horror."
    assert usable_or_none("The (1991)", accountant=accountant, component="users.text") is None
    usage = accountant.report()
    assert usage["total"]["unusable_texts"] == 1 and usage["total"]["fallbacks"] == 0
    assert usage["unusable_texts"][0]["raw_answer"] == "The (1991)" and "unusable" in accountant.table()


def test_reports_show_no_usable_answer_for_a_fragment():
    assert [shown_text(t) for t in ("The (1991)", "", None, "More Drama.")] == [NO_USABLE_ANSWER] * 3 + ["More Drama."]


def test_decoding_settings_reach_the_backend_and_the_cache_key(tmp_path):
    backend = ScriptedBackend(default="I liked the thrillers a lot.")
    llm = LLM(backend, cache=SQLiteCache(tmp_path / "cache.sqlite"), progress=False)
    plain = llm.chat("Why?")
    free = llm.chat("Why?", params=FREE_TEXT)
    sent = backend.requests[-1].params
    assert (sent.repeat_penalty, sent.frequency_penalty, sent.presence_penalty, sent.min_tokens, sent.stop) == (
        FREE_TEXT["repeat_penalty"], FREE_TEXT["frequency_penalty"], FREE_TEXT["presence_penalty"], FREE_TEXT["min_tokens"], FREE_TEXT["stop"])
    # Other settings, another key: a warm cache never serves text generated without them.
    assert free.call_id != plain.call_id and not free.cached
    assert llm.chat("Why?", params={**FREE_TEXT, "repeat_penalty": 1.5}).call_id != free.call_id
    assert llm.chat("Why?", params=FREE_TEXT).cached and len(backend.requests) == 3


def test_requests_without_decoding_settings_keep_their_old_cache_keys():
    """Keys from before the settings existed (score calls, plain chats) still find their answers."""
    old_payload = {"temperature": 0.0, "max_tokens": 128, "top_p": 1.0, "seed": 0}
    assert SamplingParams().cache_fields() == old_payload
    assert cache_key({"params": SamplingParams().cache_fields()}) == cache_key({"params": old_payload})


@pytest.mark.requires("llama_cpp")
def test_embedded_backend_passes_the_settings_to_llama_cpp():
    import llama_cpp

    from recarena.agents.llm.embedded import EmbeddedBackend, _no_end_before

    class Model:
        def token_eos(self):
            return 2

    stub = type("Stub", (), {"_llama": Model(), "_llama_cpp": llama_cpp})()
    params = SamplingParams.model_validate({**SamplingParams().model_dump(), **FREE_TEXT})
    free = EmbeddedBackend._decoding(stub, ChatRequest(({"role": "user", "content": "hi"},), params))
    assert free["repeat_penalty"] == FREE_TEXT["repeat_penalty"] and free["stop"] == list(FREE_TEXT["stop"])
    assert "logits_processor" in free
    in_json = EmbeddedBackend._decoding(stub, ChatRequest(({"role": "user", "content": "hi"},), params, {"type": "object"}))
    assert "logits_processor" not in in_json  # the grammar ends a JSON answer; holding its end back would leave no token
    assert EmbeddedBackend._decoding(stub, ChatRequest(({"role": "user", "content": "hi"},), SamplingParams())) == {}
    processor = _no_end_before(2, eos=2)
    prompt = np.arange(5)
    assert processor(prompt, np.zeros(4))[2] == -np.inf  # nothing generated yet
    assert processor(np.arange(6), np.zeros(4))[2] == -np.inf  # one token
    assert processor(np.arange(7), np.zeros(4))[2] == 0.0  # two: the answer may end


def test_openai_backend_sends_only_the_settings_openai_defines():
    from recarena.agents.llm.openai_backend import OpenAIBackend

    sent = {}

    class Completions:
        def create(self, **kwargs):
            sent.update(kwargs)

    backend = OpenAIBackend.__new__(OpenAIBackend)
    backend._model = "m"
    backend._client = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    params = SamplingParams.model_validate({**SamplingParams().model_dump(), **FREE_TEXT})
    backend._create(ChatRequest(({"role": "user", "content": "hi"},), params), 5.0, None)
    assert sent["frequency_penalty"] == FREE_TEXT["frequency_penalty"] and sent["stop"] == ["\n\n"]
    assert "repeat_penalty" not in sent and "min_tokens" not in sent


def test_the_spoken_part_is_the_first_line_cut_after_its_last_whole_sentence():
    # SmolLM2's answers to the interview's plain questions, 2026-12-01.
    assert spoken_part("I'm sorry for the review. I liked the thrillers. In one sentence:\nYour answer is correct") == (
        "I'm sorry for the review. I liked the thrillers.")
    assert spoken_part("\n  I wanted something in the 20s, but I was not sure of what movie.\n") == (
        "I wanted something in the 20s, but I was not sure of what movie.")
    assert spoken_part("I'd love to know more, and I'm glad that you're sharing a") == "I'd love to know more, and I'm glad that you're sharing a"
    assert spoken_part("Pretty happy!") == "Pretty happy!" and spoken_part(None) == spoken_part("\n\n") == ""
    assert spoken_part("I paid 3.50 for it. Fine") == "I paid 3.50 for it."  # a decimal point is not a sentence's end
    assert spoken_part("I liked Dr. Strangelove and St. Elmo's Fire, and I wanted") == "I liked Dr. Strangelove and St. Elmo's Fire, and I wanted"
    assert spoken_part("No. I wanted more comedies, and") == "No."


def test_an_echo_of_the_question_on_its_first_line_is_refused():
    question = "You watched 2 of the 10 movies suggested to you over 2 pages: Heat (1995).\nIn one sentence, tell the interviewer what you liked."
    answer = "You watched 2 of the 10 movies suggested to you over 2 pages: Heat.\nI liked it, and the pacing was good."
    assert unusable_reason(spoken_part(answer), question, in_character=True) == "an echo of the question"
    assert SPOKEN_LINE["stop"] == ("\n",) and SPOKEN_LINE["repeat_penalty"] == FREE_TEXT["repeat_penalty"]
