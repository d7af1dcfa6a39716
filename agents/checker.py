"""`check_user`: run a user through the contract and report the first rule it breaks.

Third parties call it on their own `SimulatedUser` (as PettingZoo ships its API
tests); every user kind in recarena passes it in the tests.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .contract import Interview, PageReaction, SessionContext, SessionOverError, SimulatedUser


class UserContractError(AssertionError):
    """A simulated user broke a rule of the contract; the message says which."""


def _check_page(reaction: PageReaction, items: Sequence[int], text: bool) -> None:
    if not isinstance(reaction, PageReaction):
        raise UserContractError(f"view_page returned {type(reaction).__name__}, not PageReaction")
    if [r.item for r in reaction.items] != list(items):
        raise UserContractError("view_page must return one ItemReaction per shown item, in order")
    for r in reaction.items:
        if r.watched != (r.rating is not None):
            raise UserContractError(f"item {r.item}: a rating must be given exactly when the item is watched")
        if r.rating is not None and not (isinstance(r.rating, int) and 1 <= r.rating <= 5):
            raise UserContractError(f"item {r.item}: rating {r.rating!r} is not an integer from 1 to 5")
        if not text and r.reason is not None:
            raise UserContractError(f"item {r.item}: a reason was written although the session asked for no text")
    if not isinstance(reaction.leave, bool):
        raise UserContractError("PageReaction.leave must be a bool")


def _same(a: PageReaction, b: PageReaction) -> bool:
    return a.items == b.items and a.leave == b.leave and a.feeling == b.feeling


def check_user(user: SimulatedUser, pages: Sequence[Sequence[int]], text: bool = False) -> None:
    """Drive `user` through sessions over `pages` (slates of item ids) and check every rule.

    Raises `UserContractError` naming the first broken rule; returns None when all hold.
    """
    if not isinstance(getattr(user, "rng", None), np.random.Generator):
        raise UserContractError("a user must keep its randomness in `rng`, a numpy Generator")
    if len(pages) < 2:
        raise UserContractError("check_user needs at least two pages")
    context = SessionContext(session=0, text=text)
    user.start_session(context)
    snapshot = user.get_state()
    first = user.view_page(pages[0])
    _check_page(first, pages[0], text)
    user.set_state(snapshot)
    try:
        again = user.view_page(pages[0])
    except SessionOverError:
        again = None
    if again is None or not _same(first, again):
        raise UserContractError("after set_state(get_state()) the same page must get the same reaction")
    behaviour = user.batch_behaviour()
    if behaviour is not None:  # decided in a batch, the page must come out as view_page gave it (and leave the same state)
        user.set_state(snapshot)
        batched = behaviour.view_pages([user], [list(pages[0])])
        if len(batched) != 1 or not _same(first, batched[0]):
            raise UserContractError("batch_behaviour().view_pages must give the reaction view_page gives")

    left = again.leave
    for page in pages[1:]:
        if left:
            break
        reaction = user.view_page(page)
        _check_page(reaction, page, text)
        left = reaction.leave
    if left:
        try:
            user.view_page(pages[0])
        except SessionOverError:
            pass
        else:
            raise UserContractError("view_page after the user left must raise SessionOverError")
    interview = user.interview()
    if not isinstance(interview, Interview) or not (isinstance(interview.satisfaction, int) and 1 <= interview.satisfaction <= 10):
        raise UserContractError(f"interview satisfaction must be an integer from 1 to 10, got {interview!r}")
    if not text and (interview.liked or interview.missed):
        raise UserContractError("the interview wrote text although the session asked for none")
    user.end_session()
    user.start_session(SessionContext(session=1, text=text))
    _check_page(user.view_page(pages[1]), pages[1], text)
    user.end_session()
