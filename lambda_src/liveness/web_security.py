"""The web client's security headers: one source for the deployed site (CloudFront's response-headers policy in
cdk_app/web_hosting.py) and the local front that serves web/ (local/static.py).

The values are the headers' wire values; the stack spells the frame and referrer options with CDK's enums, and
tests/infra checks they say the same."""

from __future__ import annotations

FRAME_OPTIONS = "DENY"
CONTENT_TYPE_OPTIONS = "nosniff"
REFERRER_POLICY = "no-referrer"


def content_security_policy(api_origin: str, sign_in_url: str) -> str:
    """The page may talk only to itself, the API and the sign-in domain; nothing inline, never framed."""
    connect = " ".join(part for part in ("'self'", api_origin, sign_in_url) if part)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob: mediastream:",
            f"connect-src {connect}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
