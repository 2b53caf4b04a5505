"""Durable orchestration for jsflow workflows.

The engine (``jsflow``) advances one workflow by one event; the host keeps
many alive: it stores them, fires their timers, delivers their events and
resume tokens, and survives crashes. Storage lives in ``jsflow.host.store``.
"""
