"""The console's signed cookies, CSRF tokens and login throttle, with a clock we move."""

from __future__ import annotations

from leadsync.web.console.security import LoginThrottle, Signer

TOKEN = "an-internal-token-of-enough-length"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lasts_its_lifetime_and_no_longer() -> None:
    clock = Clock()
    signer = Signer(TOKEN, clock=clock)
    session, cookie = signer.new_session(lifetime_seconds=60)

    assert signer.session(cookie) == session
    assert TOKEN not in cookie
    clock.now += 59
    assert signer.session(cookie) == session
    clock.now += 1
    assert signer.session(cookie) is None


def test_a_changed_token_or_a_touched_cookie_is_no_session() -> None:
    _session, cookie = Signer(TOKEN).new_session(lifetime_seconds=60)
    sid, expiry, signature = cookie.split(".")

    assert Signer(TOKEN + "-rotated").session(cookie) is None
    assert Signer(TOKEN).session(f"{sid}x.{expiry}.{signature}") is None
    assert Signer(TOKEN).session(f"{sid}.{int(expiry) + 1}.{signature}") is None
    # Another last character (the signature ends in "A" one time in 64: then "B").
    other = "B" if signature.endswith("A") else "A"
    assert Signer(TOKEN).session(f"{sid}.{expiry}.{signature[:-1]}{other}") is None
    for junk in ("", ".", "a.b", "a.b.c.d", "x" * 500):
        assert Signer(TOKEN).session(junk) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    signer = Signer(TOKEN)
    first, _ = signer.new_session(lifetime_seconds=60)
    second, _ = signer.new_session(lifetime_seconds=60)

    assert signer.csrf_ok(first, signer.csrf_token(first))
    assert not signer.csrf_ok(first, signer.csrf_token(second))
    assert not signer.csrf_ok(first, None)
    assert not signer.csrf_ok(first, "")
    assert not Signer(TOKEN + "2").csrf_ok(first, signer.csrf_token(first))


def test_a_login_form_token_matches_its_cookie_until_it_expires() -> None:
    clock = Clock()
    signer = Signer(TOKEN, clock=clock)
    cookie, form = signer.new_login_form()
    other_cookie, other_form = signer.new_login_form()

    assert signer.login_form_ok(cookie, form)
    assert not signer.login_form_ok(cookie, other_form)
    assert not signer.login_form_ok(other_cookie, form)
    assert not signer.login_form_ok(None, form)
    clock.now += 3601
    assert not signer.login_form_ok(cookie, form)


def test_the_token_check() -> None:
    signer = Signer(TOKEN)
    assert signer.token_matches(TOKEN)
    assert not signer.token_matches(TOKEN[:-1])
    assert not signer.token_matches("")
    assert not signer.token_matches("\ud800")  # not even valid text


def test_the_throttle_counts_failures_per_client_within_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(failures=3, window_seconds=60, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
        clock.now += 10

    wait = throttle.retry_after("10.0.0.1")
    assert wait is not None
    assert 29 <= wait <= 31  # the first failure leaves the window 60 s after it happened
    assert throttle.retry_after("10.0.0.2") is None  # another client is not held
    clock.now += 31
    assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    throttle.succeeded("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is None
