"""The Bottle web app: a form for people and a JSON API for programs, both over ``Predictor.predict``.

Every request is checked before it reaches the model, and a bad one gets a status code and a
sentence saying what to change (JSON for the API, the form page again for people), never a stack
trace; the server goes on serving. The limits bound the work one request can cause:

* 5,000 characters a text (413): the model reads only the first ``max_length`` tokens (the run's
  own, 128 by default) anyway;
* 64 texts a batch (400) and 1 MiB a body (413): Bottle 0.13 caps only what it parses itself
  (``MEMFILE_MAX``, 100 KiB) and spools larger bodies to a temporary file, so the app reads the
  body itself, after checking ``Content-Length``;
* the body must be UTF-8 (400), and so must the percent-escapes of a form;
* 100 words a request for explanations (400): explaining n words costs a forward pass of n + 1
  comments (explain/occlusion.py), so the API refuses more, and the page explains a comment of
  up to that many words and says so for a longer one;
* when the request-batching queue is full, the request is refused at once (503, Retry-After)
  rather than left waiting behind hundreds of others (webapp/batching.py).
"""
import json
import urllib.parse
from pathlib import Path

import bottle
from bottle import HTTPError, request, response

from explain.occlusion import Explanation
from explain.words import word_spans
from webapp.batching import Overloaded
from webapp.predict import Predictor

MAX_TEXT_CHARS = 5_000
MAX_BATCH = 64
MAX_BODY_BYTES = 1024 * 1024
MAX_EXPLAIN_WORDS = 100
# A word's colour steps up at these changes of P(toxic) when it is left out. The steps are
# absolute, not relative to the comment, so one colour means the same in every model's row.
CONTRIBUTION_STEPS = (0.02, 0.1, 0.25, 0.5)
VIEWS_DIR = Path(__file__).parent / "views"
TEMPLATE_LOOKUP = [str(VIEWS_DIR)]
EXAMPLES = (
    "Thank you for the thoughtful reply, I learned something today.",
    "You are a complete idiot and everyone here knows it.",
    "I disagree with the article, but the author makes a fair point about costs.",
    "Shut up, nobody cares what a pathetic loser like you thinks.",
)
# The pages load nothing but their own stylesheet and post only to their own origin; there is no
# script at all, so an injected <script> would not run even if escaping failed.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]
BUSY = "The server is busy with other requests. Please try again in a moment."
FRIENDLY_ERRORS = {
    404: "There is no page at this address.",
    405: "This address does not accept that kind of request.",
    500: "Something went wrong on our side. The error has been logged; please try again.",
}


class InputError(ValueError):
    """A request the app refuses, with the HTTP status and the sentence that explains why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def make_app(predictors: dict[str, Predictor], default_name: str):
    """The WSGI application serving ``predictors``; the form and the API use ``default_name``."""
    if default_name not in predictors:
        raise ValueError(f"default model {default_name!r} is not among {sorted(predictors)}")
    default = predictors[default_name]
    app = bottle.Bottle()

    def page(status: int = 200, **values) -> str:
        response.status = status
        values = {"text": "", "result": None, "comparison": None, "error": None, "explanation": None,
                  "explain_note": None, **values}
        return bottle.template("index.tpl", template_lookup=TEMPLATE_LOOKUP, examples=EXAMPLES,
                               model=default, model_count=len(predictors), **values)

    @app.get("/")
    def index():
        return page()

    @app.post("/classify")
    def classify():
        text = ""
        try:
            fields = read_form()
            text = fields.get("text", "")
            check_text(text)
        except InputError as error:
            return page(error.status, text=text, error=error.message)
        words = len(word_spans(text))
        explain = words <= MAX_EXPLAIN_WORDS
        note = None if explain else (f"Explanations are shown for comments of up to {MAX_EXPLAIN_WORDS} words; "
                                     f"this one has {words:,}.")
        try:
            if fields.get("mode") == "compare":
                comparison = [(predictor, predictor.predict([text])[0],
                               highlighted(predictor.explain(text)) if explain else None)
                              for predictor in predictors.values()]
                return page(text=text, comparison=comparison, explain_note=note)
            return page(text=text, result=default.predict([text])[0], explain_note=note,
                        explanation=highlighted(default.explain(text)) if explain else None)
        except Overloaded:
            return page(503, text=text, error=BUSY)

    @app.post("/api/predict")
    def api_predict():
        try:
            payload = read_json()
            texts = texts_from_payload(payload)
            predictor = predictors[model_from_payload(payload, predictors, default_name)]
            explain = explain_from_payload(payload, texts)
            results = predictor.predict(texts)
        except InputError as error:
            response.status = error.status
            return {"error": error.message}
        except Overloaded:
            response.status = 503
            response.set_header("Retry-After", "1")
            return {"error": BUSY}
        if explain:
            for result, text in zip(results, texts):
                result["explanation"] = predictor.explain(text).as_json()
        return {"results": results, "model": predictor.name, "threshold": predictor.threshold}

    @app.get("/health")
    def health():
        return {"status": "ok", "model": default_name, "models": list(predictors), "precision": default.precision}

    @app.get("/style.css")
    def stylesheet():
        return bottle.static_file("style.css", root=str(VIEWS_DIR))

    def error_page(error: HTTPError) -> str:
        """Bottle's own errors (unknown address, wrong method, a crash) in the style of the rest."""
        message = FRIENDLY_ERRORS.get(error.status_code, error.status_line)
        if request.path.startswith("/api/"):
            response.content_type = "application/json"
            return json.dumps({"error": message})
        return bottle.template("error.tpl", template_lookup=TEMPLATE_LOOKUP,
                               status=error.status_line, message=message)

    app.default_error_handler = error_page
    return with_security_headers(app)


