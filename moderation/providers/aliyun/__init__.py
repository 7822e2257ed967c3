"""Alibaba Cloud providers: Content Moderation 1.0 (green), 2.0 (guardrails) and IMM; signing in
signing.py."""
