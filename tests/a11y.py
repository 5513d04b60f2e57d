"""Automated accessibility checks with axe-core (bundled by axe-playwright-python, nothing fetched)."""

from axe_playwright_python.sync_playwright import Axe

FAILING_IMPACTS = ("serious", "critical")


def assert_accessible(page, *, context=""):
    """Fail on any serious or critical axe-core violation on the page as it stands."""
    results = Axe().run(page)
    violations = [v for v in results.response["violations"] if v.get("impact") in FAILING_IMPACTS]
    details = "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in violations
    )
    assert not violations, f"{context or page.url}: {details}"
