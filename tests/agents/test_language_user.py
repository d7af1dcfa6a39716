"""LLM and hybrid users: prompt templates, the pooling rules, fallbacks and calibration (scripted LLM)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from recarena.agents.calibration import calibrate_blend, fit_llm_alone, gather_examples
from recarena.agents.checker import check_user
from recarena.agents.contract import SessionContext
from recarena.agents.language_user import Blend
from recarena.agents.llm import ChatReply, ChatRequest, ScoreReply
from recarena.agents.prompts import NAMES, template


class ScriptedLLM:
    """Says Yes to sci-fi and No to the rest; rates sci-fi 5 and the rest 2; `broken` items get unusable answers."""

    def __init__(self, broken: str = "\\b$^"):
        self.broken = re.compile(broken)
        self.calls = 0

    def _answer(self, messages, options):
        self.calls += 1
        question = messages[-1]["content"]
        if self.broken.search(question):
            return ScoreReply(probabilities={o: 1 / len(options) for o in options}, ok=False, error="scripted failure")
        sci_fi = "Sci-Fi" in question
        if options[0] == "Yes":
            p = 0.9 if sci_fi or "next page" in question else 0.1
            return ScoreReply(probabilities={"Yes": p, "No": 1 - p})
        favourite = "5" if sci_fi else "2"
        if len(options) == 5:
            return ScoreReply(probabilities={o: (0.8 if o == favourite else 0.05) for o in options})
        return ScoreReply(probabilities={o: (0.9 if o == "8" else 0.1 / 9) for o in options})

    def score_many(self, requests, options, **kwargs):
        return [self._answer(r, options) for r in requests]

    def score(self, messages, options, **kwargs):
        return self._answer(messages, options)

    def chat_many(self, requests, schema=None, **kwargs):
        return [ChatReply(text="Because of the story.") for _ in requests]

    def chat(self, messages, schema=None, **kwargs):
        return ChatReply(text="I liked the sci-fi.")


@pytest.mark.parametrize("name", NAMES)
def test_every_prompt_template_renders(name):
    prompt = template(name)
    assert prompt.version >= 1
    rendered = prompt.render(**{f: f"<{f}>" for f in prompt.fields})
    for f in prompt.fields:
        assert f"<{f}>" in rendered
    with pytest.raises(KeyError, match="missing fields"):
        prompt.render()


def sci_fi_and_other(kit, n=5):
    genres = kit.history.items["genres"]
    sci_fi = [i for i, g in enumerate(genres) if "Sci-Fi" in g][:n]
    other = [i for i, g in enumerate(genres) if "Sci-Fi" not in g][:n]
    return sci_fi, other


@pytest.mark.parametrize("text", [False, True])
def test_llm_user_passes_the_contract_and_follows_the_llm(ml100k_kit, text):
    kit = ml100k_kit
    sci_fi, other = sci_fi_and_other(kit, 40)
    unseen = lambda items: [i for i in items if i not in kit.preferences.seen[3]][:10]  # noqa: E731
    user = kit.llm_user(3, np.random.default_rng(0), ScriptedLLM())
    check_user(user, [unseen(sci_fi), unseen(other)], text=text)
    probabilities = user.watch_probabilities(unseen(sci_fi) + unseen(other))
    assert probabilities[:10].min() > 0.85 and probabilities[10:].max() < 0.15
    assert user.rating_probabilities(unseen(sci_fi)).argmax(1).tolist() == [4] * 10


def test_unusable_answers_fall_back_to_the_statistical_decision_and_are_counted(ml100k_kit):
    kit = ml100k_kit
    sci_fi, other = sci_fi_and_other(kit, 10)
    user = kit.llm_user(3, np.random.default_rng(0), ScriptedLLM(broken="Would you watch"))
    user.start_session(SessionContext())
    reaction = user.view_page(other[:5])
    assert reaction.fallbacks >= 5 and user.fallbacks == reaction.fallbacks
    statistical = kit.statistical_user(3, np.random.default_rng(0))
    assert np.allclose(user.watch_probabilities(other[:5]), statistical.watch_probabilities(other[:5]))


def test_a_zero_llm_weight_blend_is_the_statistical_user(ml100k_kit):
    kit = ml100k_kit
    blend = Blend(watch_llm=0.0, watch_preference=1.0, rating_llm=0.0, rating_preference=1.0, llm_decides_leaving=False)
    llm = ScriptedLLM()
    hybrid = kit.hybrid_user(7, np.random.default_rng(11), llm, blend)
    statistical = kit.statistical_user(7, np.random.default_rng(11))
    page = list(range(100, 110))
    for user in (hybrid, statistical):
        user.start_session(SessionContext())
    assert hybrid.view_page(page) == statistical.view_page(page)
    assert llm.calls == 0


class Informed(ScriptedLLM):
    """Knows which shown items the user really had: calibration shows a user's (up to 4) held-out items first."""

    def _answer(self, messages, options):
        if options[0] != "Yes":
            return super()._answer(messages, options)
        self.calls += 1
        position = int(re.search(r"Suggestion (\d+):", messages[-1]["content"]).group(1))
        return ScoreReply(probabilities={"Yes": 0.9 if position <= 4 else 0.1, "No": 0.1 if position <= 4 else 0.9})