def with_security_headers(app):
    """WSGI middleware adding SECURITY_HEADERS to every response, error pages included.

    Bottle's ``after_request`` hook does not see responses of requests that crashed, so the
    headers are added one level further out, where every response passes.
    """
    def app_with_headers(environ, start_response):
        def start_response_with_headers(status, headers, exc_info=None):
            return start_response(status, headers + SECURITY_HEADERS, exc_info)
        return app(environ, start_response_with_headers)
    return app_with_headers


def read_body() -> bytes:
    """The raw request body, refused before reading if its declared length is over MAX_BODY_BYTES."""
    length = request.content_length
    if length > MAX_BODY_BYTES:
        raise InputError(413, f"The request body is {length:,} bytes; the limit is "
                              f"{MAX_BODY_BYTES:,} bytes (1 MiB).")
    if length < 0 and request.chunked:
        raise InputError(411, "Send the body with a Content-Length header.")
    return request.environ["wsgi.input"].read(length) if length > 0 else b""


def decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(400, f"The request body is not valid UTF-8 (byte {error.start}).") from error


def read_form() -> dict[str, str]:
    """The fields of an HTML form post (application/x-www-form-urlencoded, UTF-8)."""
    if request.content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InputError(415, "Send the form as application/x-www-form-urlencoded.")
    body = decode_utf8(read_body())
    try:
        fields = urllib.parse.parse_qs(body, keep_blank_values=True, encoding="utf-8",
                                       errors="strict", max_num_fields=8)
    except UnicodeDecodeError as error:
        raise InputError(400, "The form data is not valid UTF-8.") from error
    except ValueError as error:
        raise InputError(400, "The form has too many fields.") from error
    return {name: values[0] for name, values in fields.items()}


def read_json():
    body = decode_utf8(read_body())
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InputError(400, f'The body is not valid JSON ({error}). Send {{"text": "..."}} '
                              f'or {{"texts": ["...", "..."]}}.') from error


def texts_from_payload(payload) -> list[str]:
    """The texts of ``{"text": str}`` or ``{"texts": [str, ...]}``, each one checked."""
    usage = 'Send a JSON object {"text": "..."} or {"texts": ["...", "..."]}.'
    if not isinstance(payload, dict) or ("text" in payload) == ("texts" in payload):
        raise InputError(400, usage)
    if "text" in payload:
        if not isinstance(payload["text"], str):
            raise InputError(400, f'"text" must be a string. {usage}')
        check_text(payload["text"])
        return [payload["text"]]
    texts = payload["texts"]
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise InputError(400, f'"texts" must be a list of strings. {usage}')
    if not 1 <= len(texts) <= MAX_BATCH:
        raise InputError(400, f'"texts" holds {len(texts)} texts; send between 1 and {MAX_BATCH}.')
    for position, text in enumerate(texts):
        check_text(text, f"Text {position}")
    return texts


def model_from_payload(payload: dict, predictors: dict[str, Predictor], default_name: str) -> str:
    name = payload.get("model", default_name)
    if not isinstance(name, str) or name not in predictors:
        raise InputError(400, f"Unknown model {name!r}; this server has {', '.join(predictors)}.")
    return name


def explain_from_payload(payload: dict, texts: list[str]) -> bool:
    """Whether ``"explain": true`` was asked, refused when the texts hold more than MAX_EXPLAIN_WORDS words."""
    explain = payload.get("explain", False)
    if not isinstance(explain, bool):
        raise InputError(400, '"explain" must be true or false.')
    words = sum(len(word_spans(text)) for text in texts)
    if explain and words > MAX_EXPLAIN_WORDS:
        raise InputError(400, f'"explain" covers up to {MAX_EXPLAIN_WORDS} words a request (each word costs a '
                              f'forward pass); these texts hold {words:,}. Send fewer or shorter texts, or '
                              f'leave out "explain".')
    return explain


def highlighted(explanation: Explanation) -> list[tuple[str, str | None, float | None]]:
    """The comment as (text, CSS class, contribution) pieces: each word with its shade, the spaces between as typed."""
    text, pieces, end = explanation.words.text, [], 0
    for (start, stop), contribution in zip(explanation.words.spans, explanation.contributions):
        pieces += [(text[end:start], None, None), (text[start:stop], shade(contribution), contribution)]
        end = stop
    return pieces + [(text[end:], None, None)]


def shade(contribution: float) -> str:
    """``push-toxic-1`` ... ``push-toxic-4``, ``push-clean-1`` ... ``push-clean-4``, or ``push-none`` below the first step."""
    level = sum(abs(contribution) >= step for step in CONTRIBUTION_STEPS)
    return f"push-{'toxic' if contribution > 0 else 'clean'}-{level}" if level else "push-none"


def check_text(text: str, what: str = "The text") -> None:
    if not text.strip():
        raise InputError(400, f"{what} is empty. Type a comment to classify.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(413, f"{what} has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        # JSON can spell a lone UTF-16 surrogate ("\ud800"), which no UTF-8 text contains.
        raise InputError(400, f"{what} is not valid Unicode (a lone surrogate).") from error
