"""An example recommender service: any recarena model behind the arena's JSON contract (docs/service.md).

    python examples/recommender_service.py --model pop --dataset ml-100k --seed 0 --port 8000
    recarena ab --arms pop,served=http://127.0.0.1:8000/recommend --seed 0

It fits the model as `recarena ab` does (leave-one-out by time, the training part, early stopping on the
validation part, ``seed`` and ``--model-params``), or loads one a run saved (``--load runs/ab/models/bpr``),
so that the served arm and the same model in-process show the same slates. It is stateless: each request
carries the user's history, what to exclude and the session's pages, and the model ranks from that.

``--port 0`` takes a free port; the first line printed is ``serving MODEL at URL`` once the socket listens,
so a caller (the tests) can read the address from it. Only the standard library serves (http.server, one
thread per connection); the model answers one request at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from recarena.recommenders import Recommender, build_recommender, parse_assignments
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out


class BadRequest(ValueError):
    """The request breaks the contract; answered with HTTP 400 and this one line."""


def fitted_model(model: str, dataset: str, seed: int, params: list[str], load: str | None) -> Recommender:
    """The model `recarena ab` would fit for an arm named `model` (same split, seed and parameters), or the one saved in `load`."""
    if load:
        return Recommender.load(load)
    data = load_dataset(dataset)
    split = leave_one_out(data)
    settings = {"seed": seed, "progress": False, **parse_assignments(params)}
    return build_recommender(model, settings).fit(split.train_dataset(), valid=split.valid)


def _ids(request: dict[str, Any], key: str, limit: int, optional: bool = False) -> np.ndarray | None:
    values = request.get(key)
    if values is None and optional:
        return None
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit for v in values):
        raise BadRequest(f"'{key}' must be a list of ids in 0..{limit - 1}")
    return np.asarray(values, dtype=np.int64)


def rank(model: Recommender, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request: the model's top ``k`` for the user, conditioned on the history the request carries."""
    user, k = request.get("user"), request.get("k")
    if not isinstance(user, int) or not 0 <= user < model.n_users:
        raise BadRequest(f"'user' must be an id in 0..{model.n_users - 1}")
    if not isinstance(k, int) or k < 1:
        raise BadRequest("'k' must be a whole number of at least 1")
    history = request.get("history")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise BadRequest("'history' must be a list of {item, timestamp} objects")
    items = _ids({"history": [h.get("item") for h in history]}, "history", model.n_items)
    exclude = _ids(request, "exclude", model.n_items)
    candidates = _ids(request, "candidates", model.n_items, optional=True)
    # The request's pages ("pages") are the session so far; this model ranks from the history alone, as in-process.
    page = model.recommend(np.array([user]), k, exclude=[exclude], candidates=[candidates] if candidates is not None else None,
                           history=[items])  # fmt: skip
    keep = page.items[0] >= 0
    ranked = page.items[0][keep].tolist()
    return {"items": ranked, "scores": page.scores[0][keep].astype(float).tolist(), "propensities": [1.0] * len(ranked)}


def make_handler(model: Recommender, path: str) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()  # models are not promised to be thread-safe: one ranking at a time

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != path:
                return self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path; the service is at {path}"})
            self._send(HTTPStatus.OK, {"status": "ok", "model": model.name, "n_users": model.n_users, "n_items": model.n_items})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != path:
                return self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path; the service is at {path}"})
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if not isinstance(request, dict):
                    raise BadRequest("the body must be a JSON object")
                with lock:
                    answer = rank(model, request)
            except (BadRequest, ValueError) as error:
                return self._send(HTTPStatus.BAD_REQUEST, {"error": str(error).splitlines()[0]})
            self._send(HTTPStatus.OK, answer)

        def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # one line per request would drown the terminal
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pop", help="registry name of the model to serve (default: pop)")
    parser.add_argument("--model-params", nargs="*", default=[], help="hyper-parameters as name=value, as `recarena evaluate` takes them")
    parser.add_argument("--dataset", default="ml-100k", help="the dataset the arena runs on (a built-in name or a folder)")
    parser.add_argument("--seed", type=int, default=0, help="the model's seed: the arena's --seed, for the same model")
    parser.add_argument("--load", default=None, help="serve a model a run saved (a folder of RUN/models/) instead of fitting one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: a free one; the first line printed names it)")
    parser.add_argument("--path", default="/recommend", help="the endpoint's path (default: /recommend)")
    args = parser.parse_args(argv)
    model = fitted_model(args.model, args.dataset, args.seed, args.model_params, args.load)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(model, args.path))
    host, port = server.server_address[:2]
    print(f"serving {model.name} at http://{host}:{port}{args.path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