def test_calibration_gives_the_llm_weight_only_when_it_knows_something(ml100k_kit, ml100k_holdout):
    kit = ml100k_kit
    held_out = ml100k_holdout.test
    scripted = calibrate_blend(kit, held_out, ScriptedLLM(), n_users=30, progress=False)
    objective = scripted.fitted_on["watch_objective"]
    assert objective["pooled"] <= objective["preference_only"] + 1e-6  # nested models (MAP objectives)

    informed = calibrate_blend(kit, held_out, Informed(), n_users=30, progress=False)
    assert informed.watch_llm > 0.5, informed  # what it knows counts for watching, in the right direction ...
    nll = informed.fitted_on["watch_nll"]
    assert nll["pooled"] < nll["preference_only"] - 0.01 and nll["llm_only"] < nll["preference_only"]  # ... and helps

    class Clueless(ScriptedLLM):
        def _answer(self, messages, options):
            self.calls += 1
            return ScoreReply(probabilities={o: 1 / len(options) for o in options})

    clueless = calibrate_blend(kit, held_out, Clueless(), n_users=30, progress=False)
    assert abs(clueless.watch_llm) < 1e-3 and abs(clueless.rating_llm) < 1e-3
    assert clueless.watch_preference > 0.5 and clueless.rating_preference > 0.5


def test_a_calibration_on_a_handful_of_users_keeps_finite_weights_of_the_right_sign(ml100k_kit, ml100k_holdout):
    """Two users' examples are separable: plain maximum likelihood sends the weights to thousands (-5121 was seen);
    the prior around the statistical user keeps them a few logits wide and still follows the informed LLM."""
    blend = calibrate_blend(ml100k_kit, ml100k_holdout.test, Informed(), n_users=2, progress=False)
    weights = [blend.watch_llm, blend.watch_preference, blend.watch_bias, blend.rating_llm, blend.rating_preference, *blend.rating_bias]
    assert max(abs(w) for w in weights) < 10, blend
    assert blend.watch_llm > 0.5 and blend.watch_preference > 0, blend


def test_the_llm_users_own_calibration_fixes_its_scale_and_leaves_the_preference_model_out(ml100k_kit, ml100k_holdout):
    """An LLM that rates nearly everything 1 (real ml-100k ratings are mostly 3 to 5), calibrated alone: the fitted
    level biases move its ratings up to the real ones, its watch order stays its own, and no preference model joins."""

    class Harsh(ScriptedLLM):
        def _answer(self, messages, options):
            if len(options) != 5:
                return super()._answer(messages, options)
            self.calls += 1
            return ScoreReply(probabilities={o: (0.8 if o == "1" else 0.05) for o in options})

    kit, held_out, llm = ml100k_kit, ml100k_holdout.test, Harsh()
    blend = fit_llm_alone(gather_examples(kit, held_out, llm, n_users=30, progress=False))
    assert blend.watch_preference == 0.0 and blend.rating_preference == 0.0 and blend.llm_decides_leaving
    assert blend.watch_llm > 0  # a monotone rescaling: the LLM's own order of items
    for decision in ("watch_nll", "rating_nll"):
        nll = blend.fitted_on[decision]
        assert nll["llm_calibrated"] < nll["llm_as_it_is"], (decision, nll)

    users = held_out["user"].unique()[:20]
    rows = held_out[held_out["user"].isin(users)].groupby("user").head(2)
    stars = np.arange(1, 6)

    def expected_rating(user_blend: Blend) -> np.ndarray:
        return np.concatenate([kit.hybrid_user(u, np.random.default_rng(0), llm, user_blend).rating_probabilities(f["item"].tolist()) @ stars
                               for u, f in rows.groupby("user")])  # fmt: skip

    real = rows.sort_values("user", kind="stable")["rating"].to_numpy(float)
    raw, calibrated = expected_rating(Blend()), expected_rating(blend)
    assert np.mean((calibrated - real) ** 2) < np.mean((raw - real) ** 2) - 1.0  # the raw error is about 2 stars
    sci_fi, other = sci_fi_and_other(kit, 3)
    probe = kit.hybrid_user(3, np.random.default_rng(0), llm, blend)
    assert probe.watch_probabilities(sci_fi)[0] > probe.watch_probabilities(other)[0]


