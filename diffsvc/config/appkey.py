"""The Config of an aiohttp application, as one typed key shared by the gateway and the
report server (both read their settings from `app[CONFIG]`)."""

from aiohttp import web

from diffsvc.config.settings import Config

CONFIG = web.AppKey("config", Config)
