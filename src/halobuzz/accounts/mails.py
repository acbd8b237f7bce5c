"""The texts of the mails the accounts service sends: (subject, plain-text body)."""

from __future__ import annotations

from urllib.parse import quote


def _link(public_url: str, page: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/{page}?token={quote(token, safe='')}"


def verify_email_link(public_url: str, token: str) -> str:
    return _link(public_url, "verify-email", token)


def reset_password_link(public_url: str, token: str) -> str:
    return _link(public_url, "reset-password", token)


def verification_mail(*, username: str, public_url: str, token: str, ttl_hours: int) -> tuple[str, str]:
    """The mail that confirms a new (or re-sent) email address."""
    link = verify_email_link(public_url, token)
    return (
        "Confirm your email address for HaloBuzz",
        f"Hi {username},\n\n"
        "Welcome to HaloBuzz! Please confirm your email address by opening this link:\n\n"
        f"{link}\n\n"
        f"The link works once and expires in {ttl_hours} hours.\n"
        "If you did not create an account, you can ignore this mail.\n\n"
        "— HaloBuzz\n",
    )


def password_reset_mail(*, username: str, public_url: str, token: str, ttl_minutes: int) -> tuple[str, str]:
    """The mail with a link to choose a new password."""
    link = reset_password_link(public_url, token)
    return (
        "Reset your HaloBuzz password",
        f"Hi {username},\n\n"
        "Someone (hopefully you) asked to reset the password of your HaloBuzz account.\n"
        "Choose a new password here:\n\n"
        f"{link}\n\n"
        f"The link works once and expires in {ttl_minutes} minutes. Resetting the password signs\n"
        "you out on every device.\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n\n"
        "— HaloBuzz\n",
    )


def password_changed_mail(*, username: str, public_url: str) -> tuple[str, str]:
    """The notice sent after a password change or reset."""
    return (
        "Your HaloBuzz password was changed",
        f"Hi {username},\n\n"
        "The password of your HaloBuzz account was just changed, and other devices were signed out.\n"
        "If this was not you, reset your password at once from the sign-in page:\n\n"
        f"{public_url.rstrip('/')}/\n\n"
        "— HaloBuzz\n",
    )
