"""Placeholder handler; the runtime issue replaces it with the real fetcher."""


def handler(event, context):
    return {"ok": True, "test": bool(isinstance(event, dict) and event.get("test"))}
