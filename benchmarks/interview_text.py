"""How often does the embedded LLM user say something usable in the end-of-session interview?

    python benchmarks/interview_text.py --users 20 --threads 2            # the shipped tuned adapter
    python benchmarks/interview_text.py --users 20 --llm embedded          # the base model

Each of `--users` ml-100k users (a seeded sample; leave-one-out training part, the split `ab` uses) watches a
session of up to three pages of five random unseen items (the demo's shape), as an LLM user with text on, and is
then interviewed twice on the same session, by the same model:

* **JSON, one call** (the baseline: how `LanguageUser.interview` asked until 2026-12-01): both answers as the
  fields ``liked`` and ``missed`` of one JSON object, with the anti-repetition settings for text inside JSON;
* **two plain questions** (today's `LanguageUser.interview`): one line each, cut after the last whole sentence.

Every answer goes through the same check (`recarena.agents.llm.text.unusable_reason`, in character). Printed: the
share of usable answers each way, why the others were refused, and every answer, so a person can judge whether
"usable" reads like a person. The sampling is seeded, so a warm LLM cache gives the same answers again.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recarena.agents.contract import SessionContext
from recarena.agents.kit import build_user_kit
from recarena.agents.llm import LLMConfig, make_llm
from recarena.agents.llm.text import FREE_TEXT_IN_JSON, NO_USABLE_ANSWER, unusable_reason
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out

# The interview prompt as it was (agents/prompts/interview.txt, version 1), kept here as the baseline.
JSON_INTERVIEW = ("The session is over: you saw {pages} pages, {shown} suggestions, and watched {watched}{titles}.\n"
                  "In a sentence each: what did you like about the recommendations, and what was missing?")  # fmt: skip


class InterviewAnswer(BaseModel):
    liked: str = Field(max_length=300, description="What the viewer liked about the recommendations")
    missed: str = Field(max_length=300, description="What the viewer missed")


def json_interview(user, llm) -> tuple[list[str | None], str]:
    """The two answers the old single JSON call gives about the session just ended (None where the call failed),
    and the question, for the echo check."""
    session = user.session
    prompt = JSON_INTERVIEW.format(pages=session.pages, shown=len(session.shown), watched=len(session.watched),
                                   titles=user._titles(session.watched))  # fmt: skip
    answer = llm.chat([user._system("satisfaction"), {"role": "user", "content": prompt}], InterviewAnswer,
                      params=FREE_TEXT_IN_JSON, component="bench.json_interview")  # fmt: skip
    if not answer.ok or answer.parsed is None:
        return [None, None], prompt
    return [answer.parsed.liked, answer.parsed.missed], prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--llm", default="embedded:tuned", help="LLM backend string, as for `recarena ab --llm`")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("runs/interview_text-cache.sqlite"))
    parser.add_argument("--out", type=Path, default=Path("runs/interview_text.json"))
    args = parser.parse_args()

    train = leave_one_out(load_dataset("ml-100k")).train_dataset()
    kit = build_user_kit(train, seed=args.seed)
    llm = make_llm(args.llm, LLMConfig(cache_path=args.cache, progress=False, n_threads=args.threads))
    rng = np.random.default_rng(args.seed)
    answers: dict[str, list[str | None]] = {"json, one call": [], "two plain questions": []}
    verdicts: dict[str, Counter] = {way: Counter() for way in answers}  # None: usable; otherwise why not
    for user_id in rng.choice(train.n_users, args.users, replace=False):
        user = kit.llm_user(int(user_id), np.random.default_rng([args.seed, int(user_id)]), llm)
        unseen = np.setdiff1d(np.arange(train.n_items), list(kit.preferences.seen[int(user_id)]))
        user.start_session(SessionContext(text=True))
        for page in rng.choice(unseen, (3, 5), replace=False):
            if user.view_page([int(i) for i in page]).leave:
                break
        llm.accountant.unusable_text_events.clear()  # it keeps only the first 50 refusals: this interview's are all here
        interview = user.interview()  # today's way: the user checks (and trims) its own answers
        plain = [None if a == NO_USABLE_ANSWER else a for a in (interview.liked, interview.missed)]
        events = [e for e in llm.accountant.unusable_text_events if e.component == "users.interview"]
        verdicts["two plain questions"].update([None] * sum(a is not None for a in plain) + [e.reason for e in events])
        verdicts["two plain questions"]["failed call"] += sum(a is None for a in plain) - len(events)
        texts, prompt = json_interview(user, llm)
        verdicts["json, one call"].update(unusable_reason(t, prompt, in_character=True) if t is not None else "failed call" for t in texts)
        for way, said in (("json, one call", texts), ("two plain questions", plain)):
            answers[way] += said
            print(f"[user {user_id}] {way}: liked {said[0]!r} | missed {said[1]!r}")
    results: dict = {way: {"answers": len(texts), "usable": verdicts[way][None], "usable_share": verdicts[way][None] / len(texts),
                           "refused": {k: v for k, v in verdicts[way].items() if k is not None and v}} for way, texts in answers.items()}  # fmt: skip
    results["llm"] = args.llm
    print(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**results, "texts": answers}, indent=1))
    shares = {way: results[way]["usable_share"] for way in answers}
    verdict = "a tie" if len(set(shares.values())) == 1 else max(shares, key=shares.get)
    print("usable answers: " + ", ".join(f"{way} {results[way]['usable']}/{results[way]['answers']}" for way in answers) + f"; more usable: {verdict}")


if __name__ == "__main__":
    main()
