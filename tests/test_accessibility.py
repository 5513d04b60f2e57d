"""What the browser tests cannot measure well: the focus ring's contrast (WCAG 2.2, 1.4.11:
at least 3:1 against what surrounds it), read from the stylesheet itself."""

import re
from pathlib import Path

CSS = (Path(__file__).resolve().parent.parent / "static" / "css" / "app.css").read_text()


def variable(name):
    return re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", CSS).group(1)


def luminance(hex_colour):
    def channel(value):
        c = int(value, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(hex_colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_focus_ring_stands_out_at_least_3_to_1_wherever_it_is_drawn():
    ring, ring_on_dark = variable("focus-colour"), variable("focus-on-dark")
    for background in (variable("card"), variable("bg"), "#e8f0f8"):  # cards, the page, a chosen pill
        assert contrast(ring, background) >= 3, (ring, background)
    assert contrast(ring_on_dark, variable("ink")) >= 3  # the dark header
    assert ":focus-visible { outline: var(--focus);" in CSS
    assert ".site-header :focus-visible { outline-color: var(--focus-on-dark); }" in CSS


def test_the_old_ring_would_have_failed():
    # #f0b429 on white, the ring this replaced: about 1.9:1.
    assert contrast("#f0b429", "#ffffff") < 3


def test_every_field_names_the_errors_and_help_that_describe_it(as_therapist, held_session):
    """Django points a field's aria-describedby at `<id>_error` and `<id>_helptext`: a
    screen reader hears the error with the field only if that element exists."""
    bad = {"kind": "withdrawal", "actor": "client", "markers": ["denial"], "intensity": "9", "source": "unknown",
           "minute": "-1", "noticed": "x" * 3000}
    html = as_therapist.post(f"/sessions/{held_session.pk}/ruptures/new", bad).content.decode()
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    referenced = [ref for refs in re.findall(r'aria-describedby="([^"]+)"', html) for ref in refs.split()]
    assert {"id_minute_error", "id_noticed_error", "id_intensity_error"} <= set(referenced)
    assert [ref for ref in referenced if ref not in ids] == []
