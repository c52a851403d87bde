import pytest


@pytest.fixture(scope="session")
def browser():
    """One Chromium and harness page for every browser test (as the tuner uses one per run)."""
    from kgen.browser.session import BrowserSession

    with BrowserSession(job_timeout_s=60) as session:
        yield session
