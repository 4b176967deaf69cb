"""The report server's Redis connection, as a typed application key shared by the API, the
gate, the metrics endpoint and the notifier (its Config is diffsvc.config.appkey.CONFIG)."""

from aiohttp import web
from redis import Redis

REDIS = web.AppKey("redis", Redis)
