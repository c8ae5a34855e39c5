"""The web app: ``Predictor.predict(texts)``, and a Bottle form, compare view and JSON API around it.

A run is scored as evaluate.py scores it, and labelled at its F1-best ``validation_threshold``. Each request
is checked first: a bad one gets ``abort(status, what to change)``, never a trace. Pages run no script."""
import json
import re
import threading
import urllib.parse
from pathlib import Path

import bottle
import numpy as np
import torch
from bottle import abort, request, response

from data.labels import ID2LABEL
from models.load import ModelError, load_classifier, load_tokenizer
from training.batching import MAX_LENGTH, encode_texts
from training.run_folder import read_history, trained_max_length, trained_text_prefix
from training.loop import EncodedSplit, predict_logits

MAX_TEXT_CHARS, MAX_BATCH, MAX_BODY_BYTES = 5_000, 64, 1024 * 1024  # 5,000: the model reads 128 tokens anyway
USAGE = 'Send a JSON object {"text": "..."} or {"texts": ["...", "..."]}.'
VIEWS = [str(Path(__file__).parent / "views")]
SECURITY_HEADERS = [("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action "
                     "'self'; base-uri 'none'; frame-ancestors 'none'"), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")]
BOTTLE_ERRORS = {404: "There is no page at this address.", 405: "This address does not accept that kind of request.",
                 500: "Something went wrong on our side. The error has been logged; please try again."}


class Predictor:
    """A run's classifier and tokenizer, its threshold, and its precision: fp32 or bf16 (autocast), or serving/'s."""

    def __init__(self, name, model, tokenizer, threshold=0.5, max_length=MAX_LENGTH, text_prefix="", precision="fp32"):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ModelError(f"the threshold must be a number between 0 and 1, got {threshold!r}")
        self.name, self.model, self.tokenizer, self.threshold = name, model.eval(), tokenizer, float(threshold)
        self.max_length, self.text_prefix, self.precision = max_length, text_prefix, precision
        self.tokenizer_lock = threading.Lock()  # a fast tokenizer rewrites shared settings on each call

    @classmethod
    def from_folder(cls, folder: str | Path, threshold: float | None = None, model=None) -> "Predictor":
        """The run in ``folder``, on the GPU if there is one; ``threshold`` and ``model`` replace the run's."""
        folder, history = Path(folder), read_history(Path(folder)) or {}
        threshold = history.get("validation_threshold") if threshold is None else threshold
        if not (folder / "config.json").is_file() or threshold is None:
            raise ModelError(f"{folder} is no run: needs config.json and a threshold (history.json or --threshold)")
        tokenizer = load_tokenizer(str(folder))
        model = model or load_classifier(str(folder)).to("cuda" if torch.cuda.is_available() else "cpu")
        return cls(folder.resolve().name, model, tokenizer, threshold,
                   trained_max_length(history, model.config.max_position_embeddings),
                   trained_text_prefix(history))

    def predict(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> list[dict]:
        """``{"label": "toxic" | "not_toxic", "toxic_probability": p}`` per text: toxic from the threshold up."""
        return [{"label": ID2LABEL[int(p >= self.threshold)], "toxic_probability": float(p)}
                for p in self.probabilities(texts, batch_size, progress)]

    def probabilities(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        with self.tokenizer_lock:
            token_ids = encode_texts(self.tokenizer, texts, self.max_length, self.text_prefix) if texts else []
        return self.probabilities_of_ids(token_ids, batch_size, progress)

    def probabilities_of_ids(self, token_ids: list[list[int]], batch_size=64, progress=False) -> np.ndarray:
        """P(toxic), class 1, of tokenised comments, batched by length as training validates."""
        device = next(self.model.parameters(), torch.empty(0)).device  # an ONNX Runtime model has none: the CPU
        logits = predict_logits(self.model, EncodedSplit(token_ids, [0] * len(token_ids)), self.tokenizer.pad_token_id,
                                device, batch_size, bf16=self.precision == "bf16", progress=progress)
        return torch.softmax(logits, dim=-1)[:, 1].numpy().astype(np.float64)


def make_app(predictors: dict[str, Predictor], default: str, explain=None) -> bottle.Bottle:
    """The app of ``predictors`` by name; ``explain(predictor, texts)`` (serving/explain.py) adds word contributions."""
    app = bottle.Bottle()

    def page(status=200, **values):
        response.status = status
        return bottle.template("index.tpl", template_lookup=VIEWS, default=default, predictors=predictors, **values)

    @app.post("/classify")
    def classify():
        fields = read_body(form=True)
        text, compare = check_text(fields.get("text", "")), fields.get("mode") == "compare"
        verdicts = {name: predictors[name].predict([text])[0] for name in (predictors if compare else [default])}
        try:
            explanation = explain(predictors[default], [text])[0] if explain else None
            return page(text=text, verdicts=verdicts, explanation=explanation)
        except bottle.HTTPError as refused:  # too long to explain: the verdicts, and why there is no explanation
            return page(text=text, verdicts=verdicts, note=refused.body)

    @app.post("/api/predict")
    def api_predict():
        payload = read_body(form=False)
        require(isinstance(payload, dict) and ("text" in payload) != ("texts" in payload), 400, USAGE)
        name, texts = payload.get("model", default), [payload["text"]] if "text" in payload else payload["texts"]
        require(isinstance(texts, list) and all(isinstance(text, str) for text in texts), 400, f"Strings only. {USAGE}")
        require(1 <= len(texts) <= MAX_BATCH, 400, f'"texts" holds {len(texts)} texts; send between 1 and {MAX_BATCH}.')
        texts = [check_text(text, "The text" if "text" in payload else f"Text {i}") for i, text in enumerate(texts)]
        require(isinstance(name, str) and name in predictors, 400,
                f"Unknown model {name!r}: try {', '.join(predictors)}.")
        require(isinstance(payload.get("explain", False), bool), 400, '"explain" must be true or false.')
        explanations = explain(predictors[name], texts) if payload.get("explain") and explain else []
        results = predictors[name].predict(texts)
        for result, explanation in zip(results, explanations):
            result["explanation"] = explanation.as_json()
        return {"results": results, "model": name, "threshold": predictors[name].threshold}

    def error_page(error: bottle.HTTPError) -> str:
        """A refusal or Bottle's own error (a wrong address or method, a crash): JSON for the API, else the form."""
        message = BOTTLE_ERRORS.get(error.status_code, error.body)
        response.headers.update(SECURITY_HEADERS)  # a crash's response skips the after_request hook
        if request.path.startswith("/api/"):
            response.content_type = "application/json"
            return json.dumps({"error": message})
        return page(error.status_code, text=request.environ.get("webapp.form", {}).get("text", ""), error=message)

    app.default_error_handler = error_page
    app.add_hook("after_request", lambda: response.headers.update(SECURITY_HEADERS))
    app.get("/", callback=page)
    app.get("/style.css", callback=lambda: bottle.static_file("style.css", root=VIEWS[0]))
    return app


def require(condition, status: int, message: str) -> None:
    if not condition:
        abort(status, message)


def read_body(form: bool):
    """A JSON body, or a form's fields (kept for error_page); past MAX_BODY_BYTES refused unread, not spooled."""
    length = request.content_length
    require(length <= MAX_BODY_BYTES, 413, f"The request body is {length:,} bytes; the limit is 1 MiB.")
    try:
        body = request.environ["wsgi.input"].read(length).decode("utf-8") if length > 0 else ""
        if not form:
            return json.loads(body)
        fields = urllib.parse.parse_qs(body, keep_blank_values=True, errors="strict", max_num_fields=8)
    except UnicodeDecodeError:  # the bytes of the body, or a form's percent-escapes
        abort(400, "The request body is not valid UTF-8.")
    except (ValueError, RecursionError) as error:
        abort(400, "The form has too many fields." if form else f"The body is not valid JSON ({error}).")
    return request.environ.setdefault("webapp.form", {name: values[0] for name, values in fields.items()})


def check_text(text: str, what: str = "The text") -> str:
    require(text.strip(), 400, f"{what} is empty. Type a comment to classify.")
    require(len(text) <= MAX_TEXT_CHARS, 413, f"{what} has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}.")
    require(not re.search("[\ud800-\udfff]", text), 400, f"{what} is not valid Unicode (a lone surrogate).")
    return text
