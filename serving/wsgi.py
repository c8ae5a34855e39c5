"""The WSGI entry for production servers: ``waitress-serve --port 8080 serving.wsgi:app``, with the
flags of serving/README.md's deploy command.

A WSGI server imports this module and serves ``app``. Such servers take no application flags, so
it is configured by the DVL_* environment variables (serving/README.md, ``app_from_environment``).
"""
from serving.server import app_from_environment

app = app_from_environment()