def test_a_calibrated_hybrid_user_beats_a_random_user_on_held_out_taste(ml100k_kit, ml100k_holdout):
    from recarena.agents.fidelity import FidelityConfig, fidelity_report

    class Clueless(ScriptedLLM):
        def _answer(self, messages, options):
            return ScoreReply(probabilities={o: 1 / len(options) for o in options})

    kit, llm = ml100k_kit, Clueless()
    blend = calibrate_blend(kit, ml100k_holdout.test, llm, n_users=20, progress=False)
    report = fidelity_report(
        lambda u: kit.hybrid_user(u, np.random.default_rng(u), llm, blend), ml100k_holdout, FidelityConfig(max_users=60, ratios=(1,), progress=False)
    )
    one_to_one = report["discrimination"]["1:1"]
    assert one_to_one["simulated"]["f1"] > one_to_one["random_same_rate"]["f1"] + 0.15
    assert report["rating"]["simulated"]["rmse"] < report["rating"]["global_mean"]["rmse"]


def test_fragments_from_the_llm_become_no_usable_answer_and_are_counted(ml100k_kit):
    from recarena.agents.llm import LLM
    from recarena.agents.llm.scripted import ScriptedBackend
    from recarena.agents.llm.text import NO_USABLE_ANSWER

    # What SmolLM2 used to write: a title's first word, a title with a year.
    fragments = ScriptedBackend(default="The (1991)")
    llm = LLM(fragments, progress=False)
    user = ml100k_kit.llm_user(3, np.random.default_rng(0), llm)
    user.start_session(SessionContext(text=True))
    reaction = user.view_page(sci_fi_and_other(ml100k_kit, 3)[1])
    interview = user.interview()
    assert (interview.liked, interview.missed) == (NO_USABLE_ANSWER, NO_USABLE_ANSWER)
    assert all(r.reason == "" for r in reaction.items) and reaction.feeling == "no comment"
    usage = llm.accountant.report()
    assert usage["by_component"]["users.interview"]["unusable_texts"] == 2
    assert usage["by_component"]["users.text"]["unusable_texts"] == len(reaction.items) + 1
    assert usage["total"]["fallbacks"] == 0 and user.fallbacks == 0  # the decisions stay the model's: no health fallback
    sent = [r.params for r in fragments.requests if isinstance(r, ChatRequest)]
    assert len(sent) == len(reaction.items) + 3  # reasons, the feeling, the interview's two questions
    assert all(p.repeat_penalty and p.temperature > 0 for p in sent)  # every text request used the anti-repetition settings


def test_the_interview_asks_two_plain_questions_and_keeps_the_first_line_of_each(ml100k_kit):
    from recarena.agents.llm import LLM
    from recarena.agents.llm.scripted import ScriptedBackend

    def answer(request):
        question = request.messages[-1]["content"]
        if "what you liked" in question:
            return "I liked the sci-fi picks. And I also\nThe session is over: you watched"
        if "did not get" in question:
            return "I wanted more comedies.\nYour answer is correct."
        return "Because of the story."

    backend = ScriptedBackend(default=answer)
    user = ml100k_kit.llm_user(3, np.random.default_rng(0), LLM(backend, progress=False))
    user.start_session(SessionContext(text=True))
    user.view_page(sci_fi_and_other(ml100k_kit, 3)[0])
    interview = user.interview()
    assert (interview.liked, interview.missed) == ("I liked the sci-fi picks.", "I wanted more comedies.")
    asked = [r for r in backend.requests if isinstance(r, ChatRequest) and "interviewer" in r.messages[-1]["content"]]
    assert len(asked) == 2 and all(r.json_schema is None and r.params.stop == ("\n",) for r in asked)
