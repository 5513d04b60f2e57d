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


def assert_reads_no_name_nor_password_hash(queries):
    """Minimum necessary: no query read a client's name, and only the signed-in user's own
    row was read whole (by the authentication middleware), password hash and all."""
    read = [query["sql"] for query in queries]
    assert not [sql for sql in read if '"therapy_sessions_client"."name"' in sql]
    assert len([sql for sql in read if '"accounts_user"."password"' in sql]) == 1
