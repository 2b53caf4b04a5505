"""Runnable jsflow samples; a package so ``--app samples.order_approval:build_host`` imports."""
