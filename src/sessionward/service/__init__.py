"""The standalone sessionward service: a JSON API for any language, an admin page, a demo shop.

    from sessionward.service import ServiceConfig, create_app

    app = create_app(ServiceConfig(store="sessions.db"))   # any ASGI server

or from the command line: ``sessionward serve`` (see ``sessionward.cli.serve``).
Needs the ``service`` extra (Starlette, uvicorn, argon2-cffi).
"""

from sessionward.service.app import create_app
from sessionward.service.config import ServiceConfig, load_config

__all__ = ["ServiceConfig", "create_app", "load_config"]
