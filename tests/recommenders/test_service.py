"""A recommender service as a recommender (recarena.recommenders.service): the JSON contract both ways, answers that break
it refused in one line, retries, counted failures under the LLM's health rule, and a dead service stopping at once.

Each test serves from a small http.server in this process: the example service's handler over a fitted model, or a
scripted one whose answers the test chooses."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from recarena.recommenders import REGISTRY, MostPopular, ParamsError, RecommenderError, check_recommender
from recarena.recommenders.errors import ServiceHealthError
from recarena.recommenders.service import HttpRecommender, ShownItem, check_service_url, probe_service
from recarena.simulator.data.splits import leave_one_out

EXAMPLE = Path(__file__).parents[2] / "examples" / "recommender_service.py"
Answer = Callable[[dict[str, Any]], tuple[int, Any]]


def _example():
    spec = importlib.util.spec_from_file_location("recommender_service", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Served:
    """An http.server in a thread; `url` is its endpoint. ``requests`` holds every POST body it got."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/recommend"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scripted(answer: Answer, health: dict[str, Any] | None = None) -> tuple[Served, list[dict[str, Any]]]:
    """A service whose POST answers are ``answer(request) -> (status, body)`` (a body that is not a dict or list goes as text)."""
    requests: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self._send(200, health or {"status": "ok"})

        def do_POST(self):  # noqa: N802
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(request)
            self._send(*answer(request))

        def _send(self, status, body):
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else str(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Served(Handler), requests


def top(request: dict[str, Any], n_items: int) -> list[int]:
    """The first ``k`` allowed ids, in id order: a correct answer of a dull service."""
    banned = set(request["exclude"])
    allowed = request["candidates"] if request["candidates"] is not None else range(n_items)
    return [i for i in sorted(allowed) if i not in banned][: request["k"]]


@pytest.fixture(scope="module")
def train(tiny_world):
    return leave_one_out(tiny_world).train_dataset()


@pytest.fixture
def serve():
    """``serve(handler_or_answer, ...)``: a running service, closed after the test."""
    started: list[Served] = []

    def start(answer: Answer, health: dict[str, Any] | None = None) -> tuple[Served, list[dict[str, Any]]]:
        served, requests = scripted(answer, health)
        started.append(served)
        return served, requests

    yield start
    for served in started:
        served.close()


def fitted(url: str, train, **params) -> HttpRecommender:
    return HttpRecommender(url=url, retry_wait_s=0.0, **params).fit(train)


def test_a_served_model_keeps_the_whole_recommender_contract_and_ranks_as_in_process(tiny_world, monkeypatch):
    split = leave_one_out(tiny_world)
    pop = MostPopular().fit(split.train_dataset(), valid=split.valid)
    served = Served(_example().make_handler(pop, "/recommend"))
    try:
        monkeypatch.setitem(REGISTRY, "service", HttpRecommender)  # Recommender.load finds saved recommenders by name
        check_recommender(HttpRecommender(url=served.url), tiny_world)
        model = HttpRecommender(url=served.url).fit(split.train_dataset())
        users = np.arange(tiny_world.n_users)
        exclude = [np.array([u % 7, 11]) for u in users]
        here, there = pop.recommend(users, 8, exclude=exclude), model.recommend(users, 8, exclude=exclude)
        np.testing.assert_array_equal(there.items, here.items)
        np.testing.assert_array_equal(there.scores, here.scores)
        assert (there.propensities == 1.0).all()
    finally:
        served.close()


def test_the_request_carries_user_history_with_timestamps_k_exclusions_and_the_sessions_pages(serve, train):
    served, requests = serve(lambda r: (200, {"items": top(r, train.n_items)}))
    model = fitted(served.url, train)
    pages = [[[ShownItem(5, True, 4), ShownItem(6, False)]], []]
    page = model.recommend(np.array([3, 9]), 4, exclude=[np.array([7, 2, 7]), np.array([], np.int64)], pages=pages)
    by_user = {r["user"]: r for r in requests}
    frame = train.interactions.sort_values("timestamp", kind="stable")
    had = frame[frame["user"] == 3]
    assert by_user[3]["history"] == [{"item": int(i), "timestamp": int(t)} for i, t in zip(had["item"], had["timestamp"])]
    assert by_user[3]["k"] == 4 and by_user[3]["exclude"] == [2, 7] and by_user[3]["candidates"] is None
    assert by_user[3]["pages"] == [[{"item": 5, "watched": True, "rating": 4}, {"item": 6, "watched": False, "rating": None}]]
    assert by_user[9]["pages"] == [] and by_user[9]["exclude"] == []
    assert page.items[0].tolist() == [0, 1, 3, 4] and page.scores[0].tolist() == [0, -1, -2, -3]  # no scores: minus the rank
    assert page.propensities is None
    model.recommend(np.array([3]), 2)  # exclude="seen": the user's history
    assert requests[-1]["exclude"] == sorted(set(had["item"].tolist())) and requests[-1]["pages"] == []


def test_the_session_engine_tells_a_service_the_pages_so_far(serve, tiny_world, train):
    from recarena.agents.kit import build_user_kit
    from recarena.simulator.session_engine import Seat, SessionPlan, run_sessions

    served, requests = serve(lambda r: (200, {"items": top(r, train.n_items)}))
    kit = build_user_kit(train, seed=0)
    make = kit.factory("statistical")
    seats = [Seat(u, make(u, np.random.default_rng(u)), np.random.default_rng([u, 1])) for u in (1, 2)]
    records = run_sessions(SessionPlan(run="t", arm="served", pages=3, slate_size=3), fitted(served.url, train), seats)
    for record in records:
        asked = [r for r in requests if r["user"] == record.user]
        assert len(asked) == len(record.pages)  # one call per page shown (a session that ended asks no more)
        for n, request in enumerate(asked):
            so_far = [[{"item": x.item, "watched": x.watched, "rating": x.rating} for x in p.reaction.items] for p in record.pages[:n]]
            assert request["pages"] == so_far


@pytest.mark.parametrize("body, needle", [
    ("not json", "not JSON"),
    ({"ranking": [1, 2]}, "without an 'items' list"),
    ({"items": [1, 2.5, 3]}, "not all whole numbers"),
    ({"items": [0, 1, 999]}, "unknown item id 999"),
    ({"items": [0, 1, 1]}, "an item twice: 1"),
    ({"items": [0, 1, 7]}, "the item 7, which the request excluded"),
    ({"items": [0, 1]}, "answered 2 items where 3 were asked for and allowed"),
    ({"items": [0, 1, 3, 4]}, "answered 4 items for k=3"),
    ({"items": [0, 1, 3], "scores": [1.0, 2.0, 0.5]}, "scores that increase"),
    ({"items": [0, 1, 3], "scores": [1.0, 0.5]}, "'scores' that is not a list of 3 numbers"),
    ({"items": [0, 1, 3], "propensities": [1.0, 0.0, 0.5]}, "propensity outside"),
])  # fmt: skip
def test_an_answer_that_breaks_the_contract_fails_at_once_in_one_line(serve, train, body, needle):
    served, requests = serve(lambda r: (200, body))
    model = fitted(served.url, train)
    with pytest.raises(RecommenderError, match=needle) as error:
        model.recommend(np.array([3]), 3, exclude=[np.array([7])])
    assert "\n" not in str(error.value) and served.url in str(error.value)
    assert len(requests) == 1 and model.calls.retries == 0  # a wrong answer is not retried


def test_a_request_the_service_refuses_is_one_line_naming_its_reason(serve, train):
    served, _ = serve(lambda r: (400, {"error": "unknown user"}))
    with pytest.raises(RecommenderError, match="refused a request \\(HTTP 400: .*unknown user"):
        fitted(served.url, train).recommend(np.array([3]), 3)


def test_transient_failures_and_timeouts_are_retried_and_counted(serve, train):
    attempts = iter(["slow", 503, 500])

    def answer(request):
        what = next(attempts, None)
        if what == "slow":
            time.sleep(0.6)
        elif what is not None:
            return what, "busy"
        return 200, {"items": top(request, train.n_items)}

    served, requests = serve(answer)
    model = fitted(served.url, train, timeout_s=0.3, retries=3)
    page = model.recommend(np.array([3]), 2)
    assert page.items.shape == (1, 2) and (page.items >= 0).all()
    figures = model.calls.since()
    assert figures["calls"] == 1 and figures["failures"] == 0 and figures["retries"] == 3
    assert figures["latency_ms"]["max"] >= 300  # the wait for the timed-out attempt is part of the call


def test_failures_after_retries_leave_users_without_a_slate_until_the_health_rule_stops_the_run(serve, train):
    served, _ = serve(lambda r: (503, "overloaded"))  # POST always fails, GET (the health check) answers: alive, not working
    model = fitted(served.url, train, retries=1, max_failure_rate=0.2, concurrency=4)
    page = model.recommend(np.arange(10), 3)
    assert (page.items == -1).all() and np.isneginf(page.scores).all()  # no slate: their sessions end
    with pytest.raises(ServiceHealthError, match=r"failed 20 of 20 calls \(100%.*max_failure_rate 0.2; last error: HTTP 503") as error:
        model.recommend(np.arange(10, 20), 3)
    assert "\n" not in str(error.value)
    with pytest.raises(ServiceHealthError):  # and every later call, from any thread
        model.recommend(np.array([0]), 3)
    assert model.calls.since()["failures"] == 20 and model.calls.since()["retries"] == 20


def test_a_service_that_stops_answering_stops_the_run_at_the_first_failed_call(serve, train):
    served, _ = serve(lambda r: (200, {"items": top(r, train.n_items)}))
    model = fitted(served.url, train, retries=1)
    assert (model.recommend(np.arange(4), 3).items >= 0).all()
    served.close()
    with pytest.raises(ServiceHealthError, match=f"service at {served.url} stopped answering after 4 good calls") as error:
        model.recommend(np.arange(4, 8), 3)
    assert "\n" not in str(error.value) and "ConnectionRefusedError" in str(error.value)


def test_a_service_that_does_not_answer_or_serves_other_data_is_refused_when_fitted(serve, train):
    served, _ = serve(lambda r: (200, {}), health={"status": "ok", "n_items": train.n_items + 1})
    with pytest.raises(RecommenderError, match=f"serves n_items={train.n_items + 1}, the data has {train.n_items}"):
        fitted(served.url, train)
    served.close()
    with pytest.raises(RecommenderError, match="did not answer its start-up check \\(ConnectionRefusedError"):
        probe_service(served.url, 2.0)
    with pytest.raises(RecommenderError, match="did not answer its start-up check"):
        fitted(served.url, train)


@pytest.mark.parametrize("url, needle", [
    ("ftp://host/x", "must start with http"), ("http:///x", "names no host"), ("http://host:99999/x", "port"),
    ("http://user:secret@host/x", "credentials"), ("http://host:0/x", "port 0"), ("http://host/a b", "space or a comma"),
])  # fmt: skip
def test_a_malformed_url_is_refused_in_one_line(url, needle):
    with pytest.raises(RecommenderError, match=needle):
        check_service_url(url)
    with pytest.raises(ParamsError, match=needle):
        HttpRecommender(url=url)


def test_a_copy_of_a_served_recommender_starts_its_own_calls_and_still_answers(serve, train):
    import pickle

    served, _ = serve(lambda r: (200, {"items": top(r, train.n_items)}))
    model = fitted(served.url, train)
    model.recommend(np.arange(3), 2)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.calls.since()["calls"] == 0 and copy.health.requests == 0 and copy.health.url == served.url
    np.testing.assert_array_equal(copy.recommend(np.arange(3), 2).items, model.recommend(np.arange(3), 2).items)


def test_the_call_log_reports_counts_and_latency_since_a_mark():
    from recarena.recommenders.service import CallLog

    log = CallLog()
    for ms in (10.0, 20.0, 30.0):
        log.add(ms, retries=0, failed=False)
    mark = log.mark()
    for ms in (100.0, 300.0):
        log.add(ms, retries=2, failed=True)
    assert log.since(mark) == {"calls": 2, "failures": 2, "retries": 4,
                               "latency_ms": {"mean": 200.0, "p50": 200.0, "p95": 290.0, "max": 300.0}}  # fmt: skip
    assert log.since()["calls"] == 5 and log.since(log.mark()) == {"calls": 0, "failures": 0, "retries": 0, "latency_ms": None}
