"""Code a page would run that the Content-Security-Policy forbids (dashboard/middleware.py):
inline scripts and styles, event attributes, code htmx evaluates, javascript: URLs."""

import re

INLINE_CODE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on* event attribute"),
    (re.compile(r"\s(?:data-)?hx-on\b|\shx-vars\s*=|js:", re.I), "htmx code run by eval"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def inline_code(html: str) -> list[str]:
    return [what for pattern, what in INLINE_CODE if pattern.search(html)]
