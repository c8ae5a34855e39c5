"""``python -m webapp``: the full server of serving/ (an extras entry: serving/server.py holds its flags).

The core app is webapp/app.py; this entry adds ONNX Runtime, request batching, waitress and the word
explanations around it (serving/README.md).
"""
import sys

from serving.server import main

if __name__ == "__main__":
    sys.exit(main())
