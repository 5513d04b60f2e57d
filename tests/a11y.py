"""Automated accessibility checks in the browser tests: axe-core, bundled with
axe-playwright-python (nothing fetched at run time)."""

from axe_playwright_python.sync_playwright import Axe

FAILING_IMPACTS = ("serious", "critical")

_axe = Axe()


def assert_accessible(page, *, context=""):
    """Fail on any serious or critical axe-core violation on the page as it stands."""
    # axe-core goes into a document once: the same page checked again (at another width)
    # runs the copy already there.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe.axe_script)
    results = page.evaluate("() => axe.run({resultTypes: ['violations']})")
    found = [violation for violation in results["violations"] if violation.get("impact") in FAILING_IMPACTS]
    assert not found, f"{context or page.url}: " + "; ".join(_describe(v) for v in found)


def _describe(violation):
    targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
    return f"{violation['impact']} {violation['id']} ({violation['help']}) at {targets}"
