"""Assertions and sign-in shortcuts shared by the view tests."""

from django.utils.html import escape

from tests.conftest import login


def sign_in(request, client, persona):
    """Sign `client` in as the persona fixture named `persona`."""
    return login(client, request.getfixturevalue(persona))


def assert_error_beside(response, field, message, form="form"):
    """The message is in the form's errors and rendered in the list tied to the field."""
    assert any(message in error for error in response.context[form].errors[field])
    html = response.content.decode()
    start = html.index(f'id="id_{field}_error"')
    assert escape(message) in html[start : start + 500]
